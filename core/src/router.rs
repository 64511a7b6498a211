//! The router: procedures by dotted path (`post.live`), with nesting and merging, and the
//! [`App`] that pairs a router with the function that builds each request's context.
//!
//! Paths are protocol-neutral: oRPC turns `post.live` into `/rpc/post/live`, tRPC keeps
//! `/trpc/post.live`. Mapping URLs to paths is the protocols' job, not this module's.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::error::{ErrorCode, RpcError};
use crate::procedure::{Call, Procedure, Response};

/// Procedures by dotted path.
///
/// ```
/// use outer_core::procedure::{mutation, query, Request};
/// use outer_core::{Router, RpcError};
///
/// let posts = Router::<()>::new()
///     .route("create", mutation(|req: Request<(), String>| async move { Ok::<_, RpcError>(req.input) }));
/// let router = Router::new()
///     .route("ping", query(|_: Request<(), ()>| async { Ok::<_, RpcError>("pong") }))
///     .nest("post", posts);
/// assert_eq!(router.paths().collect::<Vec<_>>(), ["ping", "post.create"]);
/// ```
pub struct Router<Ctx> {
    routes: BTreeMap<String, Procedure<Ctx>>,
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
        self.routes.insert(path.into(), procedure.into());
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
        self.routes.keys().map(String::as_str)
    }

    /// Looks the procedure up and calls it; an unknown path is 404 `NOT_FOUND`.
    pub fn call(&self, path: &str, call: Call<Ctx>) -> Result<Response, RpcError> {
        match self.routes.get(path) {
            Some(procedure) => procedure.call(call),
            None => Err(not_found(path)),
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

/// The parts of an HTTP request a context is built from: method, path and headers.
///
/// Header names are matched without regard to case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The URL path, without the query.
    pub path: String,
    /// Header names and values, in the order received.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// The first value of header `name`.
    ///
    /// ```
    /// let head = outer_core::RequestHead {
    ///     headers: vec![("Authorization".into(), "Bearer t".into())],
    ///     ..Default::default()
    /// };
    /// assert_eq!(head.header("authorization"), Some("Bearer t"));
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type ContextBuilder<Ctx> = Arc<dyn Fn(&RequestHead) -> Result<Ctx, RpcError> + Send + Sync>;

/// A router and the function that builds each request's context from its head (for example,
/// the user from an `authorization` header). Its error answers the request instead of the
/// procedure: 401 `UNAUTHORIZED` for a missing token, say.
///
/// ```
/// use outer_core::procedure::{query, Call, Request};
/// use outer_core::{App, ErrorCode, RequestHead, Router, RpcError};
///
/// #[derive(Clone)] struct User(String);
/// let router = Router::new()
///     .route("me", query(|req: Request<User, ()>| async move { Ok::<_, RpcError>(req.ctx.0) }));
/// let app = App::new(router, |head: &RequestHead| match head.header("authorization") {
///     Some(token) => Ok(User(token.into())),
///     None => Err(RpcError::from_code(ErrorCode::UNAUTHORIZED)),
/// });
/// let err = app.call(&RequestHead::default(), "me", None, None).unwrap_err();
/// assert_eq!(err.status(), 401);
/// ```
pub struct App<Ctx> {
    router: Router<Ctx>,
    context: ContextBuilder<Ctx>,
}

impl<Ctx> Clone for App<Ctx> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
            context: Arc::clone(&self.context),
        }
    }
}

impl<Ctx> fmt::Debug for App<Ctx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App").field("router", &self.router).finish()
    }
}

impl<Ctx> App<Ctx> {
    /// Pairs `router` with a context builder.
    pub fn new(
        router: Router<Ctx>,
        context: impl Fn(&RequestHead) -> Result<Ctx, RpcError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            router,
            context: Arc::new(context),
        }
    }

    /// The router.
    pub fn router(&self) -> &Router<Ctx> {
        &self.router
    }

    /// Builds the context from `head`, then calls the procedure at `path`. Errors before the
    /// handler runs (unknown path, context, input) come back as `Err`.
    pub fn call(
        &self,
        head: &RequestHead,
        path: &str,
        input: Option<serde_json::Value>,
        last_event_id: Option<crate::EventId>,
    ) -> Result<Response, RpcError> {
        let procedure = self.router.get(path).ok_or_else(|| not_found(path))?;
        let ctx = self.context(head)?;
        procedure.call(Call::new(ctx, input).with_last_event_id(last_event_id))
    }

    /// The context for a request with this head: what [`call`](Self::call) builds. A request
    /// that holds several calls (a tRPC batch) builds it once and calls
    /// [`call_in`](Self::call_in) with a clone for each.
    pub fn context(&self, head: &RequestHead) -> Result<Ctx, RpcError> {
        (self.context)(head)
    }

    /// Calls the procedure at `path` in a context already built.
    pub fn call_in(
        &self,
        ctx: Ctx,
        path: &str,
        input: Option<serde_json::Value>,
        last_event_id: Option<crate::EventId>,
    ) -> Result<Response, RpcError> {
        let procedure = self.router.get(path).ok_or_else(|| not_found(path))?;
        procedure.call(Call::new(ctx, input).with_last_event_id(last_event_id))
    }
}

impl<Ctx: Default + 'static> From<Router<Ctx>> for App<Ctx> {
    /// An app whose every request gets `Ctx::default()`.
    fn from(router: Router<Ctx>) -> Self {
        App::new(router, |_| Ok(Ctx::default()))
    }
}
