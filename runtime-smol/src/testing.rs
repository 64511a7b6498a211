//! This adapter as the conformance suite drives it (`outer_harness::conformance::Adapter`),
//! for tests: the smol half of the suite's contract, behind the `testing` feature.
#![allow(clippy::unwrap_used, missing_docs, missing_debug_implementations)]

use std::net::SocketAddr;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_harness::conformance::{Adapter, RunningServer};

use crate::{serve, OuterService, Server, SmolRuntime};

/// Runs servers on smol.
pub struct Smol;

/// A server on smol's global executor; `None` once shut down.
pub struct Running {
    addr: SocketAddr,
    server: Option<Server>,
}

impl Adapter for Smol {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(SmolRuntime)
    }

    /// On smol's global executor, which runs on threads of its own while the test blocks.
    fn start<Ctx: Clone + Send + 'static>(service: OuterService<Ctx>) -> Running {
        let server = smol::block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            serve(listener, service).unwrap()
        });
        Running {
            addr: server.local_addr(),
            server: Some(server),
        }
    }
}

impl RunningServer for Running {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn active_streams(&self) -> usize {
        self.server.as_ref().unwrap().active_streams()
    }

    fn open_connections(&self) -> usize {
        self.server.as_ref().unwrap().open_connections()
    }

    fn shutdown(&mut self) -> bool {
        let server = self.server.take().unwrap(); // shut down once
        smol::block_on(server.shutdown())
    }
}
