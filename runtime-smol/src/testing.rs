//! This adapter as the conformance suite drives it (`outer_harness::conformance::Adapter`),
//! for tests: the smol half of the suite's contract, behind the `testing` feature.
#![allow(clippy::unwrap_used, missing_docs, missing_debug_implementations)]

use std::sync::Arc;

use outer_core::rt::Timer;
use outer_harness::conformance::{Adapter, Served};

use crate::{serve, HttpService, Server, SmolRuntime, Stack};

/// Runs servers on smol.
pub struct Smol;

/// A server on smol's global executor, shut down from blocking code.
pub type Running = Served<fn(Server) -> bool>;

impl Adapter for Smol {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(SmolRuntime)
    }

    /// On smol's global executor, which runs on threads of its own while the test blocks.
    fn start<Ctx, S>(stack: impl Into<Stack<Ctx, S>>) -> Running
    where
        Ctx: Clone + Send + 'static,
        S: HttpService,
    {
        let stack = stack.into();
        start_with(|listener| serve(listener, stack))
    }
}

/// A server that `serve` starts on a fresh loopback listener, on smol's global executor (as
/// [`Smol`]'s are): for servers `serve` makes in other ways (over TLS, say).
pub fn start_with(
    serve: impl FnOnce(async_net::TcpListener) -> std::io::Result<Server>,
) -> Running {
    let server = smol::block_on(async {
        let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        serve(listener).unwrap()
    });
    Served::new(server, |server: Server| smol::block_on(server.shutdown()))
}
