//! The router: procedures by dotted path (`post.live`), with nesting and merging, and the
//! [`App`] that pairs a router with the function that builds each request's context.
//!
//! Paths are protocol-neutral: oRPC turns `post.live` into `/rpc/post/live`, tRPC keeps
//! `/trpc/post.live`. Mapping URLs to paths is the protocols' job, not this module's.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use core::fmt;
use core::future::Future;
use core::pin::Pin;

use crate::error::{ErrorCode, RpcError};
use crate::head::RequestHead;
use crate::procedure::{Call, CallFuture, Procedure};
use crate::sync::{arc_dyn, Arc};

/// Procedures by dotted path.
///
/// ```
/// use outer_core::{procedure, Router};
///
/// let os = procedure::<()>();
/// let posts = Router::new()
///     .route("create", os.input::<String>().mutation(|req| async move { Ok(req.input) }));
/// let router = Router::new()
///     .route("ping", os.query(|_| async { Ok("pong") }))
///     .nest("post", posts);
/// assert_eq!(router.paths().collect::<Vec<_>>(), ["ping", "post.create"]);
/// ```
pub struct Router<Ctx> {
    routes: BTreeMap<Arc<str>, Procedure<Ctx>>,
}

impl<Ctx> Default for Router<Ctx> {
    fn default() -> Self {
        Self::new()
    }
}

impl<Ctx> Clone for Router<Ctx> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
        }
    }
}

impl<Ctx> fmt::Debug for Router<Ctx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.routes.iter().map(|(path, p)| (path, p.kind())))
            .finish()
    }
}

impl<Ctx> Router<Ctx> {
    /// An empty router.
    pub const fn new() -> Self {
        Self {
            routes: BTreeMap::new(),
        }
    }

    /// Adds a procedure at `path`.
    ///
    /// # Panics
    /// When `path` is not a valid path (see [`check_path`]) or is taken: both are mistakes in the
    /// program, found the first time it builds its router, as axum does for its routes.
    #[track_caller]
    pub fn route(self, path: &str, procedure: impl Into<Procedure<Ctx>>) -> Self {
        self.try_route(path, procedure)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Adds a procedure at `path`, or says why it cannot.
    pub fn try_route(
        mut self,
        path: &str,
        procedure: impl Into<Procedure<Ctx>>,
    ) -> Result<Self, RouteError> {
        check_path(path)?;
        if self.routes.contains_key(path) {
            return Err(RouteError::Taken(path.into()));
        }
        self.routes.insert(Arc::from(path), procedure.into());
        Ok(self)
    }

    /// Adds every procedure of `router` under `prefix`: `create` under `post` is `post.create`.
    ///
    /// # Panics
    /// As [`Router::route`].
    #[track_caller]
    pub fn nest(self, prefix: &str, router: Router<Ctx>) -> Self {
        self.try_nest(prefix, router)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Adds every procedure of `router` under `prefix`, or says why it cannot.
    pub fn try_nest(mut self, prefix: &str, router: Router<Ctx>) -> Result<Self, RouteError> {
        check_path(prefix)?;
        for (path, procedure) in router.routes {
            self = self.try_route(&format!("{prefix}.{path}"), procedure)?;
        }
        Ok(self)
    }

    /// Adds every procedure of `router` at the same paths.
    ///
    /// # Panics
    /// When a path is in both routers.
    #[track_caller]
    pub fn merge(self, router: Router<Ctx>) -> Self {
        self.try_merge(router).unwrap_or_else(|err| panic!("{err}"))
    }

    /// Adds every procedure of `router` at the same paths, or says which path is in both.
    pub fn try_merge(mut self, router: Router<Ctx>) -> Result<Self, RouteError> {
        for (path, procedure) in router.routes {
            self = self.try_route(&path, procedure)?;
        }
        Ok(self)
    }

    /// The procedure at `path`.
    pub fn get(&self, path: &str) -> Option<&Procedure<Ctx>> {
        self.routes.get(path)
    }

    /// Every path, in order.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(|path| &**path)
    }

    /// Looks the procedure up and calls it; an unknown path is 404 `NOT_FOUND`.
    pub fn call(&self, path: &str, call: Call<Ctx>) -> CallFuture {
        match self.routes.get_key_value(path) {
            Some((path, procedure)) => procedure.call(call.at(Arc::clone(path))),
            None => Box::pin(core::future::ready(Err(not_found(path)))),
        }
    }
}

/// The error for a path with no procedure.
pub fn not_found(path: &str) -> RpcError {
    RpcError::new(
        ErrorCode::NOT_FOUND,
        format!("No procedure found on path \"{path}\""),
    )
}

/// Checks a dotted path: one or more segments of ASCII letters, digits, `_` and `-`, joined by
/// dots. Anything else could not travel in both protocols' URLs unchanged.
pub fn check_path(path: &str) -> Result<(), RouteError> {
    let valid_segment = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if path.split('.').all(valid_segment) {
        Ok(())
    } else {
        Err(RouteError::InvalidPath(path.into()))
    }
}

/// Why a procedure could not be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// Another procedure has this path.
    Taken(String),
    /// The path is empty, has an empty segment or a character outside `[A-Za-z0-9_-]`.
    InvalidPath(String),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Taken(path) => write!(f, "two procedures at path \"{path}\""),
            RouteError::InvalidPath(path) => write!(
                f,
                "invalid procedure path \"{path}\": use dot-separated segments of [A-Za-z0-9_-]"
            ),
        }
    }
}

impl core::error::Error for RouteError {}

/// The future a context builder returns.
pub type ContextFuture<Ctx> = Pin<Box<dyn Future<Output = Result<Ctx, RpcError>> + Send>>;

type BuildFn<Ctx> = dyn Fn(RequestHead) -> ContextFuture<Ctx> + Send + Sync;

enum ContextBuilder<Ctx> {
    /// Every request gets the same kind of value, made without waiting (`Ctx::default()`).
    Make(fn() -> Ctx),
    Build(Arc<BuildFn<Ctx>>),
}

impl<Ctx> Clone for ContextBuilder<Ctx> {
    fn clone(&self) -> Self {
        match self {
            Self::Make(make) => Self::Make(*make),
            Self::Build(build) => Self::Build(Arc::clone(build)),
        }
    }
}

/// A router and the async function that builds each request's context from its head: the
/// user behind an `authorization` header or a session cookie (looked up in a database, say),
/// the peer's address, what axum put in the request's extensions. Its error answers the
/// request instead of the procedure, with its own status: 401 `UNAUTHORIZED` for a missing
/// token, say.
///
/// The context is built once per HTTP request and only for a request that reaches a
/// procedure: the calls of a tRPC batch share it (each gets a clone, so `Ctx: Clone`; put
/// what is costly to copy behind an `Arc`).
///
/// ```
/// use outer_core::{procedure, App, ErrorCode, RequestHead, Router, RpcError};
///
/// #[derive(Clone)] struct User(String);
/// let router = Router::new()
///     .route("me", procedure::<User>().query(|req| async move { Ok(req.ctx.0) }));
/// let app = App::new(router, |head: RequestHead| async move {
///     match head.header("authorization") {
///         Some(token) => Ok(User(token.into())),
///         None => Err(RpcError::from_code(ErrorCode::UNAUTHORIZED)),
///     }
/// });
/// let answer = futures::executor::block_on(app.call(RequestHead::default(), "me", None, None));
/// assert_eq!(answer.unwrap_err().status(), 401);
/// ```
pub struct App<Ctx> {
    router: Router<Ctx>,
    context: ContextBuilder<Ctx>,
}

impl<Ctx> Clone for App<Ctx> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
            context: self.context.clone(),
        }
    }
}

impl<Ctx> fmt::Debug for App<Ctx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("router", &self.router).finish()
    }
}

impl<Ctx> App<Ctx> {
    /// Pairs `router` with a context builder: an async function of the request's head.
    pub fn new<F, Fut>(router: Router<Ctx>, context: F) -> Self
    where
        F: Fn(RequestHead) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Ctx, RpcError>> + Send + 'static,
    {
        Self {
            router,
            context: ContextBuilder::Build(arc_dyn!(
                move |head| -> ContextFuture<Ctx> { Box::pin(context(head)) } => BuildFn<Ctx>
            )),
        }
    }

    /// The router.
    pub fn router(&self) -> &Router<Ctx> {
        &self.router
    }

    /// Builds the context from `head`, then calls the procedure at `path`. Whatever refuses
    /// the call before a stream opens (an unknown path, the context, the middleware, the
    /// input, a subscription's setup) is the `Err`. An unknown path builds no context.
    pub async fn call(
        &self,
        head: RequestHead,
        path: &str,
        input: Option<serde_json::Value>,
        last_event_id: Option<crate::EventId>,
    ) -> Result<crate::procedure::Reply, RpcError> {
        if self.router.get(path).is_none() {
            return Err(not_found(path));
        }
        let ctx = self.context(head).await?;
        self.call_in(ctx, path, input, last_event_id).await
    }

    /// The context for a request with this head: what [`call`](Self::call) builds. A request
    /// that holds several calls (a tRPC batch) builds it once and calls
    /// [`call_in`](Self::call_in) with a clone for each.
    pub async fn context(&self, head: RequestHead) -> Result<Ctx, RpcError> {
        match &self.context {
            ContextBuilder::Make(make) => Ok(make()),
            ContextBuilder::Build(build) => build(head).await,
        }
    }

    /// Calls the procedure at `path` in a context already built.
    pub fn call_in(
        &self,
        ctx: Ctx,
        path: &str,
        input: Option<serde_json::Value>,
        last_event_id: Option<crate::EventId>,
    ) -> CallFuture {
        self.router.call(
            path,
            Call::new(ctx, input).with_last_event_id(last_event_id),
        )
    }
}

impl<Ctx: Default + 'static> From<Router<Ctx>> for App<Ctx> {
    /// An app whose every request gets `Ctx::default()`.
    fn from(router: Router<Ctx>) -> Self {
        Self {
            router,
            context: ContextBuilder::Make(Ctx::default),
        }
    }
}
