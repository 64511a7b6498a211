//! An [`OuterService`] inside tower layers: what Outer's own servers serve.
//!
//! A server needs two things from what it serves: a tower service to answer each request
//! with (any stack of layers: CORS, request ids, authentication, compression), and the
//! [`OuterService`] inside it, whose limits, timer and shutdown signal the server runs by.
//! [`Stack`] keeps both.

use std::fmt;

use http::{Request, Response};
use hyper::body::Incoming;
use tower_layer::Layer;

use crate::OuterService;

/// Errors a service or a body may fail with, as hyper carries them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A tower service Outer's servers can run on each connection: an [`OuterService`] itself, or
/// any stack of tower layers around one. Implemented for every service with these bounds;
/// nothing to implement by hand.
pub trait HttpService:
    tower_service::Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error: Into<BoxError>,
        Future: Send + 'static,
    > + Clone
    + Send
    + Unpin
    + 'static
{
    /// The body of its responses: [`OuterBody`](crate::OuterBody), or what a layer made of it
    /// (a compressed body, say).
    type ResponseBody: http_body::Body<Data: Send, Error: Into<BoxError>> + Send + 'static;
}

impl<S, B> HttpService for S
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>>
        + Clone
        + Send
        + Unpin
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type ResponseBody = B;
}

/// An [`OuterService`] and the tower service that answers requests around it: what
/// `outer_tokio::serve` and `outer_smol::serve` take. An `OuterService` converts into one
/// with no layers; [`OuterService::layer`] and [`Stack::layer`] add them.
///
/// Each layer wraps everything added before it, so the last one added sees a request first.
/// Layers reach every request, including WebSocket upgrades (the socket itself is Outer's once
/// the `101` is sent) and HTTP/2 streams.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use outer_core::Router;
/// use outer_http::{OuterService, ServerConfig};
/// # #[derive(Debug)] struct MyTimer;
/// # impl outer_core::rt::Timer for MyTimer {
/// #     fn sleep(&self, _: Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
/// #     fn now(&self) -> Duration { Duration::ZERO }
/// # }
///
/// let outer = OuterService::new(Router::<()>::new(), ServerConfig::default(), Arc::new(MyTimer));
/// // Any tower layer: here, one that refuses requests over 64 at once.
/// let stack = outer.layer(tower::limit::ConcurrencyLimitLayer::new(64));
/// assert_eq!(stack.outer().active_streams(), 0);
/// ```
pub struct Stack<Ctx, S> {
    outer: OuterService<Ctx>,
    service: S,
}

impl<Ctx, S> Stack<Ctx, S> {
    /// `service` in front of `outer`. `service` must pass the requests it does not answer
    /// itself on to `outer` (a clone of it): the server runs by `outer`'s limits, timer and
    /// shutdown, and hands it the WebSockets it accepts. [`OuterService::layer`] builds one
    /// from a tower layer, which is usually what you want; this is for a service that is not a
    /// layer (a router of your own with `outer` as its fallback, say).
    pub fn new(outer: OuterService<Ctx>, service: S) -> Self {
        Self { outer, service }
    }

    /// Wraps the stack in one more layer, outermost.
    pub fn layer<L: Layer<S>>(self, layer: L) -> Stack<Ctx, L::Service> {
        Stack {
            service: layer.layer(self.service),
            outer: self.outer,
        }
    }

    /// The Outer service inside the stack.
    pub fn outer(&self) -> &OuterService<Ctx> {
        &self.outer
    }

    /// The outermost service, which answers each request.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// The two parts: the Outer service and the outermost service.
    pub fn into_parts(self) -> (OuterService<Ctx>, S) {
        (self.outer, self.service)
    }
}

impl<Ctx> OuterService<Ctx> {
    /// This service inside a tower layer, to serve with Outer's own servers; add more with
    /// [`Stack::layer`].
    pub fn layer<L: Layer<OuterService<Ctx>>>(self, layer: L) -> Stack<Ctx, L::Service> {
        Stack {
            service: layer.layer(self.clone()),
            outer: self,
        }
    }
}

impl<Ctx> From<OuterService<Ctx>> for Stack<Ctx, OuterService<Ctx>> {
    fn from(outer: OuterService<Ctx>) -> Self {
        Stack {
            service: outer.clone(),
            outer,
        }
    }
}

impl<Ctx, S: Clone> Clone for Stack<Ctx, S> {
    fn clone(&self) -> Self {
        Self {
            outer: self.outer.clone(),
            service: self.service.clone(),
        }
    }
}

impl<Ctx, S> fmt::Debug for Stack<Ctx, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stack")
            .field("outer", &self.outer)
            .field("service", &std::any::type_name::<S>())
            .finish()
    }
}
