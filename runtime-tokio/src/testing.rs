//! This adapter as the conformance suite drives it (`outer_harness::conformance::Adapter`),
//! for tests: the tokio half of the suite's contract, behind the `testing` feature.
#![allow(clippy::unwrap_used, missing_docs, missing_debug_implementations)]

use std::net::SocketAddr;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_harness::conformance::{Adapter, RunningServer};

use crate::{serve, OuterService, Server, TokioRuntime};

/// Runs servers on tokio.
pub struct Tokio;

/// A server on a runtime of its own, so that the blocking test client never stalls it. The
/// runtime lives until this is dropped, shutdown or not.
pub struct Running {
    addr: SocketAddr,
    server: Option<Server>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Adapter for Tokio {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(TokioRuntime)
    }

    fn start<Ctx: Clone + Send + 'static>(service: OuterService<Ctx>) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            serve(listener, service).unwrap()
        });
        Running {
            addr: server.local_addr(),
            server: Some(server),
            runtime: Some(runtime),
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
        self.runtime.as_ref().unwrap().block_on(server.shutdown())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Without waiting for its workers: a test that failed because a task never yields must
        // not hang here waiting for that task.
        drop(self.server.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
