//! A client session over an in-memory wire: the server's side is a real [`App`] answering
//! through the oRPC or the tRPC protocol; the client's side is the core's SSE decoder, the
//! protocol's frame reader and the core's [`Resumer`](outer_core::client::Resumer). Between them, the bytes move only when the test says, and the test can cut the
//! connection after any byte.
//!
//! This is the whole stack a socket would carry (handler, publisher, framing, SSE, decoding,
//! resume) with no socket, no runtime and no real time: a property test can run thousands of
//! schedules a second, and each one the same way every time.

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::executor::block_on;
use futures::Stream;
use outer_core::client::RetryPolicy;
use outer_core::protocol::orpc::{self, OrpcOptions};
use outer_core::protocol::trpc::{self, TrpcOptions};
use outer_core::protocol::{Body, SseBody};
use outer_core::rt::Timer;
use outer_core::{App, Event, EventId, RequestHead, RpcError};
use serde_json::Value;

use crate::protocol::{decode_refusal, Protocol};
use crate::subscriber::{events, Seen, Subscriber};

/// One subscription, across as many connections as it takes.
///
/// ```
/// use outer_core::{event_iterator, procedure, tracked, Router};
/// use outer_harness::{Protocol, Session};
///
/// let router = Router::new().route("count", procedure::<()>().subscription(|_| async {
///     Ok(event_iterator(|mut emit| async move {
///         for n in 1..=3u64 {
///             emit.send(tracked(n, n)?).await?;
///         }
///         Ok("end")
///     }))
/// }));
/// for protocol in Protocol::ALL {
///     let mut session = Session::new(router.clone().into(), protocol, "count", None);
///     session.connect();
///     session.pump(40); // a few bytes only: part of the stream
///     session.cut(); // the connection drops mid-stream
///     session.connect(); // and resumes after the last id the client holds
///     session.pump_all();
///     let got: Vec<u64> = session.events().map(|e| e.data().as_u64().unwrap()).collect();
///     assert_eq!(got, [1, 2, 3]);
///     assert_eq!(session.finished(), Some(&Ok(())));
/// }
/// ```
pub struct Session<Ctx> {
    app: App<Ctx>,
    timer: Option<Arc<dyn Timer>>,
    client: Subscriber,
    body: Option<SseBody>,
    /// Bytes the server wrote that have not reached the client yet.
    in_flight: Vec<u8>,
    /// The server ended the stream; the connection closes once its bytes are delivered.
    server_done: bool,
}

impl<Ctx> std::fmt::Debug for Session<Ctx> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("client", &self.client)
            .field("connected", &self.body.is_some())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl<Ctx: Clone + 'static> Session<Ctx> {
    /// A session that will subscribe, speaking `protocol`, to the procedure at the dotted
    /// `path` (`post.live`) with `input`. Nothing happens until [`Session::connect`].
    pub fn new(app: App<Ctx>, protocol: Protocol, path: &str, input: Option<Value>) -> Self {
        Self {
            app,
            timer: None,
            client: Subscriber::new(protocol, path, input),
            body: None,
            in_flight: Vec::new(),
            server_done: false,
        }
    }

    /// Runs keep-alives and deadlines on `timer` (a [`SimClock`](crate::SimClock), say).
    pub fn with_timer(mut self, timer: Arc<dyn Timer>) -> Self {
        self.timer = Some(timer);
        self
    }

    /// Uses `policy` for reconnect decisions (by default: reconnect without limit).
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.client.set_policy(policy);
        self
    }

    /// Opens a connection (cutting the open one, if any), sending the last event id seen so
    /// far. A call refused before its stream starts is recorded as [`Seen::Error`]; whether
    /// the session goes on is the resume logic's decision (a 4xx ends it, a 5xx does not).
    /// Does nothing once the session is finished.
    pub fn connect(&mut self) {
        if self.client.finished().is_some() {
            return;
        }
        self.cut();
        let protocol = self.client.protocol();
        let request = self.client.next_request();
        let path = format!("{}{}", protocol.default_prefix(), request.route);
        let mut head = RequestHead::new(request.method, path);
        head.query = request.query.clone();
        head.headers = request.headers;
        let timer = self.timer.clone();
        let response = match protocol {
            Protocol::Orpc => block_on(orpc::handle(
                &self.app,
                head,
                &request.route,
                request.body.as_bytes(),
                &OrpcOptions::default(),
                timer,
            )),
            Protocol::Trpc => block_on(trpc::handle(
                &self.app,
                head,
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
                    status => decode_refusal(protocol, status, &bytes),
                };
                self.client.refused(error);
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
            self.client.receive(&bytes);
        }
        if self.in_flight.is_empty() && self.server_done {
            self.server_done = false;
            if self.body.take().is_some() {
                self.client.closed();
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
                Poll::Ready(Some(chunk)) => self.in_flight.extend_from_slice(&chunk),
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
    /// handler is dropped (its cleanup runs). The resume logic records a dropped connection.
    pub fn cut(&mut self) {
        self.server_done = false;
        if self.body.take().is_some() {
            self.in_flight.clear();
            self.client.closed();
        }
    }

    /// Everything seen so far, across connections.
    pub fn seen(&self) -> &[Seen] {
        self.client.seen()
    }

    /// The events seen, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event<Value>> {
        events(self.client.seen())
    }

    /// How many connections were opened.
    pub fn connections(&self) -> usize {
        self.client.connections()
    }

    /// `Some(Ok(()))` after `done`, `Some(Err(e))` after the client gave up with `e`; `None`
    /// while the session would go on.
    pub fn finished(&self) -> Option<&Result<(), RpcError>> {
        self.client.finished()
    }

    /// The id the next connection resumes after.
    pub fn last_event_id(&self) -> Option<&EventId> {
        self.client.last_event_id()
    }
}

/// Polls a stream once with a waker that does nothing: the in-memory wire re-polls by itself.
pub fn poll_once<S: Stream + Unpin>(stream: &mut S) -> Poll<Option<S::Item>> {
    let waker = futures::task::noop_waker();
    std::pin::Pin::new(stream).poll_next(&mut Context::from_waker(&waker))
}
