//! A client session over an in-memory wire: the server's side is a real [`App`] answering
//! through the oRPC or the tRPC protocol; the client's side is the core's SSE decoder, the
//! protocol's frame reader and the core's [`Resumer`]. Between them, the bytes move only when the test says, and the test can cut the
//! connection after any byte.
//!
//! This is the whole stack a socket would carry (handler, publisher, framing, SSE, decoding,
//! resume) with no socket, no runtime and no real time: a property test can run thousands of
//! schedules a second, and each one the same way every time.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::executor::block_on;
use futures::Stream;
use outer_core::client::{Decision, Ended, Resumer, RetryPolicy};
use outer_core::protocol::orpc::{self, ClientFrame, OrpcOptions};
use outer_core::protocol::trpc::{self, TrpcOptions};
use outer_core::protocol::{Body, SseBody};
use outer_core::rt::Timer;
use outer_core::sse::SseDecoder;
use outer_core::{App, Event, EventId, RequestHead, RpcError};
use serde_json::Value;

use crate::protocol::{decode_frame, decode_refusal, Protocol, SubscribeRequest};

/// What a session has seen, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// An event, with its id.
    Event(Event<Value>),
    /// The stream's return value.
    Done(Value),
    /// An error in the stream or as the answer. Whether the session reconnects after it is the
    /// [`Resumer`]'s decision.
    Error(RpcError),
}

/// One subscription, across as many connections as it takes.
pub struct Session<Ctx> {
    app: App<Ctx>,
    protocol: Protocol,
    path: String,
    input: Option<Value>,
    timer: Option<Arc<dyn Timer>>,
    resumer: Resumer,
    decoder: SseDecoder,
    body: Option<SseBody>,
    /// Bytes the server wrote that have not reached the client yet.
    in_flight: Vec<u8>,
    /// The server ended the stream; the connection closes once its bytes are delivered.
    server_done: bool,
    seen: Vec<Seen>,
    connections: usize,
    finished: Option<Result<(), RpcError>>,
}

impl<Ctx> std::fmt::Debug for Session<Ctx> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("protocol", &self.protocol)
            .field("path", &self.path)
            .field("connected", &self.body.is_some())
            .field("connections", &self.connections)
            .field("seen", &self.seen.len())
            .finish()
    }
}

impl<Ctx: 'static> Session<Ctx> {
    /// A session that will subscribe, speaking `protocol`, to the procedure at the dotted
    /// `path` (`post.live`) with `input`. Nothing happens until [`Session::connect`].
    pub fn new(app: App<Ctx>, protocol: Protocol, path: &str, input: Option<Value>) -> Self {
        Self {
            app,
            protocol,
            path: path.into(),
            input,
            timer: None,
            resumer: Resumer::new(RetryPolicy {
                max_attempts: None,
                jitter: false,
                ..RetryPolicy::default()
            }),
            decoder: SseDecoder::new(),
            body: None,
            in_flight: Vec::new(),
            server_done: false,
            seen: Vec::new(),
            connections: 0,
            finished: None,
        }
    }

    /// Runs keep-alives and deadlines on `timer` (a [`SimClock`](crate::SimClock), say).
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = Some(timer);
        self
    }

    /// Uses `policy` for reconnect decisions.
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.resumer = Resumer::new(policy);
        self
    }

    /// Opens a connection, sending the last event id seen so far. A call refused before its
    /// stream starts (a 4xx answer) is recorded as [`Seen::Error`] and ends the session; a 5xx
    /// leaves it ready to connect again.
    pub fn connect(&mut self) {
        if self.finished.is_some() {
            return;
        }
        self.cut();
        self.connections += 1;
        let request = SubscribeRequest::new(
            self.protocol,
            &self.path,
            self.input.as_ref(),
            self.resumer.last_event_id(),
        );
        let head = RequestHead {
            method: request.method.into(),
            path: format!("{}{}", self.protocol.default_prefix(), request.route),
            headers: request.headers,
        };
        let timer = self.timer.clone();
        let response = match self.protocol {
            Protocol::Orpc => block_on(orpc::handle(
                &self.app,
                &head,
                &request.route,
                request.body.as_bytes(),
                &OrpcOptions::default(),
                timer,
            )),
            Protocol::Trpc => block_on(trpc::handle(
                &self.app,
                &head,
                &request.route,
                &request.query,
                request.body.as_bytes(),
                &TrpcOptions::default(),
                timer,
            )),
        };
        match response.body {
            Body::Events(events) => {
                self.body = Some(events);
                // A server writes the stream's head and runs the handler at once; the client
                // reads it whenever the test delivers.
                self.produce();
            }
            Body::Full(bytes) => {
                let error = match response.status {
                    200 => RpcError::internal("a stream answered as a value"),
                    status => decode_refusal(self.protocol, status, &bytes),
                };
                self.ended(Ended::Error(error.clone()));
                self.seen.push(Seen::Error(error));
            }
        }
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.body.is_some()
    }

    /// Moves up to `max` bytes from the server to the client: what the handler has produced
    /// (it runs as far as it can), delivered in order. Returns how many moved. When the stream
    /// ends and its last byte is delivered, the connection closes.
    pub fn pump(&mut self, max: usize) -> usize {
        let mut moved = 0;
        loop {
            self.produce();
            let take = (max - moved).min(self.in_flight.len());
            if take == 0 {
                break;
            }
            let bytes: Vec<u8> = self.in_flight.drain(..take).collect();
            moved += take;
            self.receive(&bytes);
        }
        if self.in_flight.is_empty() && self.server_done {
            self.server_done = false;
            if self.body.take().is_some() && self.finished.is_none() {
                // The server ended the stream without done or a final error: to the client
                // that is a dropped connection.
                self.decoder.finish();
                self.ended(Ended::Dropped);
            }
        }
        moved
    }

    /// Runs the server side until it waits: every chunk it writes joins the bytes in flight.
    fn produce(&mut self) {
        while let Some(body) = self.body.as_mut() {
            if self.server_done {
                return;
            }
            match poll_once(body) {
                Poll::Ready(Some(chunk)) => self.in_flight.extend_from_slice(chunk.as_bytes()),
                Poll::Ready(None) => self.server_done = true,
                Poll::Pending => return,
            }
        }
    }

    /// Moves every byte the server can produce now.
    pub fn pump_all(&mut self) -> usize {
        self.pump(usize::MAX)
    }

    /// Cuts the connection: bytes in flight are lost, the partial event is dropped, the
    /// handler is dropped (its cleanup runs). The [`Resumer`] records a dropped connection.
    pub fn cut(&mut self) {
        self.server_done = false;
        if self.body.take().is_some() {
            self.in_flight.clear();
            self.decoder.finish();
            if self.finished.is_none() {
                self.ended(Ended::Dropped);
            }
        }
    }

    /// Everything seen so far, across connections.
    pub fn seen(&self) -> &[Seen] {
        &self.seen
    }

    /// The events seen, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event<Value>> {
        self.seen.iter().filter_map(|s| match s {
            Seen::Event(e) => Some(e),
            _ => None,
        })
    }

    /// How many connections were opened.
    pub fn connections(&self) -> usize {
        self.connections
    }

    /// `Some(Ok(()))` after `done`, `Some(Err(e))` after the client gave up with `e`; `None`
    /// while the session would go on.
    pub fn finished(&self) -> Option<&Result<(), RpcError>> {
        self.finished.as_ref()
    }

    /// The id the next connection resumes after.
    pub fn last_event_id(&self) -> Option<&EventId> {
        self.resumer.last_event_id()
    }

    fn receive(&mut self, mut bytes: &[u8]) {
        loop {
            let event = match self.decoder.next_event(&mut bytes) {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(err) => {
                    let error = RpcError::internal(format!("undecodable stream: {err}"));
                    self.seen.push(Seen::Error(error));
                    continue;
                }
            };
            match decode_frame(self.protocol, &event) {
                Ok(Some(ClientFrame::Message(message))) => {
                    self.resumer.on_event(message.id(), message.meta().retry());
                    self.seen.push(Seen::Event(message));
                }
                Ok(Some(ClientFrame::Done(value))) => {
                    self.seen.push(Seen::Done(value));
                    self.finished = Some(Ok(()));
                }
                Ok(Some(ClientFrame::Error(error))) => {
                    self.seen.push(Seen::Error(error.clone()));
                    self.ended(Ended::Error(error));
                }
                Ok(None) => {}
                Err(error) => self.seen.push(Seen::Error(error)),
            }
        }
    }

    fn ended(&mut self, why: Ended) {
        if let Decision::GiveUp(error) = self.resumer.on_end(why, 0) {
            self.finished = Some(Err(error));
        }
    }
}

/// Polls a stream once with a waker that does nothing: the in-memory wire re-polls by itself.
pub fn poll_once<S: Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    let waker = futures::task::noop_waker();
    std::pin::Pin::new(stream).poll_next(&mut Context::from_waker(&waker))
}
