//! The loopback HTTP suite (outer_http::testing) on smol: every scenario over a real socket.

use std::net::SocketAddr;
use std::sync::Arc;

use outer_core::rt::Timer;
use outer_http::testing::{TestRuntime, TestServer};
use outer_smol::{serve, OuterService, Server, SmolTimer};

struct Smol;

struct Running(Server);

impl TestRuntime for Smol {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(SmolTimer)
    }

    /// On smol's global executor, which runs on threads of its own while the test blocks.
    fn start(service: OuterService<()>) -> Running {
        Running(smol::block_on(async {
            let listener = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            serve(listener, service).unwrap()
        }))
    }
}

impl TestServer for Running {
    fn addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    fn active_streams(&self) -> usize {
        self.0.active_streams()
    }

    fn shutdown(self) -> bool {
        smol::block_on(self.0.shutdown())
    }
}

outer_http::http_suite!(Smol);
