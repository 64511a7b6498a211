//! Serving connections, runtime-free: HTTP/1.1 and HTTP/2 connections, the accept loop and
//! graceful shutdown, written once for every runtime.
//!
//! A runtime adapter supplies only what needs a runtime: a stream of accepted connections, an
//! executor to spawn each on, and the timer inside the service. It spawns the accept loop and
//! returns a [`Server`] around the [`ServerControl`]. TLS or other transports plug in the same
//! way, or call [`serve_connection`] from an accept loop of their own.
//!
//! On HTTP/1.1 an event stream's response is written by Outer rather than by hyper: once hyper
//! has flushed what it buffered, the connection takes its socket back, writes the head, and
//! writes each chunk of the stream itself ([`OnResponse`]); hyper's buffers are freed for as
//! long as the stream lives, and the connection goes back to hyper after a stream that ended.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use futures_util::future::{select, Either};
use futures_util::{Stream, StreamExt};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};

use crate::service::{OuterService, PeerAddr};
use crate::shutdown::{OpenCount, Shutdown, Signal};
use crate::stack::BoxError;
use crate::stack::{HttpService, Stack};
use crate::ws::{self, UpgradeSlot};
use hand_off::{HandOff, StreamWriter};
use lanes::{Lanes, Link};
use sniff::Sniff;

mod hand_off;
mod handshake;
mod lanes;
mod sniff;

pub(crate) use hand_off::RequestRead;
pub use hand_off::{HandedOff, OnResponse};
pub use handshake::Handshake;
pub use lanes::{end_turn_by_waking, EndTurn, LaneTask};
pub use sniff::Rewind;

/// A connection's socket, wrapped for hyper (`hyper_util::rt::TokioIo`, `outer_smol::SmolIo`):
/// any type hyper can read and write. Not `Send` unless the runtime needs it.
pub trait Socket: hyper::rt::Read + hyper::rt::Write + Unpin + 'static {}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + 'static> Socket for T {}

/// What runs a connection's tasks besides its own: HTTP/2 answers each request in a task of
/// its own, and an accept loop writes its HTTP/1.1 event streams from a few lane tasks
/// ([`LaneTask`]), both spawned on this executor (the adapter's runtime). Implemented for every
/// executor that can spawn those tasks; nothing to implement by hand.
pub trait StreamExecutor<S: HttpService, I>:
    hyper::rt::bounds::Http2ServerConnExec<
        <OnConnection<S> as hyper::service::Service<http::Request<Incoming>>>::Future,
        S::ResponseBody,
    > + hyper::rt::Executor<LaneTask<Rewind<I>, S::ResponseBody>>
    + Clone
    + Unpin
    + 'static
{
}

impl<S: HttpService, I, E> StreamExecutor<S, I> for E where
    E: hyper::rt::bounds::Http2ServerConnExec<
            <OnConnection<S> as hyper::service::Service<http::Request<Incoming>>>::Future,
            S::ResponseBody,
        > + hyper::rt::Executor<LaneTask<Rewind<I>, S::ResponseBody>>
        + Clone
        + Unpin
        + 'static
{
}

/// Serves one connection until the client closes it, or until the service's [`Shutdown`] is
/// triggered: then the requests in progress finish (their event streams end cleanly), and the
/// connection closes.
///
/// The connection speaks HTTP/1.1 or HTTP/2, told by its first bytes: HTTP/2 opens with a fixed
/// preface, which a client sends with prior knowledge on cleartext, or under TLS after ALPN
/// chose `h2` (so a TLS stream served here follows what ALPN chose). HTTP/2 runs each request
/// as a task on `executor`. The first bytes must arrive within
/// [`ServerConfig::header_read_timeout`](crate::ServerConfig::header_read_timeout), as must a
/// TLS stream's handshake, which runs when it is first read.
///
/// `io` is the connection, already wrapped for hyper (`hyper_util::rt::TokioIo`,
/// `outer_smol::SmolIo`); `peer`, the client's address, goes into each request's extensions
/// as a [`PeerAddr`], which context builders read as [`RequestHead::peer`](outer_core::RequestHead::peer).
/// `stack` is an [`OuterService`], or tower layers around one ([`Stack`]).
///
/// `io` need not be `Send`: a thread-per-core runtime's sockets are not, and the connection
/// never leaves the thread it is served on. The [`Serving`] future is `Send` exactly when `io`
/// and `executor` are, so a work-stealing runtime can still spawn it.
pub fn serve_connection<Ctx, S, I, E>(
    io: I,
    peer: Option<SocketAddr>,
    stack: impl Into<Stack<Ctx, S>>,
    executor: E,
) -> Serving<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    let (outer, service) = stack.into().into_parts();
    let stop = Box::pin(outer.shutdown().wait());
    let deadline = outer
        .config()
        .header_read_timeout
        .map(|limit| outer.timer().sleep(limit));
    let on_connection = OnConnection {
        service,
        peer,
        upgrade: None,
        hand_off: None,
    };
    Serving {
        phase: Phase::Sniffing {
            io,
            sniff: Sniff::default(),
            deadline,
            on_connection,
        },
        outer,
        executor,
        lanes: None,
        stop: Some(stop),
    }
}

/// One connection being served: what [`serve_connection`] returns. A named type, so that an
/// executor can be bound to it (`hyper::rt::Executor<Connection<..>>`) and its `Send`
/// follows the socket's.
pub struct Serving<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    phase: Phase<Ctx, S, I, E>,
    outer: OuterService<Ctx>,
    executor: E,
    /// Where its HTTP/1.1 event streams are written, when its accept loop has lanes; else in
    /// this task.
    lanes: Option<Lanes<Rewind<I>, S::ResponseBody, E>>,
    /// The shutdown signal, until it fires; then the connection finishes gracefully.
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

/// What a connection is doing: telling its protocol, HTTP/1.1 (then perhaps a WebSocket its
/// last request upgraded to), or HTTP/2.
// HTTP/1.1 is what nearly every connection does for its whole life: it stays inline rather
// than costing each connection an allocation, and the rarer, larger states are boxed.
#[allow(clippy::large_enum_variant)]
enum Phase<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    /// Reading the first bytes, within the header read timeout; the service moves into hyper's
    /// connection once the protocol is known.
    Sniffing {
        io: I,
        sniff: Sniff,
        deadline: Option<outer_core::rt::Sleep>,
        on_connection: OnConnection<S>,
    },
    // Boxed: hyper's connection is three times the size of the rest, and an event stream's
    // connection outlives it (its task keeps the size of its largest phase).
    Http1(Box<http1::Connection<Rewind<I>, OnConnection<S>>>),
    // Boxed: hyper's HTTP/2 connection need not be `Unpin`.
    Http2(Pin<Box<Http2<S, I, E>>>),
    // Boxed: a socket's state is much larger than an HTTP connection's.
    WebSocket(Pin<Box<ws::Socket<Ctx, ws::io::TokioIo<Rewind<I>>>>>),
    /// An event stream's response, written by Outer once hyper handed the socket back (see
    /// `hand_off`).
    // The writer boxed: a stream's task keeps the size of its largest phase, and on a server
    // with lanes (smol's) the writer lives in its lane, not here.
    Streaming {
        writer: Box<StreamWriter<Rewind<I>, S::ResponseBody>>,
        /// The service, for the client's next request once the stream has ended, when the
        /// connection may serve one.
        next: Option<OnConnection<S>>,
    },
    /// The same, its writer in one of the accept loop's lanes.
    InLane {
        link: Link<Rewind<I>>,
        next: Option<OnConnection<S>>,
    },
    /// The last request is answered: shutting the socket down (hyper leaves that to us, since
    /// it cannot know whether an upgrade follows).
    Closing(Rewind<I>),
    Done,
}

/// hyper's HTTP/2 connection, as a connection serves it.
type Http2<S, I, E> = http2::Connection<Rewind<I>, OnConnection<S>, E>;

impl<Ctx, S, I, E> fmt::Debug for Serving<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Sniffing { .. } => "sniffing",
            Phase::Http1(_) => "http/1.1",
            Phase::Http2(_) => "h2",
            Phase::WebSocket(_) => "websocket",
            Phase::Streaming { .. } => "event stream",
            Phase::InLane { .. } => "event stream in a lane",
            Phase::Closing(_) => "closing",
            Phase::Done => "done",
        };
        f.debug_struct("Serving")
            .field("stopping", &self.stop.is_none())
            .field("phase", &phase)
            .finish_non_exhaustive()
    }
}

impl<Ctx, S, I, E> Serving<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    /// Writes the connection's HTTP/1.1 event streams in `lanes`, if any, rather than in its
    /// own task.
    fn in_lanes(mut self, lanes: Option<Lanes<Rewind<I>, S::ResponseBody, E>>) -> Self {
        self.lanes = lanes;
        self
    }

    /// hyper's HTTP/1.1 connection for a socket that speaks it.
    fn http1(&self, mut io: Rewind<I>, mut on_connection: OnConnection<S>) -> Phase<Ctx, S, I, E> {
        let config = self.outer.config();
        let mut builder = http1::Builder::new();
        match config.header_read_timeout {
            Some(timeout) => {
                builder
                    .timer(HyperTimer(Arc::clone(self.outer.timer())))
                    .header_read_timeout(timeout);
            }
            None => {
                builder.header_read_timeout(None);
            }
        }
        if config.websocket.enabled {
            on_connection.upgrade = Some(UpgradeSlot::default());
        }
        let hand_off = HandOff::new();
        io.signal_flushes(Some(Arc::clone(&hand_off.flush)));
        on_connection.hand_off = Some(hand_off);
        Phase::Http1(Box::new(builder.serve_connection(io, on_connection)))
    }

    /// What follows an event stream: the next request, when the stream ended whole (`io`),
    /// the connection may serve one and the server is not stopping; else the close. A stream
    /// cut short leaves the socket as it is: the client learns of the cut from the missing
    /// last chunk.
    fn after_stream(
        &self,
        io: Option<Rewind<I>>,
        next: Option<OnConnection<S>>,
    ) -> Phase<Ctx, S, I, E> {
        match (io, next) {
            (Some(io), Some(on_connection)) if self.stop.is_some() => self.http1(io, on_connection),
            (Some(io), _) => Phase::Closing(io),
            (None, _) => Phase::Done,
        }
    }

    /// hyper's HTTP/2 connection, its limits from the configuration.
    fn http2(&self, io: Rewind<I>, on_connection: OnConnection<S>) -> Phase<Ctx, S, I, E> {
        let config = &self.outer.config().http2;
        let mut builder = http2::Builder::new(self.executor.clone());
        builder
            .timer(HyperTimer(Arc::clone(self.outer.timer())))
            .max_concurrent_streams(config.max_concurrent_streams)
            .max_send_buf_size(config.max_send_buffer_bytes)
            .keep_alive_interval(config.keep_alive_interval)
            .keep_alive_timeout(config.keep_alive_timeout);
        Phase::Http2(Box::pin(builder.serve_connection(io, on_connection)))
    }
}

impl<Ctx, S, I, E> Future for Serving<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Every field is Unpin (what is not is boxed).
        let this = self.get_mut();
        let stopping = this
            .stop
            .as_mut()
            .is_some_and(|stop| stop.as_mut().poll(cx).is_ready());
        if stopping {
            this.stop = None;
        }
        loop {
            match &mut this.phase {
                Phase::Sniffing {
                    io,
                    sniff,
                    deadline,
                    ..
                } => {
                    if this.stop.is_none() {
                        // Nothing asked yet: nothing to finish.
                        this.phase = Phase::Done;
                        continue;
                    }
                    if deadline
                        .as_mut()
                        .is_some_and(|d| d.as_mut().poll(cx).is_ready())
                    {
                        tracing::debug!("no request within the header read timeout");
                        this.phase = Phase::Done;
                        continue;
                    }
                    let version = match ready!(sniff.poll(io, cx)) {
                        Ok(version) => version,
                        Err(err) => {
                            tracing::debug!(error = %err, "connection failed before a request");
                            this.phase = Phase::Done;
                            continue;
                        }
                    };
                    let Phase::Sniffing {
                        io,
                        sniff,
                        on_connection,
                        ..
                    } = std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!("the phase was just matched");
                    };
                    let io = sniff.rewind(io);
                    this.phase = match version {
                        sniff::Version::Http2 if this.outer.config().http2.enabled => {
                            this.http2(io, on_connection)
                        }
                        _ => this.http1(io, on_connection),
                    };
                }
                Phase::Http1(connection) => {
                    if stopping {
                        Pin::new(&mut **connection).graceful_shutdown();
                    }
                    // Without shutdown: after a 101 the socket is the WebSocket's.
                    if let Err(err) = ready!(connection.poll_without_shutdown(cx)) {
                        let Phase::Http1(connection) =
                            std::mem::replace(&mut this.phase, Phase::Done)
                        else {
                            unreachable!("the phase was just matched");
                        };
                        // hyper stopped at the hand-off of an event stream, or for a real
                        // error: a client that goes away mid-response is ordinary.
                        let mut parts = (*connection).into_parts();
                        match parts.service.hand_off.as_ref().and_then(HandOff::take) {
                            Some((response, reuse)) => {
                                parts.io.signal_flushes(None);
                                // Bytes hyper read past the request: a pipelined request the
                                // writer never answers, so the connection closes after it.
                                let reuse = reuse && parts.read_buf.is_empty();
                                let writer = StreamWriter::new(parts.io, response);
                                // Without its slots, which the next hyper connection makes
                                // anew: an idle stream keeps as little as it can.
                                let next = reuse.then(|| OnConnection {
                                    upgrade: None,
                                    hand_off: None,
                                    ..parts.service
                                });
                                this.phase = match &this.lanes {
                                    Some(lanes) => Phase::InLane {
                                        link: lanes.run(writer),
                                        next,
                                    },
                                    None => Phase::Streaming {
                                        writer: Box::new(writer),
                                        next,
                                    },
                                };
                            }
                            None => {
                                tracing::debug!(error = %err, "connection ended with an error")
                            }
                        }
                        continue;
                    }
                    let Phase::Http1(connection) = std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!("the phase was just matched");
                    };
                    let parts = (*connection).into_parts();
                    this.phase = match parts.service.upgrade.and_then(|slot| slot.take()) {
                        Some(upgrade) => Phase::WebSocket(Box::pin(ws::Socket::new(
                            Arc::clone(this.outer.shared()),
                            upgrade,
                            ws::io::TokioIo(parts.io),
                            parts.read_buf.to_vec(),
                        ))),
                        None => Phase::Closing(parts.io),
                    };
                }
                Phase::Http2(connection) => {
                    if stopping {
                        // GOAWAY: no new requests; the open ones finish (their event streams
                        // end with the protocol's interruption).
                        connection.as_mut().graceful_shutdown();
                    }
                    if let Err(err) = ready!(connection.as_mut().poll(cx)) {
                        tracing::debug!(error = %err, "HTTP/2 connection ended with an error");
                    }
                    this.phase = Phase::Done;
                }
                Phase::WebSocket(socket) => {
                    ready!(socket.as_mut().poll(cx));
                    this.phase = Phase::Done;
                }
                Phase::Streaming { writer, .. } => {
                    // A shutdown ends the stream from inside its body (its protocol's
                    // interruption); the connection closes after it.
                    let whole = ready!(Pin::new(&mut **writer).poll(cx));
                    let Phase::Streaming { writer, next } =
                        std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!("the phase was just matched");
                    };
                    this.phase = this.after_stream(whole.then(|| (*writer).into_io()), next);
                }
                Phase::InLane { link, .. } => {
                    let io = ready!(link.poll_ended(cx));
                    let Phase::InLane { next, .. } =
                        std::mem::replace(&mut this.phase, Phase::Done)
                    else {
                        unreachable!("the phase was just matched");
                    };
                    this.phase = this.after_stream(io, next);
                }
                Phase::Closing(io) => {
                    // An error here means the client is gone already, which is all we wanted.
                    let _ = ready!(hyper::rt::Write::poll_shutdown(Pin::new(io), cx));
                    this.phase = Phase::Done;
                }
                Phase::Done => return Poll::Ready(()),
            }
        }
    }
}

/// The service as one connection serves it: each request learns the peer's address; on
/// HTTP/1.1 an upgrade request learns where to leave the accepted upgrade, and an event
/// stream's response is handed to Outer's own writer ([`OnResponse`]).
pub struct OnConnection<S: HttpService> {
    service: S,
    peer: Option<SocketAddr>,
    upgrade: Option<UpgradeSlot>,
    hand_off: Option<HandOff<S::ResponseBody>>,
}

impl<S: HttpService> fmt::Debug for OnConnection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnConnection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl<S: HttpService> hyper::service::Service<http::Request<Incoming>> for OnConnection<S> {
    type Response = http::Response<S::ResponseBody>;
    type Error = BoxError;
    type Future = OnResponse<S>;

    fn call(&self, mut request: http::Request<Incoming>) -> Self::Future {
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(PeerAddr(peer));
        }
        if let Some(slot) = &self.upgrade {
            if ws::wants_upgrade(request.headers()) {
                request.extensions_mut().insert(slot.clone());
            }
        }
        let hand_off = self
            .hand_off
            .as_ref()
            .filter(|_| hand_off::may_hand_off(&request))
            .cloned();
        // Read only where it matters: whether a handed-off stream's socket may serve again.
        let close = hand_off.is_some() && hand_off::asks_to_close(&request);
        // A clone per request, made ready before the call, as tower's contract asks.
        OnResponse::new(
            Box::pin(tower::ServiceExt::oneshot(self.service.clone(), request)),
            hand_off,
            close,
        )
    }
}

/// A connection's task, as the accept loop hands it to the executor: the connection being
/// served, which ends early when shutdown closes connections by force, and counts as open until
/// it is dropped. `Send` exactly when its socket and executor are.
pub struct Connection<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    serving: Serving<Ctx, S, I, E>,
    abort: crate::shutdown::Wait,
    _open: crate::shutdown::OpenGuard,
}

impl<Ctx, S, I, E> fmt::Debug for Connection<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("serving", &self.serving)
            .finish_non_exhaustive()
    }
}

impl<Ctx, S, I, E> Future for Connection<Ctx, S, I, E>
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    I: Socket,
    E: StreamExecutor<S, I>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Pin::new(&mut this.abort).poll(cx).is_ready() {
            return Poll::Ready(());
        }
        Pin::new(&mut this.serving).poll(cx)
    }
}

/// How long an accept loop waits after a failed accept (out of file descriptors, say) before
/// the next, so that it does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long shutdown waits for connections it closed by force to go, so that an executor that
/// stopped running tasks cannot hang it.
const ABORT_WAIT: Duration = Duration::from_secs(1);

/// Builds a server from its runtime parts: `incoming` yields accepted connections (wrapped for
/// hyper) with the peer's address when there is one, `executor` spawns one [`Connection`] task
/// per connection. Spawn the returned accept loop, a future that ends when the service's
/// shutdown is triggered, when the [`ServerControl`] is dropped, or when the stream of
/// connections ends (dropping the loop stops accepting too); keep the [`ServerControl`], or a
/// [`Server`] made of it, to watch and stop the server.
///
/// Nothing here must be `Send`: on a thread-per-core runtime the listener, its sockets and the
/// executor stay on their thread. The accept loop and each [`Connection`] are `Send` exactly
/// when the listener, the sockets and the executor are, as on tokio and smol.
pub fn accept_loop<Ctx, S, L, I, E>(
    stack: Stack<Ctx, S>,
    incoming: L,
    executor: E,
) -> (impl Future<Output = ()>, ServerControl)
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    L: Stream<Item = io::Result<(I, Option<SocketAddr>)>> + Unpin + 'static,
    I: Socket,
    E: hyper::rt::Executor<Connection<Ctx, S, I, E>> + StreamExecutor<S, I>,
{
    accept_loop_in_lanes(stack, incoming, executor, 0, end_turn_by_waking)
}

/// [`accept_loop`], with each HTTP/1.1 event stream written from one of `lanes` tasks (one
/// per core is the usual choice) rather than from its connection's own task. A publish to N
/// subscribers then wakes a task per lane instead of N connection tasks, which every other
/// task (the publishers' connections among them) would wait behind. A lane writes to its
/// woken streams 16 at a time and ends each turn with `end_turn`, so that the other tasks run
/// in between: [`end_turn_by_waking`] on executors that run tasks first in, first out (smol's);
/// tokio's adapter gives tokio's yield, which also lets tokio look for I/O first. More events
/// then share each write (BENCHMARKS.md). With `lanes` 0, each stream is written from its
/// connection's task: [`accept_loop`].
pub fn accept_loop_in_lanes<Ctx, S, L, I, E>(
    stack: Stack<Ctx, S>,
    incoming: L,
    executor: E,
    lanes: usize,
    end_turn: EndTurn,
) -> (impl Future<Output = ()>, ServerControl)
where
    Ctx: Clone + Send + 'static,
    S: HttpService,
    L: Stream<Item = io::Result<(I, Option<SocketAddr>)>> + Unpin + 'static,
    I: Socket,
    E: hyper::rt::Executor<Connection<Ctx, S, I, E>> + StreamExecutor<S, I>,
{
    let service = stack.outer().clone();
    let control = ServerControl {
        shutdown: service.shutdown().clone(),
        streams: {
            let service = service.clone();
            Arc::new(move || service.active_streams())
        },
        timer: Arc::clone(service.timer()),
        grace: service.config().shutdown_grace,
        connections: Arc::new(OpenCount::gauged(crate::metrics::connections_open())),
        accept_done: Arc::new(Signal::default()),
        abort: Arc::new(Signal::default()),
        dropped: Arc::new(Signal::default()),
    };
    let connections = Arc::clone(&control.connections);
    let dropped = Arc::clone(&control.dropped);
    let done = FireOnDrop(Arc::clone(&control.accept_done));
    let abort = Arc::clone(&control.abort);
    let mut incoming = incoming;
    let lanes = (lanes > 0).then(|| Lanes::new(lanes, executor.clone(), end_turn));
    let task = async move {
        // However the loop ends, the lanes end after their last streams.
        let _lanes = lanes.as_ref().map(Lanes::closer);
        // Fired however the loop ends, even if its task is dropped.
        let _done = done;
        let timer = Arc::clone(service.timer());
        let max_connections = service.config().max_connections.max(1);
        let shutdown = service.shutdown().wait();
        let mut stop = pin!(async move {
            select(pin!(shutdown), dropped.wait()).await;
        });
        loop {
            // At the limit, accept nothing until a connection closes: the next ones wait in
            // the listen queue, and the descriptors in use stay bounded.
            if connections.get() >= max_connections {
                tracing::debug!(max_connections, "at the connection limit: not accepting");
                let room = Arc::clone(&connections).below(max_connections);
                if let Either::Right(_) = select(pin!(room), stop.as_mut()).await {
                    break;
                }
            }
            let next = match select(incoming.next(), stop.as_mut()).await {
                Either::Left((next, _)) => next,
                Either::Right(((), _)) => break,
            };
            match next {
                None => break,
                Some(Ok((io, peer))) => executor.execute(Connection {
                    serving: serve_connection(io, peer, stack.clone(), executor.clone())
                        .in_lanes(lanes.clone()),
                    abort: Arc::clone(&abort).wait(),
                    // Dropped with the task, however it ends, so shutdown sees it go.
                    _open: connections.enter(),
                }),
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    if let Either::Right(_) =
                        select(timer.sleep(ACCEPT_BACKOFF), stop.as_mut()).await
                    {
                        break;
                    }
                }
            }
        }
        // Close the listener before `_done` tells shutdown that accepting has stopped.
        drop(incoming);
        tracing::debug!("stopped accepting connections");
    };
    (task, control)
}

/// Watches and stops a server built by [`accept_loop`]. The runtime adapters' `Server` wraps
/// it.
pub struct ServerControl {
    shutdown: Shutdown,
    streams: Arc<dyn Fn() -> usize + Send + Sync>,
    timer: Arc<dyn outer_core::rt::Timer>,
    grace: Duration,
    connections: Arc<OpenCount>,
    accept_done: Arc<Signal>,
    abort: Arc<Signal>,
    /// Fired when this is dropped: the accept loop stops, open connections go on.
    dropped: Arc<Signal>,
}

impl Drop for ServerControl {
    fn drop(&mut self) {
        self.dropped.fire();
    }
}

impl fmt::Debug for ServerControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerControl")
            .field("open_connections", &self.open_connections())
            .field("active_streams", &self.active_streams())
            .field("shutting_down", &self.shutdown.is_triggered())
            .finish()
    }
}

impl ServerControl {
    /// Event streams open now.
    pub fn active_streams(&self) -> usize {
        (self.streams)()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.connections.get()
    }

    /// Shuts the server down gracefully: triggers the service's [`Shutdown`] (the accept loop
    /// stops and the listener closes; every open event stream ends between two events with the
    /// protocol's interruption, never `done`, so clients reconnect and resume elsewhere; new
    /// requests on open connections get 503), then waits up to
    /// [`ServerConfig::shutdown_grace`](crate::ServerConfig::shutdown_grace) for connections
    /// to finish, and closes those still open after it.
    ///
    /// Returns whether every connection finished within the grace period.
    pub async fn shutdown(&self) -> bool {
        self.shutdown.trigger();
        let drained = async {
            Arc::clone(&self.accept_done).wait().await;
            Arc::clone(&self.connections).idle().await;
        };
        match select(pin!(drained), self.timer.sleep(self.grace)).await {
            Either::Left(_) => {
                tracing::debug!("server shut down gracefully");
                true
            }
            Either::Right(_) => {
                tracing::warn!(
                    open = self.open_connections(),
                    grace = ?self.grace,
                    "connections still open after the grace period: closing them"
                );
                self.abort.fire();
                let idle = Arc::clone(&self.connections).idle();
                select(pin!(idle), self.timer.sleep(ABORT_WAIT)).await;
                false
            }
        }
    }
}

/// A running server, as every runtime adapter's `serve` returns it.
///
/// Dropping it stops accepting connections and leaves the open ones to finish on their own;
/// [`Server::shutdown`] ends them gracefully.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    control: ServerControl,
}

impl Server {
    /// A server listening on `local_addr`, run by the accept loop `control` came from.
    pub fn new(local_addr: SocketAddr, control: ServerControl) -> Self {
        Self {
            local_addr,
            control,
        }
    }

    /// The address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Event streams open now.
    pub fn active_streams(&self) -> usize {
        self.control.active_streams()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.control.open_connections()
    }

    /// Shuts down gracefully: stops accepting (the listener closes), ends every open event
    /// stream between two events with the protocol's interruption instead of `done` (for oRPC
    /// a retryable 503 `error` event), so clients reconnect and resume elsewhere, answers 503
    /// to new requests on open connections, and waits up to
    /// [`ServerConfig::shutdown_grace`](crate::ServerConfig::shutdown_grace) for connections
    /// to finish before closing the rest. It sleeps on the service's timer: await it where
    /// that timer works (on a thread-per-core runtime, the server's own thread).
    ///
    /// Returns whether every connection finished within the grace period.
    pub async fn shutdown(self) -> bool {
        self.control.shutdown().await
    }
}

/// Fires a signal when dropped.
struct FireOnDrop(Arc<Signal>);

impl Drop for FireOnDrop {
    fn drop(&mut self) {
        self.0.fire();
    }
}

/// The service's timer as hyper's [`hyper::rt::Timer`], for its header-read timeout: so that
/// hyper, too, runs on whatever runtime the service does.
#[derive(Clone, Debug)]
pub struct HyperTimer(pub Arc<dyn outer_core::rt::Timer>);

impl hyper::rt::Timer for HyperTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HyperSleep(Mutex::new(self.0.sleep(duration))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(Instant::now()))
    }
}

/// hyper wants its sleeps `Sync`, and ours are only `Send`. A mutex makes it `Sync`, and is
/// never locked: polling has `&mut` access, which `Mutex::get_mut` takes without locking.
struct HyperSleep(Mutex<outer_core::rt::Sleep>);

impl Future for HyperSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self.0.get_mut().unwrap_or_else(PoisonError::into_inner);
        sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HyperSleep {}
