//! One WebSocket: its context, the calls running on it, keep-alive, limits and shutdown.
//!
//! A [`Socket`] is a future that runs the whole socket in its connection's task: it reads client
//! messages, starts a call per request, and writes each call's frames as they come. Calls are
//! streams of ready-made text frames in a [`SelectAll`], so only the calls that woke are polled.
//! Writing is bounded: calls are polled only while the socket can take more, so a client that
//! does not read stops its subscriptions being polled (their publisher subscriptions lag, as an
//! SSE stream's do), and replies of its own making pile up to at most [`MAX_OUTBOX`] before the
//! socket stops reading from it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use futures_util::future::AbortHandle;
use futures_util::stream::{self, SelectAll};
use futures_util::task::AtomicWaker;
use futures_util::{FutureExt, Sink, Stream, StreamExt};
use outer_core::procedure::{Frame, FrameStream, Json, Reply};
use outer_core::protocol::{orpc_ws, trpc_ws, StreamEnd};
use outer_core::rt::Sleep;
use outer_core::{ErrorCode, EventId, RequestHead, RpcError};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{Upgrade, WsProtocol};
use crate::body::StreamSlot;
use crate::metrics::{StreamMetrics, Transport};
use crate::service::Shared;

mod orpc;
mod trpc;

/// Replies the socket makes itself (refusals, `PONG`) waiting to be written, at most: past it the
/// socket reads nothing more from the client until they are written.
const MAX_OUTBOX: usize = 256;

/// Messages read, or frames written, in one turn before the socket yields its thread to the
/// connection's neighbours.
const TURN: usize = 64;

/// The read buffer each socket allocates: client messages are small (larger ones grow it).
const READ_BUFFER: usize = 4 * 1024;

/// What the write buffer gathers before it writes to the socket.
const WRITE_BUFFER: usize = 16 * 1024;

/// How long a closing socket waits for the client's close frame before it drops the connection.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The context being built.
type ContextFuture<Ctx> = Pin<Box<dyn Future<Output = Result<Ctx, RpcError>> + Send>>;

/// The frames a call sends, as text, ready to write.
type Frames = Pin<Box<dyn Stream<Item = String> + Send>>;

/// What the calls in flight yield: a frame to write, or that a call ended (its handler has been
/// dropped by then).
enum Out {
    Frame(String),
    Ended { key: u64, id: Option<String> },
}

type Calls = SelectAll<Pin<Box<dyn Stream<Item = Out> + Send>>>;

/// A call that can be stopped by its id (tRPC subscriptions, every oRPC call).
struct Live {
    key: u64,
    abort: AbortHandle,
    id: CallId,
    stopping: bool,
}

/// A stoppable call's id, as its protocol echoes it.
enum CallId {
    Trpc(trpc_ws::RequestId),
    Orpc(orpc_ws::MessageId),
}

impl CallId {
    fn as_json(&self) -> &str {
        match self {
            CallId::Trpc(id) => id.as_json(),
            CallId::Orpc(id) => id.as_json(),
        }
    }
}

/// The socket's context, built once from the upgrade request (and tRPC's connection params),
/// shared by every call on it. Calls made before it is ready wait for it.
struct ContextCell<Ctx> {
    value: Mutex<Option<Result<Ctx, RpcError>>>,
    ready: event_listener::Event,
}

impl<Ctx: Clone> ContextCell<Ctx> {
    fn get_now(&self) -> Option<Result<Ctx, RpcError>> {
        self.value
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn get(&self) -> Result<Ctx, RpcError> {
        loop {
            if let Some(value) = self.get_now() {
                return value;
            }
            let listener = self.ready.listen();
            if let Some(value) = self.get_now() {
                return value;
            }
            listener.await;
        }
    }

    fn set(&self, value: Result<Ctx, RpcError>) {
        *self.value.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
        self.ready.notify(usize::MAX);
    }
}

enum Phase {
    Open,
    /// Shutting down (tRPC: after the reconnect notice): still serving what is open, closed
    /// with 1012 when this fires, or for oRPC once its calls are done.
    Notified(Sleep),
    /// The close frame is queued or sent: waiting for the client's, at most until this fires.
    Closing(Sleep),
}

/// What a call's own head is made of (see [`Socket::call_head`]): the upgrade request's head,
/// less its extensions.
struct UpgradeHead {
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    peer: Option<std::net::SocketAddr>,
}

/// A socket being served: a future that ends when the socket closes.
pub(crate) struct Socket<Ctx, S> {
    upgrade: UpgradeHead,
    ws: WebSocketStream<S>,
    shared: Arc<Shared<Ctx>>,
    protocol: WsProtocol,
    context: Arc<ContextCell<Ctx>>,
    building: Option<ContextFuture<Ctx>>,
    /// tRPC with `?connectionParams=1`: the head, until the first message brings the params.
    awaiting_params: Option<RequestHead>,
    calls: Calls,
    live: HashMap<String, Live>,
    /// tRPC's queries and mutations in flight (they have no entry in `live`).
    unary: usize,
    next_key: u64,
    outbox: VecDeque<Message>,
    /// When the client was last heard from, by the timer's clock.
    heard: Duration,
    ping: Option<Sleep>,
    pinged: bool,
    shutdown: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    abort: Pin<Box<dyn Future<Output = ()> + Send>>,
    phase: Phase,
    /// Whether the socket may have something to read: reads register its waker.
    readable: Interest,
    /// Whether a timer, the shutdown or abort signal or the context may have moved: they
    /// register its waker.
    control: Interest,
}

/// A socket is polled for every frame it writes; reading it, or polling its timers and signals,
/// each time would cost more than the frame (a read attempt costs tungstenite a buffer's worth of
/// zeroing). An interest is a waker of its own for one of those parts: set when what registered
/// it wakes, so the part is polled again only then.
#[derive(Debug)]
struct Interest {
    state: Arc<InterestState>,
    waker: Waker,
}

#[derive(Debug)]
struct InterestState {
    ready: AtomicBool,
    task: AtomicWaker,
}

impl Wake for InterestState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Interest {
    /// Set at first: everything is polled once.
    fn new() -> Self {
        let state = Arc::new(InterestState {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Self {
            waker: Waker::from(Arc::clone(&state)),
            state,
        }
    }

    /// Whether the part is due, clearing the mark; the task's waker is kept for its wakes.
    fn take(&self, task: &Waker) -> bool {
        self.state.task.register(task);
        self.state.ready.swap(false, Ordering::AcqRel)
    }

    /// Marks the part due (something new to poll, or more left than one turn took).
    fn set(&self) {
        self.state.ready.store(true, Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.state.ready.load(Ordering::Acquire)
    }
}

impl<Ctx, S> fmt::Debug for Socket<Ctx, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("protocol", &self.protocol)
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl<Ctx, S> Socket<Ctx, S>
where
    Ctx: Clone + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    /// Serves `io`, a socket hyper has just answered 101 on; `read_ahead` is what hyper read
    /// past the request (the client's first frames, if it did not wait).
    pub(crate) fn new(
        shared: Arc<Shared<Ctx>>,
        upgrade: Upgrade,
        io: S,
        read_ahead: Vec<u8>,
    ) -> Self {
        let limits = &shared.config.websocket;
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(limits.max_message_bytes);
        config.max_frame_size = Some(limits.max_message_bytes);
        // tungstenite's defaults (128 KiB each) would cost every idle socket 130 KiB or more;
        // client messages are small, and the write buffer only gathers what is ready at once
        // (reaching this, it writes; the socket's backpressure holds the rest in the calls).
        config.read_buffer_size = READ_BUFFER;
        config.write_buffer_size = WRITE_BUFFER;
        // An async fn only by its signature: with no handshake left to do it does no I/O and is
        // ready on its first poll (tokio-tungstenite's `without_handshake`), so this never fails.
        #[allow(clippy::expect_used)]
        let ws = WebSocketStream::from_partially_read(io, read_ahead, Role::Server, Some(config))
            .now_or_never()
            .expect("a WebSocket without handshake is made on its first poll");
        let context = Arc::new(ContextCell {
            value: Mutex::new(None),
            ready: event_listener::Event::new(),
        });
        let Upgrade {
            protocol,
            head,
            connection_params,
        } = upgrade;
        let upgrade_head = UpgradeHead {
            path: head.path.clone(),
            query: head.query.clone(),
            headers: head.headers.clone(),
            peer: head.peer,
        };
        let mut socket = Self {
            upgrade: upgrade_head,
            heard: shared.timer.now(),
            ping: limits.ping.map(|every| shared.timer.sleep(every)),
            shutdown: Some(Box::pin(shared.shutdown.wait())),
            abort: Box::pin(shared.abort_signal()),
            ws,
            protocol,
            context,
            building: None,
            awaiting_params: None,
            calls: SelectAll::new(),
            live: HashMap::new(),
            unary: 0,
            next_key: 0,
            outbox: VecDeque::new(),
            pinged: false,
            phase: Phase::Open,
            readable: Interest::new(),
            control: Interest::new(),
            shared,
        };
        if connection_params {
            socket.awaiting_params = Some(head);
        } else {
            socket.build_context(head);
        }
        socket
    }

    fn build_context(&mut self, head: RequestHead) {
        let shared = Arc::clone(&self.shared);
        self.building = Some(Box::pin(async move { shared.app.context(head).await }));
        self.control.set();
    }

    fn send(&mut self, text: String) {
        self.outbox.push_back(Message::Text(text.into()));
    }

    /// Ends every call: their handlers are dropped now.
    fn drop_calls(&mut self) {
        self.calls = SelectAll::new();
        self.live.clear();
        self.unary = 0;
    }

    /// Ends every call and queues the close frame.
    fn close(&mut self, code: CloseCode, reason: &str) {
        self.drop_calls();
        self.outbox.push_back(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_owned().into(),
        })));
        self.phase = Phase::Closing(self.shared.timer.sleep(CLOSE_WAIT));
        self.control.set();
    }

    fn busy(&self) -> bool {
        self.live.len() + self.unary >= self.shared.config.websocket.max_calls
    }

    fn too_many(&self) -> RpcError {
        RpcError::new(
            ErrorCode::TOO_MANY_REQUESTS,
            format!(
                "Too many calls at once on this socket (the limit is {}); wait for one to end",
                self.shared.config.websocket.max_calls
            ),
        )
    }

    fn next_key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key
    }

    /// Adds a call whose frames are `frames`; `id` makes it stoppable.
    fn start(&mut self, frames: Frames, id: Option<CallId>) {
        let key = self.next_key();
        let ended = Out::Ended {
            key,
            id: id.as_ref().map(|id| id.as_json().to_owned()),
        };
        let (frames, abort) = stream::abortable(frames);
        match id {
            Some(id) => {
                let live = Live {
                    key,
                    abort,
                    id,
                    stopping: false,
                };
                self.live.insert(live.id.as_json().to_owned(), live);
            }
            None => self.unary += 1,
        }
        let call = frames
            .map(Out::Frame)
            .chain(stream::once(async move { ended }));
        self.calls.push(Box::pin(call));
    }

    fn stop(&mut self, id: &str) {
        if let Some(live) = self.live.get_mut(id) {
            live.stopping = true;
            live.abort.abort();
        }
    }

    fn ended(&mut self, key: u64, id: Option<String>) {
        let Some(id) = id else {
            self.unary = self.unary.saturating_sub(1);
            return;
        };
        if self.live.get(&id).is_some_and(|live| live.key == key) {
            if let Some(Live {
                id: CallId::Trpc(request),
                stopping: true,
                ..
            }) = self.live.remove(&id)
            {
                // Sent once the handler is gone, as tRPC's server does.
                self.send(trpc_ws::stopped(&request));
            }
        }
    }

    fn on_text(&mut self, text: &str) {
        match self.protocol {
            WsProtocol::Trpc => self.on_trpc(text),
            WsProtocol::Orpc => self.on_orpc(text),
        }
    }

    fn on_binary(&mut self, data: &[u8]) {
        match self.protocol {
            // tRPC's JSON encoder refuses binary frames and keeps the socket.
            WsProtocol::Trpc => self.send(trpc_ws::binary_refused()),
            // oRPC's server reads a binary frame holding JSON as text (its client sends binary
            // only for file bodies, which Outer's procedures do not take).
            WsProtocol::Orpc => match std::str::from_utf8(data) {
                Ok(text) => self.on_orpc(text),
                Err(_) => self.close(
                    CloseCode::Unsupported,
                    "oRPC messages are JSON; file bodies are not supported",
                ),
            },
        }
    }

    /// Shutdown: tRPC clients are told to reconnect (they move their subscriptions to a new
    /// socket, then close this one; a socket still open after
    /// [`reconnect_close_after`](crate::WebSocketConfig) is closed with 1012); oRPC streams end
    /// with a retryable error (each call's `EndOnShutdown`), new oRPC calls are refused, and
    /// the socket closes (1012) once its calls are done, or at that deadline.
    fn on_shutdown(&mut self) {
        if self.protocol == WsProtocol::Trpc {
            self.send(trpc_ws::RECONNECT.to_owned());
        }
        let after = self.shared.config.websocket.reconnect_close_after;
        self.phase = Phase::Notified(self.shared.timer.sleep(after));
    }

    /// A read failed: a message over the cap closes the socket with 1009; anything else
    /// means the connection is unusable (Ready: end it).
    fn on_read_error(&mut self, error: WsError) -> Poll<()> {
        match error {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                let reason = format!("A message of {size} bytes is over the limit of {max_size}");
                self.close(CloseCode::Size, &reason);
                Poll::Pending
            }
            error => {
                tracing::debug!(%error, "WebSocket read failed");
                Poll::Ready(())
            }
        }
    }

    /// Reads what the client sent, up to a turn's worth. Ready when the socket is finished.
    fn read(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.readable.take(cx.waker()) {
            // Nothing arrived since the last read came up empty.
            return Poll::Pending;
        }
        let waker = self.readable.waker.clone();
        let mut read_cx = Context::from_waker(&waker);
        for _ in 0..TURN {
            if self.outbox.len() >= MAX_OUTBOX {
                // Read on once the outbox has room.
                self.readable.set();
                return Poll::Pending;
            }
            let message = match Pin::new(&mut self.ws).poll_next(&mut read_cx) {
                Poll::Pending => return Poll::Pending,
                // The client closed (tungstenite has answered its close) or the connection dropped.
                Poll::Ready(None) => return Poll::Ready(()),
                Poll::Ready(Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed))) => {
                    return Poll::Ready(())
                }
                Poll::Ready(Some(Err(error))) => return self.on_read_error(error),
                Poll::Ready(Some(Ok(message))) => message,
            };
            self.heard = self.shared.timer.now();
            self.pinged = false;
            if matches!(self.phase, Phase::Closing(_)) {
                // Only the close handshake is left.
                continue;
            }
            match message {
                Message::Text(text) => self.on_text(text.as_str()),
                Message::Binary(data) => self.on_binary(&data),
                // Answered by tungstenite; hearing them is enough.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
                Message::Close(_) => self.drop_calls(),
            }
        }
        // More may be buffered: read on next turn.
        self.readable.set();
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Writes replies and the calls' frames while the socket takes them, up to a turn's worth.
    /// Ready when writing failed (the connection is gone).
    fn write(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut sent = 0;
        for _ in 0..TURN {
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Pending => break,
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
            }
            let message = match self.outbox.pop_front() {
                Some(message) => message,
                None => match self.calls.poll_next_unpin(cx) {
                    Poll::Ready(Some(Out::Frame(text))) => Message::Text(text.into()),
                    Poll::Ready(Some(Out::Ended { key, id })) => {
                        self.ended(key, id);
                        continue;
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                },
            };
            if Pin::new(&mut self.ws).start_send(message).is_err() {
                return Poll::Ready(());
            }
            sent += 1;
        }
        if sent == TURN {
            // More may be ready: let the neighbours run first.
            cx.waker().wake_by_ref();
        }
        if sent > 0 || !self.outbox.is_empty() {
            match Pin::new(&mut self.ws).poll_flush(cx) {
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) | Poll::Pending => {}
            }
        }
        Poll::Pending
    }

    /// Pings a quiet client, and gives up on one that does not answer. Ready when it is dead.
    fn keep_alive(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(every) = self.shared.config.websocket.ping else {
            return Poll::Pending;
        };
        loop {
            let Some(sleep) = self.ping.as_mut() else {
                return Poll::Pending;
            };
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = self.shared.timer.now();
            let quiet = now.saturating_sub(self.heard);
            if self.pinged {
                let wait = self.shared.config.websocket.pong_wait;
                if quiet >= every + wait {
                    tracing::debug!(
                        ?quiet,
                        "WebSocket client did not answer a ping: dropping it"
                    );
                    return Poll::Ready(());
                }
                self.ping = Some(self.shared.timer.sleep(every + wait - quiet));
            } else if quiet >= every {
                match self.protocol {
                    WsProtocol::Trpc => self.send(trpc_ws::PING.to_owned()),
                    WsProtocol::Orpc => self.outbox.push_back(Message::Ping(Default::default())),
                }
                self.pinged = true;
                let wait = self.shared.config.websocket.pong_wait;
                self.ping = Some(self.shared.timer.sleep(wait));
            } else {
                self.ping = Some(self.shared.timer.sleep(every - quiet));
            }
        }
    }

    fn poll_socket(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // While shutting down, the phase also waits for the calls to end.
        let notified = matches!(self.phase, Phase::Notified(_));
        if self.control.take(cx.waker()) || notified {
            let waker = self.control.waker.clone();
            if self
                .poll_control(&mut Context::from_waker(&waker))
                .is_ready()
            {
                return Poll::Ready(());
            }
        }
        if self.read(cx).is_ready() {
            return Poll::Ready(());
        }
        let full = self.outbox.len() >= MAX_OUTBOX;
        if self.write(cx).is_ready() {
            return Poll::Ready(());
        }
        if full && self.outbox.len() < MAX_OUTBOX {
            // Reading stopped for a full outbox that has room again: read on.
            cx.waker().wake_by_ref();
        }
        if self.control.is_set() {
            // Reading armed something (a close's timer, the context): poll it next turn.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// The signals, the context being built, the phase's timers and keep-alive. Ready when the
    /// socket is finished.
    fn poll_control(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.abort.as_mut().poll(cx).is_ready() {
            // Cut as a network failure would: no close frame.
            return Poll::Ready(());
        }
        if let Some(shutdown) = self.shutdown.as_mut() {
            if shutdown.as_mut().poll(cx).is_ready() {
                self.shutdown = None;
                if matches!(self.phase, Phase::Open) {
                    self.on_shutdown();
                }
            }
        }
        if let Some(building) = self.building.as_mut() {
            if let Poll::Ready(context) = building.as_mut().poll(cx) {
                self.building = None;
                self.context.set(context);
            }
        }
        if self.poll_phase(cx).is_ready() {
            return Poll::Ready(());
        }
        self.keep_alive(cx)
    }

    /// The shutdown and closing timers. Ready when the socket is finished.
    fn poll_phase(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.phase {
            Phase::Open => {}
            Phase::Notified(after) => {
                // An oRPC socket is done once its calls are. A tRPC client moves on its own
                // (stop here, then PING, and closes once PONG shows everything before it
                // arrived), so it gets until the deadline.
                let done = self.protocol == WsProtocol::Orpc
                    && self.calls.is_empty()
                    && self.outbox.is_empty();
                if done || after.as_mut().poll(cx).is_ready() {
                    self.close(CloseCode::Restart, "The server is shutting down");
                    return self.poll_phase(cx);
                }
            }
            Phase::Closing(wait) => return wait.as_mut().poll(cx),
        }
        Poll::Pending
    }
}

impl<Ctx, S> Future for Socket<Ctx, S>
where
    Ctx: Clone + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // The calls' handlers run inside this poll: give their publisher subscriptions a budget.
        outer_core::coop::budgeted(|| this.poll_socket(cx))
    }
}

/// What a call came to: a value, or a subscription's frames.
enum Answer {
    Value(Json),
    Stream(Subscribed),
}

/// Runs a call in `context` (or answers the context's refusal); a subscription takes its place
/// under `max_streams` here, as an SSE stream does. Counts the call if it is answered here, and
/// gives a stream the handles that count it when it ends (see [`crate::metrics`]).
async fn answer<Ctx: Clone>(
    shared: &Shared<Ctx>,
    protocol: WsProtocol,
    context: Result<Ctx, RpcError>,
    path: &str,
    input: Option<serde_json::Value>,
    last_event_id: Option<EventId>,
) -> Result<Answer, RpcError> {
    let resumed = last_event_id.is_some();
    let answered = match context {
        Ok(ctx) => shared.app.call_in(ctx, path, input, last_event_id).await,
        Err(error) => Err(error),
    };
    let answered = answered.and_then(|reply| match reply {
        Reply::Value(json) => Ok(Answer::Value(json)),
        Reply::Stream(frames) => {
            let max = shared.config.max_streams;
            let slot = StreamSlot::take(&shared.streams, max, Transport::WebSocket)?;
            let (name, shutdown) = (protocol.name(), &shared.shutdown);
            let metrics = StreamMetrics::open(path, name, Transport::WebSocket, resumed, shutdown);
            Ok(Answer::Stream(Subscribed {
                _slot: slot,
                frames,
                metrics,
            }))
        }
    });
    match &answered {
        Ok(Answer::Stream(_)) => {}
        Ok(Answer::Value(_)) => {
            crate::metrics::answered(Some(path), protocol.name(), resumed, None)
        }
        Err(error) => crate::metrics::answered(Some(path), protocol.name(), resumed, Some(error)),
    }
    answered
}

/// A subscription's frames, holding its place under `max_streams` until they are dropped, and
/// counting its events and how it ends.
struct Subscribed {
    frames: FrameStream,
    _slot: StreamSlot,
    metrics: StreamMetrics,
}

impl Subscribed {
    /// A counter of the stream's bytes, for the protocol that writes its messages.
    fn bytes(&self) -> ::metrics::Counter {
        self.metrics.bytes_counter()
    }
}

impl Stream for Subscribed {
    type Item = Frame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Frame>> {
        let next = self.frames.poll_next_unpin(cx);
        match &next {
            Poll::Ready(Some(Frame::Event(_) | Frame::Shared(_))) => self.metrics.delivered(1),
            Poll::Ready(Some(Frame::Done(_)) | None) => {
                self.metrics.ended(Some(&StreamEnd::Returned))
            }
            Poll::Ready(Some(Frame::Error(error))) => self.metrics.failed(error),
            Poll::Pending => {}
        }
        next
    }
}

/// Counts a call the socket refused before it reached a procedure: `procedure` when the router
/// serves it.
fn refused<Ctx>(shared: &Shared<Ctx>, protocol: WsProtocol, path: Option<&str>, error: &RpcError) {
    let served = path.filter(|path| shared.app.router().get(path).is_some());
    crate::metrics::answered(served, protocol.name(), false, Some(error));
}

fn once(frame: String) -> Frames {
    Box::pin(stream::once(async move { frame }))
}

/// A close reason fits in 123 bytes.
fn truncate(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
