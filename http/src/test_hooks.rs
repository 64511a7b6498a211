//! Hooks for failure tests, served beside the procedures: never where strangers can reach them.

use std::task::{Context, Poll};

use futures_util::future::Either;
use http::header::HeaderValue;
use http::{Method, Request, Response};
use tower_layer::Layer;

use crate::config::normalize_prefix;
use crate::pages::{answer, AnswerOrPass};
use crate::{OuterBody, OuterService};

/// A tower layer that serves failure-test hooks under a prefix, for the [`OuterService`] it was
/// made with: with `"/__test"`, `GET /__test/streams` answers `{"active_streams":n}` (streams
/// whose handler has not been dropped yet) and `POST /__test/drop` cuts every open stream and
/// WebSocket as a network failure would ([`OuterService::abort_streams`]). Every other request
/// passes on. Anyone who can reach the hooks can cut every stream: add this layer only in test
/// deployments.
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # #[derive(Debug)] struct MyTimer;
/// # impl outer_core::rt::Timer for MyTimer {
/// #     fn sleep(&self, _: Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
/// #     fn now(&self) -> Duration { Duration::ZERO }
/// # }
/// use outer_http::{OuterService, ServerConfig, TestHooks};
///
/// let outer = OuterService::new(outer_core::Router::<()>::new(), ServerConfig::default(), Arc::new(MyTimer));
/// let stack = outer.clone().layer(TestHooks::new("/__test", &outer));
/// # let _ = stack;
/// ```
#[derive(Debug)]
pub struct TestHooks<Ctx> {
    prefix: String,
    outer: OuterService<Ctx>,
}

impl<Ctx> Clone for TestHooks<Ctx> {
    fn clone(&self) -> Self {
        Self {
            prefix: self.prefix.clone(),
            outer: self.outer.clone(),
        }
    }
}

impl<Ctx> TestHooks<Ctx> {
    /// Hooks under `prefix` (`"/__test"`) for `outer`.
    pub fn new(prefix: &str, outer: &OuterService<Ctx>) -> Self {
        Self {
            prefix: normalize_prefix(prefix),
            outer: outer.clone(),
        }
    }
}

impl<Ctx, S> Layer<S> for TestHooks<Ctx> {
    type Service = TestHooksService<Ctx, S>;

    fn layer(&self, inner: S) -> Self::Service {
        TestHooksService {
            hooks: self.clone(),
            inner,
        }
    }
}

/// The service [`TestHooks`] makes: the hooks, then the service inside.
#[derive(Debug)]
pub struct TestHooksService<Ctx, S> {
    hooks: TestHooks<Ctx>,
    inner: S,
}

impl<Ctx, S: Clone> Clone for TestHooksService<Ctx, S> {
    fn clone(&self) -> Self {
        Self {
            hooks: self.hooks.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<Ctx, S, B> tower_service::Service<Request<B>> for TestHooksService<Ctx, S>
where
    S: tower_service::Service<Request<B>, Response = Response<OuterBody>>,
{
    type Response = Response<OuterBody>;
    type Error = S::Error;
    type Future = AnswerOrPass<S::Error, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let hook = request
            .uri()
            .path()
            .strip_prefix(self.hooks.prefix.as_str());
        let json = match (request.method(), hook) {
            (&Method::GET, Some("/streams")) => Some(format!(
                "{{\"active_streams\":{}}}",
                self.hooks.outer.active_streams()
            )),
            (&Method::POST, Some("/drop")) => {
                self.hooks.outer.abort_streams();
                Some(String::from("{\"aborted\":true}"))
            }
            _ => None,
        };
        match json {
            Some(json) => answer(json.into(), HeaderValue::from_static("application/json")),
            None => Either::Right(self.inner.call(request)),
        }
    }
}
