//! A subscription as a `Stream`: the core's [`outer_core::client::Subscription`] driven over
//! hyper, one connection after another.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::stream::{FusedStream, Stream};
use http::header::CONTENT_TYPE;
use http::Response;
use http_body::Body as _;
use hyper::body::Incoming;
use outer_core::client::{Head, Step};
use outer_core::rt::Sleep;
use outer_core::{ErrorCode, Event, EventId, RpcError};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::connection::{Open, ReadError};
use super::{Prepared, Shared};

type Answering = Pin<Box<dyn Future<Output = Result<(Open, Response<Incoming>), RpcError>> + Send>>;
type Reading = Pin<Box<dyn Future<Output = Result<Bytes, ReadError>> + Send>>;

enum State {
    /// Not polled yet: nothing sent.
    Start,
    /// Waiting out the delay before the next connection.
    Waiting(Sleep),
    /// Connecting and sending, until the answer's head arrives or the request timeout passes.
    Answering {
        answer: Answering,
        deadline: Option<Sleep>,
    },
    /// Reading an answer that is not an event stream.
    Refused {
        status: u16,
        body: Reading,
        deadline: Option<Sleep>,
    },
    /// Reading the event stream.
    Streaming(Box<Live>),
    /// Over: done, failed, or the input could not be encoded.
    Finished,
}

/// An open event stream.
struct Live {
    open: Open,
    body: Incoming,
    /// The rest of the last chunk, not decoded yet: the core stops after each event.
    chunk: Bytes,
    /// Fires at the inactivity deadline (or a little before it, if bytes moved it since).
    inactivity: Option<Sleep>,
}

/// The events of a subscription, as a [`Stream`] of `Result<Event<T>, RpcError>`, across as
/// many connections as it takes (see [`Client::subscribe`](super::Client::subscribe)).
///
/// It ends (`None`) after the server's `done` (`close` in oRPC 2), whose value
/// [`returned`](Self::returned) then holds, or after one `Err`. Each event carries its id
/// ([`Event::id`]) and meta. Dropping it closes the connection at once.
///
/// ```no_run
/// # async fn run<R: outer_http::client::Transport>(client: outer_http::client::Client<R>) -> Result<(), outer_core::RpcError> {
/// use futures_util::StreamExt;
/// let mut live = client.subscribe::<serde_json::Value>("post.live", &());
/// if let Some(first) = live.next().await {
///     let first = first?;
///     println!("{} (id {:?})", first.data(), first.id());
/// }
/// println!("{} reconnects so far, resuming after {:?}", live.reconnects(), live.last_event_id());
/// drop(live); // the connection closes; the server drops the handler
/// # Ok(()) }
/// ```
pub struct Subscription<T> {
    shared: Arc<Shared>,
    prepared: Result<Prepared, Option<RpcError>>,
    core: outer_core::client::Subscription<T>,
    state: State,
    reconnects: u32,
    returned: Option<Value>,
}

impl<T> fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("core", &self.core)
            .field("reconnects", &self.reconnects)
            .field("returned", &self.returned)
            .finish_non_exhaustive()
    }
}

impl<T: DeserializeOwned> Subscription<T> {
    pub(crate) fn new(
        shared: Arc<Shared>,
        prepared: Result<Prepared, RpcError>,
        last_event_id: Option<EventId>,
    ) -> Self {
        let seed = RandomState::new().build_hasher().finish();
        let core = outer_core::client::Subscription::new(shared.retry.clone(), shared.limits, seed)
            .with_version(shared.version)
            .resuming_after(last_event_id);
        Self {
            shared,
            prepared: prepared.map_err(Some),
            core,
            state: State::Start,
            reconnects: 0,
            returned: None,
        }
    }

    /// The value the procedure returned (its `done`, or `close` in oRPC 2) as an `R`, once the
    /// stream has ended with it; `None` before that, or when the stream ended otherwise. A
    /// procedure that returned nothing (`undefined`) returned `null`: read it as `()` or an
    /// `Option`. A value that is not an `R` is a `BAD_GATEWAY` error, as a call's answer of the
    /// wrong type is.
    ///
    /// ```no_run
    /// # async fn run<R: outer_http::client::Transport>(client: outer_http::client::Client<R>) -> Result<(), outer_core::RpcError> {
    /// use futures_util::StreamExt;
    /// #[derive(serde::Deserialize)]
    /// struct Finished { done: bool }
    /// let input = serde_json::json!({"from": 1, "to": 3, "delayMs": 0});
    /// let mut ticks = client.subscribe::<serde_json::Value>("counter", &input);
    /// while ticks.next().await.is_some() {}
    /// let finished: Option<Finished> = ticks.returned().transpose()?;
    /// assert!(finished.is_some_and(|end| end.done));
    /// # Ok(()) }
    /// ```
    pub fn returned<R: DeserializeOwned>(&self) -> Option<Result<R, RpcError>> {
        let value = self.returned.as_ref()?;
        Some(R::deserialize(value).map_err(|err| {
            RpcError::new(
                ErrorCode::BAD_GATEWAY,
                format!("the return value does not have the expected type: {err}"),
            )
        }))
    }

    /// The id the next connection resumes after: the last one the server sent.
    pub fn last_event_id(&self) -> Option<&EventId> {
        self.core.last_event_id()
    }

    /// How many times the subscription reconnected so far.
    pub fn reconnects(&self) -> u32 {
        self.reconnects
    }

    fn now(&self) -> std::time::Duration {
        // The transport's clock, the one its sleeps run on.
        self.shared.timer.now()
    }

    /// Starts the next connection.
    fn connect(&mut self) -> Option<Step<T>> {
        let prepared = match &mut self.prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                let error = error.take().unwrap_or_else(|| {
                    RpcError::internal("the subscription's input could not be encoded")
                });
                return Some(Step::Failed(error));
            }
        };
        let last_event_id = self.core.connect().cloned();
        let request = match self.shared.request(prepared, last_event_id.as_ref(), true) {
            Ok(request) => request,
            Err(error) => return Some(Step::Failed(error)),
        };
        let shared = Arc::clone(&self.shared);
        let answer: Answering = Box::pin(async move {
            let mut open = shared.dial.dial(&shared.target).await?;
            let response = open.send(request).await?;
            Ok((open, response))
        });
        let deadline = self
            .shared
            .request_timeout
            .map(|t| self.shared.timer.sleep(t));
        self.state = State::Answering { answer, deadline };
        None
    }

    /// The answer's head arrived: stream it, or read it as a refusal.
    fn answered(&mut self, mut open: Open, response: Response<Incoming>, deadline: Option<Sleep>) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        match self.core.on_response(status, content_type, self.now()) {
            Head::Events => {
                self.state = State::Streaming(Box::new(Live {
                    open,
                    body: response.into_body(),
                    chunk: Bytes::new(),
                    inactivity: None,
                }));
            }
            Head::Refused => {
                let limit = self.shared.max_body_bytes;
                let body: Reading = Box::pin(async move { open.read_body(response, limit).await });
                self.state = State::Refused {
                    status,
                    body,
                    deadline,
                };
            }
        }
    }

    /// Reads the event stream until it yields a step or must wait.
    fn poll_live(&mut self, cx: &mut Context<'_>) -> Poll<Option<Step<T>>> {
        let State::Streaming(live) = &mut self.state else {
            return Poll::Ready(None);
        };
        loop {
            if !live.chunk.is_empty() {
                let mut input: &[u8] = &live.chunk;
                let step = self.core.on_bytes(&mut input, self.shared.timer.now());
                let used = live.chunk.len() - input.len();
                live.chunk.advance(used);
                if step.is_some() {
                    return Poll::Ready(step);
                }
                continue;
            }
            // The connection feeds the body: move its bytes first.
            live.open.driver.poll(cx);
            match Pin::new(&mut live.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        live.chunk = data;
                    }
                    continue;
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::debug!(error = %err, "event stream broke off");
                    return Poll::Ready(self.core.on_closed());
                }
                Poll::Ready(None) => return Poll::Ready(self.core.on_closed()),
                Poll::Pending => {}
            }
            let Some(at) = self.core.poll_timeout() else {
                return Poll::Pending;
            };
            let timer = &self.shared.timer;
            let sleep = live.inactivity.get_or_insert_with(|| timer.sleep_until(at));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // Set for an earlier deadline that bytes may have moved since: check, then re-arm.
            live.inactivity = None;
            if let Some(step) = self.core.handle_timeout(self.shared.timer.now()) {
                return Poll::Ready(Some(step));
            }
        }
    }

    /// Acts on a step: `Some` is what the stream yields now, `None` means go on.
    fn apply(&mut self, step: Option<Step<T>>) -> Option<Option<Result<Event<T>, RpcError>>> {
        let Some(step) = step else {
            // The core had already decided this connection's end: nothing left to drive.
            self.state = State::Finished;
            return Some(Some(Err(RpcError::new(
                ErrorCode::INTERNAL_SERVER_ERROR,
                "the subscription's state machine was driven out of order",
            ))));
        };
        match step {
            Step::Event(event) => Some(Some(Ok(event))),
            Step::Reconnect(delay) => {
                tracing::debug!(?delay, last_event_id = ?self.core.last_event_id(), "reconnecting");
                self.reconnects = self.reconnects.saturating_add(1);
                // Replacing the state drops the connection.
                self.state = State::Waiting(self.shared.timer.sleep(delay));
                None
            }
            Step::Done(value) => {
                self.returned = Some(value);
                self.state = State::Finished;
                Some(None)
            }
            Step::Failed(error) => {
                self.state = State::Finished;
                Some(Some(Err(error)))
            }
        }
    }
}

impl<T: DeserializeOwned> Stream for Subscription<T> {
    type Item = Result<Event<T>, RpcError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let step = match &mut this.state {
                State::Finished => return Poll::Ready(None),
                State::Start => match this.connect() {
                    None => continue,
                    step => step,
                },
                State::Waiting(sleep) => {
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    match this.connect() {
                        None => continue,
                        step => step,
                    }
                }
                State::Answering { answer, deadline } => match answer.as_mut().poll(cx) {
                    Poll::Ready(Ok((open, response))) => {
                        let deadline = deadline.take();
                        this.answered(open, response, deadline);
                        continue;
                    }
                    Poll::Ready(Err(error)) => {
                        tracing::debug!(%error, "subscription could not connect");
                        this.core.on_closed()
                    }
                    Poll::Pending => {
                        if !deadline
                            .as_mut()
                            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
                        {
                            return Poll::Pending;
                        }
                        tracing::debug!("no answer within the request timeout");
                        this.core.on_closed()
                    }
                },
                State::Refused {
                    status,
                    body,
                    deadline,
                } => match body.as_mut().poll(cx) {
                    Poll::Ready(Ok(bytes)) => Some(this.core.on_refused(*status, &bytes)),
                    // Over max_body_bytes: the answer itself is at fault, reading it again won't help.
                    Poll::Ready(Err(error @ ReadError::TooLarge(_))) => {
                        Some(Step::Failed(error.into()))
                    }
                    Poll::Ready(Err(ReadError::Broken(_))) => this.core.on_closed(),
                    Poll::Pending => {
                        if !deadline
                            .as_mut()
                            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
                        {
                            return Poll::Pending;
                        }
                        this.core.on_closed()
                    }
                },
                State::Streaming(_) => match this.poll_live(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(step) => step,
                },
            };
            if let Some(item) = this.apply(step) {
                return Poll::Ready(item);
            }
        }
    }
}

impl<T: DeserializeOwned> FusedStream for Subscription<T> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, State::Finished)
    }
}
