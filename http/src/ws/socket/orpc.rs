//! oRPC's messages on a socket: calls (with headers of their own or not), streams and aborts.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use outer_core::procedure::Frame;
use outer_core::protocol::{orpc, orpc_ws};
use outer_core::{ErrorCode, RequestHead, RpcError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{answer, once, refused, truncate, Answer, CallId, Frames, Phase, Socket};

impl<Ctx, S> Socket<Ctx, S>
where
    Ctx: Clone + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    pub(super) fn on_orpc(&mut self, text: &str) {
        let message = match orpc_ws::decode(text) {
            Ok(message) => message,
            Err(error) => {
                // No id to answer on: oRPC's server only logs these. A client that sends one is
                // not oRPC's, and a clear close beats silence.
                let reason = format!("Not an oRPC message: {}", error.message());
                return self.close(CloseCode::Invalid, truncate(&reason));
            }
        };
        let (id, call, headers) = match message {
            orpc_ws::ClientMessage::Abort(id) => return self.stop(id.as_json()),
            // Client-to-server iterators: no procedure of Outer's takes one.
            orpc_ws::ClientMessage::ClientEvent(_) => return,
            orpc_ws::ClientMessage::Request { id, call, headers } => (id, call, headers),
        };
        let path = call.as_ref().ok().map(|call| call.path.as_str());
        let refuse = |socket: &mut Self, error: RpcError| {
            refused(&socket.shared, socket.protocol, path, &error);
            socket.send(orpc_ws::error(&id, &error));
        };
        if self.live.contains_key(id.as_json()) {
            let error = RpcError::new(
                ErrorCode::BAD_REQUEST,
                format!(
                    "Duplicate id {}: a call with this id is still running",
                    id.as_json()
                ),
            );
            return refuse(self, error);
        }
        if self.busy() {
            let error = self.too_many();
            return refuse(self, error);
        }
        let not_found = |socket: &mut Self| {
            let error = RpcError::from_code(ErrorCode::NOT_FOUND);
            refused(&socket.shared, socket.protocol, None, &error);
            socket.send(orpc_ws::not_found(&id));
        };
        let call = match call {
            Ok(call) if self.shared.app.router().get(&call.path).is_some() => call,
            Ok(_) => return not_found(self),
            Err(error) if error.code() == ErrorCode::NOT_FOUND.name => return not_found(self),
            Err(error) => {
                refused(&self.shared, self.protocol, None, &error);
                return self.send(orpc_ws::error(&id, &error));
            }
        };
        if matches!(self.phase, Phase::Notified(_)) {
            let error = RpcError::new(
                ErrorCode::SERVICE_UNAVAILABLE,
                "The server is shutting down; retry on another",
            );
            refused(&self.shared, self.protocol, Some(&call.path), &error);
            return self.send(orpc_ws::error(&id, &error));
        }
        // Headers of the call's own (the link's `headers` option) get a context of their own,
        // built as an HTTP call's would be.
        let own_head = headers
            .iter()
            .any(|(name, _)| name != "last-event-id")
            .then(|| self.call_head(&call.path, headers));
        let shared = Arc::clone(&self.shared);
        let context = Arc::clone(&self.context);
        let request = id.clone();
        let protocol = self.protocol;
        let run = async move {
            let context = match own_head {
                Some(head) => shared.app.context(head).await,
                None => context.get().await,
            };
            let (path, input, resume) = (call.path, call.input, call.last_event_id);
            let answered = answer(&shared, protocol, context, &path, input, resume).await;
            let frames: Frames = match answered {
                Err(error) => once(orpc_ws::error(&request, &error)),
                Ok(Answer::Value(json)) => {
                    once(orpc_ws::response(&request, 200, &orpc::value_body(&json)))
                }
                Ok(Answer::Stream(frames)) => {
                    let bytes = frames.bytes();
                    let opened = orpc_ws::stream_opened(&request);
                    bytes.increment(opened.len() as u64);
                    let interruption = orpc_ws::event(&request, Frame::Error(orpc::interruption()));
                    let events = frames.map(move |frame| {
                        let text = orpc_ws::event(&request, frame);
                        bytes.increment(text.len() as u64);
                        text
                    });
                    let events = EndOnShutdown {
                        events: Some(events),
                        shutdown: Box::pin(shared.shutdown.wait()),
                        interruption: Some(interruption),
                    };
                    Box::pin(stream::once(async move { opened }).chain(events))
                }
            };
            frames
        };
        let frames: Frames = Box::pin(stream::once(run).flatten());
        self.start(frames, Some(CallId::Orpc(id)));
    }

    /// The head of an oRPC call that brought headers of its own: the upgrade request's, at the
    /// procedure's path, with the call's headers first (so `head.header` finds them). The
    /// upgrade request's extensions stay with the socket's context: they cannot be copied.
    fn call_head(&self, path: &str, headers: Vec<(String, String)>) -> RequestHead {
        let upgrade = &self.upgrade;
        let path = format!(
            "{}/{}",
            upgrade.path.trim_end_matches('/'),
            path.replace('.', "/")
        );
        let mut head = RequestHead::new("POST", path);
        head.query = upgrade.query.clone();
        head.headers = headers;
        head.headers.extend(upgrade.headers.iter().cloned());
        head.peer = upgrade.peer;
        head
    }
}

/// An oRPC stream's events that end, on shutdown, with a retryable error, as its SSE streams do:
/// the client's retry plugin calls again elsewhere with the last event id.
struct EndOnShutdown<S> {
    events: Option<S>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send>>,
    interruption: Option<String>,
}

impl<S: Stream<Item = String> + Unpin> Stream for EndOnShutdown<S> {
    type Item = String;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let this = self.get_mut();
        let Some(events) = this.events.as_mut() else {
            return Poll::Ready(None);
        };
        if this.shutdown.as_mut().poll(cx).is_ready() {
            this.events = None;
            return Poll::Ready(this.interruption.take());
        }
        let next = events.poll_next_unpin(cx);
        if let Poll::Ready(None) = next {
            this.events = None;
        }
        next
    }
}
