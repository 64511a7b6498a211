//! # outer-monoio
//!
//! Outer on [monoio](https://docs.rs/monoio), thread-per-core, on io_uring or epoll: one
//! runtime per core, each with its own listener on the shared port (`SO_REUSEPORT`), its own
//! server, and the connections it accepted, which never leave its thread. Publishers are shared
//! between the threads as on any runtime.
//!
//! ```no_run
//! use outer_core::{procedure, Router};
//! use outer_monoio::{listener, serve, service, Driver, ServerConfig};
//!
//! fn main() -> std::io::Result<()> {
//!     let threads: Vec<_> = (0..2)
//!         .map(|_| {
//!             std::thread::spawn(|| {
//!                 Driver::available().block_on(async {
//!                     let router = Router::new().route(
//!                         "ping",
//!                         procedure::<()>().input::<u32>().query(|req| async move { Ok(req.input) }),
//!                     );
//!                     // Every thread binds the same port; the kernel spreads connections.
//!                     let listener = listener("127.0.0.1:3000".parse().unwrap())?;
//!                     let server = serve(listener, service(router, Default::default()))?;
//!                     std::future::pending::<()>().await;
//!                     server.shutdown().await;
//!                     Ok::<_, std::io::Error>(())
//!                 })
//!             })
//!         })
//!         .collect();
//!     for thread in threads {
//!         thread.join().expect("a server thread")??;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! ## What a thread-per-core runtime needs from Outer, and what Outer needs from it
//! - Nothing on the connection path need be `Send`: `outer_http::server::accept_loop` takes
//!   monoio's listener, sockets and a spawner as they are.
//! - monoio's sleeps are not `Send`, and an event stream holds one for its keep-alives, so
//!   [`MonoioRuntime`] hands them over in an `outer_http::local::Local`: checked to stay on
//!   their thread, which they do. The same wrapper lets a handler await `!Send` futures
//!   (`outer_http::local::local`).
//! - Wakes come from other threads (a publisher on another core, a shutdown signal): monoio is
//!   built with its `sync` feature (without it, monoio panics at the first such wake).
//! - monoio runs a task that woke itself during its poll before all others, and polls its driver
//!   only when no task is left; Outer's streams yield by waking themselves. Every task this
//!   crate spawns is wrapped in `outer_http::fair::WakeBehind`, which defers such wakes to the
//!   driver's next turn, so one busy stream cannot starve the other connections.
//! - `Server::shutdown` sleeps on monoio's timer, so await it on the server's own thread. A
//!   runtime with no handle to spawn onto from outside is stopped the same way: signal its
//!   thread, let it shut its server down, and join it (this crate's `testing` adapter does).
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt};
use hyper_util::rt::TokioIo;
use monoio::io::IntoPollIo;
use monoio::net::tcp::stream_poll::TcpStreamPoll;
use outer_core::rt::{Sleep, Spawn, Task, Timer};
use outer_core::App;
use outer_http::fair::WakeBehind;
use outer_http::local::Local;
use outer_http::server::accept_loop;

pub mod client;

pub use client::{Client, MonoioTransport};
pub use outer_http::server::Server;
pub use outer_http::{
    Http2Config, HttpService, OrpcOptions, OuterBody, OuterService, ServerConfig, Shutdown, Stack,
    StreamTiming,
};

/// monoio as Outer uses it ([`outer_core::rt::Runtime`]): its timer, for keep-alives, stream
/// deadlines, header timeouts, backoff and retention, and `monoio::spawn` for background tasks,
/// which run on the thread that spawns them.
///
/// Sleep and spawn only on a monoio runtime's thread, built with its timer (as [`Driver`]
/// builds them); `now` works anywhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct MonoioRuntime;

impl Timer for MonoioRuntime {
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(Local::new(monoio::time::sleep(duration)))
    }

    fn now(&self) -> Duration {
        // monoio's timer runs on `std::time::Instant`.
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = std::time::Instant::now();
        now.saturating_duration_since(*ORIGIN.get_or_init(|| now))
    }
}

impl Spawn for MonoioRuntime {
    fn spawn(&self, task: Task) {
        // Detached: a dropped handle leaves the task running. monoio runs a task that woke
        // itself first: `WakeBehind` puts it behind the others (see `outer_http::fair`).
        drop(monoio::spawn(WakeBehind::new(task, MonoioRuntime)));
    }
}

/// Which of monoio's I/O drivers a runtime runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Driver {
    /// io_uring (Linux 5.6 and later, where the kernel allows it).
    IoUring,
    /// epoll, everywhere.
    Epoll,
}

impl Driver {
    /// io_uring where this machine has it, else epoll.
    pub fn available() -> Self {
        if monoio::utils::detect_uring() {
            Self::IoUring
        } else {
            Self::Epoll
        }
    }

    /// Runs `future` to its end on a new monoio runtime on this thread, with its timer.
    /// Fails when the driver cannot start (io_uring refused by the kernel, say).
    pub fn block_on<F: Future>(self, future: F) -> io::Result<F::Output> {
        Ok(match self {
            Self::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()?
                .block_on(future),
            Self::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()?
                .block_on(future),
        })
    }
}

/// An [`OuterService`] for `app` on monoio's timer, to [`serve`].
pub fn service<Ctx: Clone + Send + 'static>(
    app: impl Into<App<Ctx>>,
    config: ServerConfig,
) -> OuterService<Ctx> {
    OuterService::new(app, config, Arc::new(MonoioRuntime))
}

/// A listening socket on `addr` that other threads may bind too (`SO_REUSEPORT`): the kernel
/// spreads new connections between them. For [`serve`], one per thread.
///
/// Any process of the same user may bind the port this way too, and then shares its
/// connections: what a restart without downtime wants, and a surprise if an old server is
/// still running.
pub fn listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Serves `stack` (an [`OuterService`], or tower layers around one) on `listener` from this
/// thread: spawns the accept loop and one task per connection on the current monoio runtime,
/// and returns at once. Connections speak HTTP/1.1 or HTTP/2 (prior knowledge), as their first
/// bytes say; HTTP/2's requests run as tasks on the same thread. Call it on a monoio
/// runtime's thread (monoio panics elsewhere).
///
/// Takes a `std` listener (from [`listener`], or bound any way you like), because it keeps a
/// duplicate of it: shutdown closes the port through that at once, where io_uring would queue
/// the close.
pub fn serve<Ctx, S>(
    listener: std::net::TcpListener,
    stack: impl Into<Stack<Ctx, S>>,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    let local_addr = listener.local_addr()?;
    let closer = listener.try_clone()?;
    listener.set_nonblocking(true)?;
    let incoming = Incoming {
        accepted: Box::pin(accepted(monoio::net::TcpListener::from_std(listener)?)),
        closer,
    };
    let (accept, control) = accept_loop(stack.into(), incoming, OnThisThread);
    // Detached: dropping the server stops the accept loop through `control`.
    drop(monoio::spawn(accept));
    tracing::info!(%local_addr, "serving");
    Ok(Server::new(local_addr, control))
}

/// A connection as hyper reads it on monoio: poll-style, on either driver.
pub type MonoioIo = TokioIo<TcpStreamPoll>;

type Accepted = io::Result<(MonoioIo, Option<SocketAddr>)>;

/// Accepted connections, each ready for hyper, with the peer's address.
fn accepted(listener: monoio::net::TcpListener) -> impl Stream<Item = Accepted> {
    stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.and_then(|(stream, peer)| {
            // Events are small writes that must leave at once, not wait for an ACK.
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
            }
            Ok((TokioIo::new(stream.into_poll_io()?), Some(peer)))
        });
        Some((accepted, listener))
    })
}

/// The accept loop's connections. Dropped when accepting stops, and then closes the port at
/// once (see [`serve`]).
struct Incoming {
    accepted: Pin<Box<dyn Stream<Item = Accepted>>>,
    closer: std::net::TcpListener,
}

impl Stream for Incoming {
    type Item = Accepted;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Accepted>> {
        self.accepted.poll_next_unpin(cx)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // Shutting a listening socket's read side makes the kernel refuse new connections now;
        // the descriptors themselves close later, whenever the driver gets to it.
        if let Err(err) = socket2::SockRef::from(&self.closer).shutdown(std::net::Shutdown::Read) {
            tracing::debug!(error = %err, "could not close the listening socket");
        }
    }
}

/// Spawns each connection on the current thread's runtime, where it stays.
#[derive(Clone, Copy, Debug)]
struct OnThisThread;

impl<F: Future<Output = ()> + 'static> hyper::rt::Executor<F> for OnThisThread {
    fn execute(&self, connection: F) {
        // Connections run on their own; shutdown tracks them, not their handles. A stream
        // read flat out wakes itself, which monoio would run before every other connection.
        drop(monoio::spawn(WakeBehind::new(connection, MonoioRuntime)));
    }
}

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
