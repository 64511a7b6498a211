//! # outer-smol
//!
//! Outer on smol: serve a router over HTTP/1.1 and HTTP/2 with hyper, on async-io's reactor;
//! over TLS with rustls (`serve_tls`, feature `tls`), inside any tower layers
//! ([`OuterService::layer`]).
//!
//! ```no_run
//! use outer_core::{procedure, Router};
//! use outer_smol::{serve, service, ServerConfig};
//!
//! fn main() -> std::io::Result<()> {
//!     smol::block_on(async {
//!         let router = Router::new()
//!             .route("ping", procedure::<()>().input::<u32>().query(|req| async move { Ok(req.input) }));
//!         let listener = async_net::TcpListener::bind("127.0.0.1:3000").await?;
//!         // `POST /rpc/ping` with `{"json":1}` answers `{"json":1}`.
//!         let server = serve(listener, service(router, ServerConfig::default()))?;
//!         eprintln!("listening on {}", server.local_addr());
//!         # let stop = async {};
//!         stop.await; // e.g. a signal handler
//!         server.shutdown().await;
//!         Ok(())
//!     })
//! }
//! ```
//!
//! ## Executors
//! [`serve`] spawns on smol's global executor (`smol::spawn`), which runs on its own threads
//! (`SMOL_THREADS`, default one), so it serves even while nothing else polls. To run on an
//! executor of your own, use [`serve_on`]; then that executor must be run (for example with
//! `executor.run(future)`) for the server to make progress.
//!
//! smol's executors run tasks first in, first out. Under a load that keeps every subscriber's
//! task busy, a request that arrives (a publish, say) waits behind every task already woken:
//! about one round of subscriber writes. So a publisher that posts over one HTTP connection gets
//! about one post in per round; posting from several connections at once, or publishing from
//! inside the server, raises that. Tokio's scheduler runs tasks woken by I/O ahead of a backlog,
//! which favours publishers over subscribers' latency; BENCHMARKS.md has the measurements.
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_net::TcpListener;
use outer_core::rt::{Sleep, Spawn, Task, Timer};
use outer_core::App;
use outer_http::server::{accept_loop_in_lanes, end_turn_by_waking};
use smol::stream::Stream;

pub mod client;
mod hyper_io;
#[cfg(feature = "tls")]
#[path = "tls.rs"]
mod tls_io;

pub use client::{Client, SmolTransport};
pub use hyper_io::SmolIo;
pub use outer_http::server::Server;
#[cfg(feature = "tls")]
pub use outer_http::tls;
pub use outer_http::{
    Http2Config, HttpService, OrpcOptions, OuterBody, OuterService, ServerConfig, Shutdown, Stack,
    StreamTiming,
};

/// smol as Outer uses it ([`outer_core::rt::Runtime`]): async-io's timer, for keep-alives,
/// stream deadlines, header timeouts, backoff and retention, and smol's global executor for
/// background tasks. It needs no runtime context: async-io drives its own reactor.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmolRuntime;

impl Spawn for SmolRuntime {
    fn spawn(&self, task: Task) {
        smol::spawn(task).detach();
    }
}

impl Timer for SmolRuntime {
    fn sleep(&self, duration: Duration) -> Sleep {
        let timer = async_io::Timer::after(duration);
        Box::pin(async move {
            timer.await;
        })
    }

    fn now(&self) -> Duration {
        // async-io's timers run on `std::time::Instant`.
        static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = std::time::Instant::now();
        now.saturating_duration_since(*ORIGIN.get_or_init(|| now))
    }
}

/// smol on an executor of the application's ([`outer_core::rt::Runtime`]): background tasks run
/// on that executor, as [`serve_on`]'s connections do; sleeps and time are [`SmolRuntime`]'s.
///
/// ```
/// use std::sync::Arc;
/// let executor = Arc::new(smol::Executor::new());
/// let runtime = outer_smol::SmolExecutor(Arc::clone(&executor));
/// # let _ = runtime;
/// ```
#[derive(Clone, Debug)]
pub struct SmolExecutor(pub Arc<smol::Executor<'static>>);

impl Spawn for SmolExecutor {
    fn spawn(&self, task: Task) {
        self.0.spawn(task).detach();
    }
}

impl Timer for SmolExecutor {
    fn sleep(&self, duration: Duration) -> Sleep {
        SmolRuntime.sleep(duration)
    }

    fn now(&self) -> Duration {
        SmolRuntime.now()
    }
}

/// An [`OuterService`] for `app` on async-io's timer, to [`serve`].
pub fn service<Ctx: Clone + Send + 'static>(
    app: impl Into<App<Ctx>>,
    config: ServerConfig,
) -> OuterService<Ctx> {
    // The spawner runs WebSockets upgraded under a server of someone else's (axum).
    OuterService::new(app, config, Arc::new(SmolRuntime)).with_spawner(Arc::new(SmolRuntime))
}

/// Serves `stack` on `listener`: spawns the accept loop and one task per connection on
/// smol's global executor, and returns at once. Each connection speaks HTTP/1.1 or HTTP/2 (with
/// prior knowledge), as its first bytes say.
///
/// `stack` is an [`OuterService`], or tower layers around one ([`OuterService::layer`]).
///
/// Fails when the listener has no local address.
pub fn serve<Ctx, S>(listener: TcpListener, stack: impl Into<Stack<Ctx, S>>) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    start(listener, stack.into(), Spawner(None), SmolIo::new)
}

/// Serves `stack` on `listener`, spawning on `executor`: it serves only while that executor
/// runs.
pub fn serve_on<Ctx, S>(
    executor: Arc<smol::Executor<'static>>,
    listener: TcpListener,
    stack: impl Into<Stack<Ctx, S>>,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    start(listener, stack.into(), Spawner(Some(executor)), SmolIo::new)
}

/// Serves `stack` on `listener` over TLS, on smol's global executor: as [`serve`], each
/// connection first completing a TLS handshake (in its own task, within the header read
/// timeout). ALPN offers `h2` and `http/1.1` unless `tls` sets its own, so browsers speak
/// HTTP/2.
///
/// ```no_run
/// # async fn run(router: outer_core::Router<()>) -> std::io::Result<()> {
/// use outer_smol::{serve_tls, service, ServerConfig};
/// let config = ServerConfig::default();
/// let tls = outer_smol::tls::from_pem_files("cert.pem", "key.pem", &config)?;
/// let listener = async_net::TcpListener::bind("127.0.0.1:3443").await?;
/// let server = serve_tls(listener, service(router, config), tls)?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
pub fn serve_tls<Ctx, S>(
    listener: TcpListener,
    stack: impl Into<Stack<Ctx, S>>,
    tls: Arc<tls::rustls::ServerConfig>,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    start_tls(listener, stack.into(), Spawner(None), tls)
}

/// [`serve_tls`], spawning on `executor`: it serves only while that executor runs.
#[cfg(feature = "tls")]
pub fn serve_tls_on<Ctx, S>(
    executor: Arc<smol::Executor<'static>>,
    listener: TcpListener,
    stack: impl Into<Stack<Ctx, S>>,
    tls: Arc<tls::rustls::ServerConfig>,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    start_tls(listener, stack.into(), Spawner(Some(executor)), tls)
}

#[cfg(feature = "tls")]
fn start_tls<Ctx, S>(
    listener: TcpListener,
    stack: Stack<Ctx, S>,
    spawner: Spawner,
    tls: Arc<tls::rustls::ServerConfig>,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    use smol::future::FutureExt as _;
    let acceptor = futures_rustls::TlsAcceptor::from(tls::with_alpn(tls, stack.outer().config()));
    start(listener, stack, spawner, move |stream| {
        let handshake = acceptor.accept(stream);
        outer_http::server::Handshake::new(
            async move { handshake.await.map(tls_io::FuturesIo) }.boxed(),
        )
    })
}

fn start<Ctx, S, I>(
    listener: TcpListener,
    stack: Stack<Ctx, S>,
    spawner: Spawner,
    wrap: impl Fn(async_net::TcpStream) -> I + Send + Sync + 'static,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: outer_http::server::Socket + Send,
{
    let local_addr = listener.local_addr()?;
    // Event streams are written from a lane per core: smol's executor runs tasks first in,
    // first out, and a task per stream would put every publisher behind all the streams its
    // publish woke (see `outer_http::server::accept_loop_in_lanes`).
    let lanes = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (accept, control) = accept_loop_in_lanes(
        stack,
        incoming(listener, wrap),
        spawner.clone(),
        lanes,
        end_turn_by_waking,
    );
    // Detached: dropping the server stops the accept loop through `control`.
    spawner.spawn(accept).detach();
    tracing::info!(%local_addr, "serving");
    Ok(Server::new(local_addr, control))
}

/// Accepted connections, each ready for hyper, with the peer's address.
type Incoming<I> = Pin<Box<dyn Stream<Item = io::Result<(I, Option<SocketAddr>)>> + Send>>;

/// Accepted connections as a stream, each made ready for hyper by `wrap`. It owns the listener,
/// so the listener closes when the accept loop ends.
fn incoming<I: Send + 'static>(
    listener: TcpListener,
    wrap: impl Fn(async_net::TcpStream) -> I + Send + Sync + 'static,
) -> Incoming<I> {
    let wrap = Arc::new(wrap);
    Box::pin(smol::stream::unfold(listener, move |listener| {
        let wrap = Arc::clone(&wrap);
        async move {
            let accepted = listener.accept().await.map(|(stream, peer)| {
                // Events are small writes that must leave at once, not wait for an ACK.
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
                }
                (wrap(stream), Some(peer))
            });
            Some((accepted, listener))
        }
    }))
}

/// Spawns on a given executor, or on smol's global one.
#[derive(Clone)]
struct Spawner(Option<Arc<smol::Executor<'static>>>);

impl Spawner {
    fn spawn<F>(&self, future: F) -> smol::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(executor) => executor.spawn(future),
            None => smol::spawn(future),
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> hyper::rt::Executor<F> for Spawner {
    fn execute(&self, connection: F) {
        // Connections run on their own; shutdown tracks them, not their handles.
        self.spawn(connection).detach();
    }
}

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
