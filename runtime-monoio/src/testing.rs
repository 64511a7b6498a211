//! This adapter as the conformance suite drives it (`outer_harness::conformance::Adapter`),
//! for tests: the monoio half of the suite's contract, behind the `testing` feature, once per
//! driver.
//!
//! monoio has no handle to reach a runtime from outside its thread, so each server runs on a
//! thread of its own, and the test talks to that thread: it gets the [`Server`] back to read
//! its counts, and hands it over again to have it shut down there.
#![allow(clippy::unwrap_used, missing_docs, missing_debug_implementations)]

use std::sync::{mpsc, Arc, Once};

use outer_core::rt::Timer;
use outer_harness::conformance::{Adapter, Served, ShutDown};

use crate::{serve, Driver, HttpService, MonoioRuntime, Server, Stack};

/// Runs servers on monoio's io_uring driver; on epoll, saying so once, where the kernel has no
/// io_uring.
pub struct IoUring;

/// Runs servers on monoio's epoll driver.
pub struct Epoll;

impl IoUring {
    /// io_uring, or epoll where this machine has no io_uring.
    pub fn driver() -> Driver {
        static SAID: Once = Once::new();
        let driver = Driver::available();
        if driver == Driver::Epoll {
            SAID.call_once(|| eprintln!("io_uring is not available here: running on epoll"));
        }
        driver
    }
}

impl Adapter for IoUring {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(MonoioRuntime)
    }

    fn start<Ctx, S>(stack: impl Into<Stack<Ctx, S>>) -> Running
    where
        Ctx: Clone + Send + 'static,
        S: HttpService,
    {
        start(Self::driver(), stack.into())
    }
}

impl Adapter for Epoll {
    type Server = Running;

    fn timer() -> Arc<dyn Timer> {
        Arc::new(MonoioRuntime)
    }

    fn start<Ctx, S>(stack: impl Into<Stack<Ctx, S>>) -> Running
    where
        Ctx: Clone + Send + 'static,
        S: HttpService,
    {
        start(Driver::Epoll, stack.into())
    }
}

/// A server on a monoio thread of its own.
pub type Running = Served<OwnThread>;

/// The server's thread, which runs until this is dropped, shut down or not. Dropping it does
/// not wait for the thread: a test that failed because a task never yields must not hang here.
pub struct OwnThread {
    /// Hands the server back to its thread to be shut down; dropped, lets the thread end.
    to_thread: async_channel::Sender<Server>,
    shut_down: mpsc::Receiver<bool>,
}

impl ShutDown for OwnThread {
    fn shut_down(&mut self, server: Server) -> bool {
        self.to_thread.send_blocking(server).unwrap();
        self.shut_down.recv().unwrap()
    }
}

fn start<Ctx, S>(driver: Driver, stack: Stack<Ctx, S>) -> Running
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    let (ready, started) = mpsc::channel();
    let (to_thread, from_test) = async_channel::bounded::<Server>(1);
    let (done, shut_down) = mpsc::channel();
    std::thread::spawn(move || {
        driver
            .block_on(async move {
                let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                ready.send(serve(listener, stack).unwrap()).unwrap();
                if let Ok(server) = from_test.recv().await {
                    done.send(server.shutdown().await).unwrap();
                }
                // Serve on until the test lets go.
                while from_test.recv().await.is_ok() {}
            })
            .unwrap();
    });
    let server = started.recv().unwrap();
    Served::new(
        server,
        OwnThread {
            to_thread,
            shut_down,
        },
    )
}
