//! # outer-tokio
//!
//! Outer on tokio: serve a router over HTTP/1.1 and HTTP/2 with hyper, over TLS with rustls
//! (`serve_tls`, feature `tls`), inside any tower layers ([`OuterService::layer`]), or mount
//! it in axum.
//!
//! ```no_run
//! use outer_core::{procedure, Router};
//! use outer_tokio::{serve, service, ServerConfig};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let router = Router::new()
//!         .route("ping", procedure::<()>().input::<u32>().query(|req| async move { Ok(req.input) }));
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//!     // `POST /rpc/ping` with `{"json":1}` answers `{"json":1}`.
//!     let server = serve(listener, service(router, ServerConfig::default()))?;
//!     eprintln!("listening on {}", server.local_addr());
//!     tokio::signal::ctrl_c().await?;
//!     // Ends every event stream between two events (clients reconnect elsewhere and
//!     // resume), lets connections finish within `shutdown_grace`, then returns.
//!     server.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! ## In axum
//! [`OuterService`] is a tower service. `nest_service` strips its path from the request, so
//! serve at the root of the nest with an empty prefix (and no oRPC 2 prefix inside it: nest a
//! second service for oRPC 2, with `rpc_v2_prefix: Some(String::new())`):
//!
//! ```no_run
//! # use outer_core::Router;
//! # async fn run(router: Router<()>) -> std::io::Result<()> {
//! let config = outer_tokio::ServerConfig {
//!     rpc_prefix: String::new(),
//!     rpc_v2_prefix: None,
//!     ..Default::default()
//! };
//! let app = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .nest_service("/rpc", outer_tokio::service(router, config));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await
//! # }
//! ```
//!
//! There, axum owns the connections: the service still enforces its limits, and triggering
//! [`OuterService::shutdown`] ends its event streams, which lets axum's own graceful shutdown
//! finish.
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

use std::future::Future as _;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use outer_core::rt::{Sleep, Spawn, Task, Timer};
use outer_core::App;
#[cfg(feature = "tls")]
use outer_http::server::Handshake;
use outer_http::server::{accept_loop_in_lanes, Socket};
use tokio::net::{TcpListener, TcpStream};

pub mod client;

pub use client::{Client, TokioTransport};
pub use outer_http::server::Server;
#[cfg(feature = "tls")]
pub use outer_http::tls;
pub use outer_http::{
    Http2Config, HttpService, OrpcOptions, OuterBody, OuterService, ServerConfig, Shutdown, Stack,
    StreamTiming,
};

/// Tokio as Outer uses it ([`outer_core::rt::Runtime`]): its timer, for keep-alives, stream
/// deadlines, header timeouts, backoff and retention, and `tokio::spawn` for background tasks.
///
/// Its sleeps must be polled, and its tasks spawned, inside a tokio runtime with time enabled,
/// as any `tokio::time::sleep` and `tokio::spawn`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioRuntime;

impl Spawn for TokioRuntime {
    fn spawn(&self, task: Task) {
        tokio::spawn(task);
    }
}

impl Timer for TokioRuntime {
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }

    fn now(&self) -> Duration {
        // tokio's own clock, so that a paused test clock moves sleeps and `now` together.
        static ORIGIN: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
        let now = tokio::time::Instant::now();
        now.saturating_duration_since(*ORIGIN.get_or_init(|| now))
    }

    fn yield_now(&self) -> Option<Sleep> {
        // A task that wakes itself during its poll goes to tokio's LIFO slot and runs again
        // first; tokio's own yield defers the wake until the worker has run the others.
        Some(Box::pin(tokio::task::yield_now()))
    }
}

/// Tokio through a [`Handle`](tokio::runtime::Handle) ([`outer_core::rt::Runtime`]): background
/// tasks are spawned onto that runtime and sleeps are made in it, from any thread, inside that
/// runtime's context or not. For a publisher used from threads other than the runtime's.
///
/// ```
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let runtime = outer_tokio::TokioHandle(rt.handle().clone());
/// # let _ = runtime;
/// ```
#[derive(Clone, Debug)]
pub struct TokioHandle(pub tokio::runtime::Handle);

impl Spawn for TokioHandle {
    fn spawn(&self, task: Task) {
        self.0.spawn(task);
    }
}

impl Timer for TokioHandle {
    fn sleep(&self, duration: Duration) -> Sleep {
        let _context = self.0.enter();
        TokioRuntime.sleep(duration)
    }

    fn now(&self) -> Duration {
        TokioRuntime.now()
    }

    fn yield_now(&self) -> Option<Sleep> {
        TokioRuntime.yield_now()
    }
}

/// An [`OuterService`] for `app` on tokio's timer: to [`serve`], or to mount in axum.
pub fn service<Ctx: Clone + Send + 'static>(
    app: impl Into<App<Ctx>>,
    config: ServerConfig,
) -> OuterService<Ctx> {
    // The spawner runs WebSockets upgraded under a server of someone else's (axum).
    OuterService::new(app, config, Arc::new(TokioRuntime)).with_spawner(Arc::new(TokioRuntime))
}

/// Serves `stack` on `listener`: spawns the accept loop and one task per connection on the
/// current tokio runtime, and returns at once. Each connection speaks HTTP/1.1 or HTTP/2
/// (with prior knowledge), as its first bytes say. HTTP/1.1 event streams are written from a
/// lane per worker thread ([`serve_in_lanes`]).
///
/// `stack` is an [`OuterService`], or tower layers around one ([`OuterService::layer`]):
///
/// ```no_run
/// # async fn run(router: outer_core::Router<()>) -> std::io::Result<()> {
/// use outer_tokio::{serve, service, ServerConfig};
/// let app = service(router, ServerConfig::default())
///     .layer(tower_http::cors::CorsLayer::permissive());
/// let server = serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app)?;
/// # Ok(()) }
/// ```
///
/// Fails when called outside a tokio runtime, or when the listener has no local address.
pub fn serve<Ctx, S>(listener: TcpListener, stack: impl Into<Stack<Ctx, S>>) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    start(listener, stack.into(), lanes_per_worker()?, TokioIo::new)
}

/// Serves `stack` on `listener` as [`serve`] does, with each HTTP/1.1 event stream written from
/// one of `lanes` tasks rather than from its connection's own
/// ([`outer_http::server::accept_loop_in_lanes`]): a publish then wakes one task per lane
/// instead of one per subscriber, and a lane ends each turn of 16 writes with tokio's yield,
/// so that tokio looks for I/O (the next posts) before the lane's next turn. More events then
/// share each write: at 1,000 subscribers, 1.4 to 1.5 times the events per second of a task per
/// stream (BENCHMARKS.md). [`serve`] gives one lane per worker thread; `lanes` 0 writes each
/// stream from its connection's task.
///
/// ```no_run
/// # async fn run(router: outer_core::Router<()>) -> std::io::Result<()> {
/// use outer_tokio::{serve_in_lanes, service, ServerConfig};
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let server = serve_in_lanes(listener, service(router, ServerConfig::default()), 2)?;
/// # Ok(()) }
/// ```
pub fn serve_in_lanes<Ctx, S>(
    listener: TcpListener,
    stack: impl Into<Stack<Ctx, S>>,
    lanes: usize,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    start(listener, stack.into(), lanes, TokioIo::new)
}

/// One lane per worker thread of the current runtime.
fn lanes_per_worker() -> io::Result<usize> {
    let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    Ok(runtime.metrics().num_workers())
}

/// Ends a lane's turn with tokio's yield: tokio polls the lane again only after it has looked
/// for I/O, so the publishers' connections get their turn first. Waking the lane instead
/// (`end_turn_by_waking`) would put it back in the run queue, and tokio looks for I/O only
/// every 61 tasks or when none is ready: posts would come in one turn in sixty.
fn yield_after_io(cx: &mut Context<'_>) {
    let mut yielded = pin!(tokio::task::yield_now());
    // Pending the first time, the lane's wake deferred until tokio's next look for I/O.
    let _ = yielded.as_mut().poll(cx);
}

/// Serves `stack` on `listener` over TLS: as [`serve`], each connection first completing a TLS
/// handshake (in its own task, within the header read timeout). ALPN offers `h2` and
/// `http/1.1` unless `tls` sets its own, so browsers speak HTTP/2.
///
/// ```no_run
/// # async fn run(router: outer_core::Router<()>) -> std::io::Result<()> {
/// use outer_tokio::{serve_tls, service, ServerConfig};
/// let config = ServerConfig::default();
/// let tls = outer_tokio::tls::from_pem_files("cert.pem", "key.pem", &config)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3443").await?;
/// let server = serve_tls(listener, service(router, config), tls)?;
/// # Ok(()) }
/// ```
#[cfg(feature = "tls")]
pub fn serve_tls<Ctx, S>(
    listener: TcpListener,
    stack: impl Into<Stack<Ctx, S>>,
    tls: std::sync::Arc<tls::rustls::ServerConfig>,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
{
    use futures_util::TryFutureExt as _;
    let stack = stack.into();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::with_alpn(tls, stack.outer().config()));
    start(listener, stack, lanes_per_worker()?, move |stream| {
        Handshake::new(acceptor.accept(stream).map_ok(TokioIo::new as fn(_) -> _))
    })
}

/// Serves `stack` on `listener`, each accepted stream made ready for hyper by `wrap`, its event
/// streams written from `lanes` lanes (0: from their connections' tasks).
fn start<Ctx, S, I>(
    listener: TcpListener,
    stack: Stack<Ctx, S>,
    lanes: usize,
    wrap: impl Fn(TcpStream) -> I + Send + Unpin + 'static,
) -> io::Result<Server>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket + Send,
{
    let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
    let local_addr = listener.local_addr()?;
    let incoming = Incoming { listener, wrap };
    let (accept, control) =
        accept_loop_in_lanes(stack, incoming, TokioExecutor::new(), lanes, yield_after_io);
    // Detached: dropping the server stops the accept loop through `control`.
    runtime.spawn(accept);
    tracing::info!(%local_addr, "serving");
    Ok(Server::new(local_addr, control))
}

/// Accepted connections as a stream, each ready for hyper.
struct Incoming<W> {
    listener: TcpListener,
    wrap: W,
}

impl<W: Fn(TcpStream) -> I + Unpin, I> futures_core::Stream for Incoming<W> {
    type Item = io::Result<(I, Option<SocketAddr>)>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.listener.poll_accept(cx).map(|accepted| {
            Some(accepted.map(|(stream, peer)| {
                // Events are small writes that must leave at once, not wait for an ACK.
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "could not set TCP_NODELAY");
                }
                ((this.wrap)(stream), Some(peer))
            }))
        })
    }
}

#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
