//! This adapter as the conformance suite drives it (`outer_harness::conformance::Adapter`),
//! for tests: the tokio half of the suite's contract, behind the `testing` feature.
#![allow(clippy::unwrap_used, missing_docs, missing_debug_implementations)]

use std::sync::Arc;

use outer_core::rt::Timer;
use outer_harness::conformance::{Adapter, Served, ShutDown};

use crate::{serve, serve_in_lanes, HttpService, Server, Stack, TokioRuntime};

/// Runs servers on tokio as [`serve`] does: HTTP/1.1 event streams written from a lane per
/// worker thread.
pub type Tokio = TokioIn<PER_WORKER>;

/// Runs servers on tokio, each HTTP/1.1 event stream written from its connection's task
/// ([`serve_in_lanes`] with no lanes).
pub type TokioTaskPerStream = TokioIn<0>;

/// [`TokioIn`]'s lanes as [`serve`] chooses them: one per worker thread.
pub const PER_WORKER: usize = usize::MAX;

/// Runs servers on tokio with `LANES` lanes for event streams (0: a task per stream;
/// [`PER_WORKER`]: as [`serve`] serves).
pub struct TokioIn<const LANES: usize>;

/// A server on a runtime of its own, so that the blocking test client never stalls it.
pub type Running = Served<OwnRuntime>;

/// The server's runtime: it lives until the server is dropped, shut down or not.
pub struct OwnRuntime(Option<tokio::runtime::Runtime>);

impl ShutDown for OwnRuntime {
    fn shut_down(&mut self, server: Server) -> bool {
        self.0.as_ref().unwrap().block_on(server.shutdown())
    }
}

impl Drop for OwnRuntime {
    fn drop(&mut self) {
        // Without waiting for its workers: a test that failed because a task never yields must
        // not hang here waiting for that task.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl<const LANES: usize> Adapter for TokioIn<LANES> {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(TokioRuntime)
    }

    fn start<Ctx, S>(stack: impl Into<Stack<Ctx, S>>) -> Running
    where
        Ctx: Clone + Send + 'static,
        S: HttpService,
    {
        let stack = stack.into();
        start_with(|listener| match LANES {
            PER_WORKER => serve(listener, stack),
            lanes => serve_in_lanes(listener, stack, lanes),
        })
    }
}

/// A server that `serve` starts on a fresh loopback listener, on a runtime of its own (as
/// [`Tokio`]'s are): for servers `serve` makes in other ways (over TLS, say).
pub fn start_with(
    serve: impl FnOnce(tokio::net::TcpListener) -> std::io::Result<Server>,
) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        serve(listener).unwrap()
    });
    Served::new(server, OwnRuntime(Some(runtime)))
}
