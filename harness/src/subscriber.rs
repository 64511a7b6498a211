//! What a subscribing client keeps across its connections, apart from the connection itself:
//! the SSE decoder, the protocol's frame reader, the core's [`Resumer`] and everything seen so
//! far. [`Session`](crate::Session) (in memory) and
//! [`LoopbackSession`](crate::loopback::LoopbackSession) (over a socket) both feed it bytes.

use outer_core::client::{Decision, Ended, Resumer, RetryPolicy};
use outer_core::protocol::orpc::ClientFrame;
use outer_core::sse::SseDecoder;
use outer_core::{Event, EventId, RpcError};
use serde_json::Value;

use crate::protocol::{decode_frame, Protocol, SubscribeRequest};

/// What a session has seen, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Seen {
    /// An event, with its id.
    Event(Event<Value>),
    /// The stream's return value (`null` in tRPC, which does not send it).
    Done(Value),
    /// An error in the stream or as the answer. Whether the session reconnects after it is the
    /// [`Resumer`]'s decision.
    Error(RpcError),
}

/// The client's side of one subscription.
#[derive(Debug)]
pub(crate) struct Subscriber {
    protocol: Protocol,
    path: String,
    input: Option<Value>,
    resumer: Resumer,
    decoder: SseDecoder,
    seen: Vec<Seen>,
    connections: usize,
    /// The current connection's stream ended with `done` or an error frame: its close is not
    /// a drop.
    stream_ended: bool,
    finished: Option<Result<(), RpcError>>,
}

impl Subscriber {
    pub(crate) fn new(protocol: Protocol, path: &str, input: Option<Value>) -> Self {
        Self {
            protocol,
            path: path.into(),
            input,
            resumer: Resumer::new(RetryPolicy {
                max_attempts: None,
                jitter: false,
                ..RetryPolicy::default()
            }),
            decoder: SseDecoder::new(),
            seen: Vec::new(),
            connections: 0,
            stream_ended: false,
            finished: None,
        }
    }

    pub(crate) fn set_policy(&mut self, policy: RetryPolicy) {
        self.resumer = Resumer::new(policy);
    }

    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The request for the next connection, resuming after the last id.
    pub(crate) fn next_request(&mut self) -> SubscribeRequest {
        self.connections += 1;
        self.stream_ended = false;
        self.decoder = SseDecoder::new();
        SubscribeRequest::new(
            self.protocol,
            &self.path,
            self.input.as_ref(),
            self.resumer.last_event_id(),
        )
    }

    /// The message that subscribes on a new WebSocket, resuming after the last id.
    pub(crate) fn next_ws_message(&mut self) -> String {
        self.connections += 1;
        self.stream_ended = false;
        crate::websocket::subscribe_message(
            self.protocol,
            &self.path,
            self.input.as_ref(),
            self.resumer.last_event_id(),
        )
    }

    /// The connection was refused before its stream started.
    pub(crate) fn refused(&mut self, error: RpcError) {
        self.seen.push(Seen::Error(error.clone()));
        self.stream_ended = true;
        self.decide(Ended::Error(error));
    }

    /// Bytes of the stream arrived.
    pub(crate) fn receive(&mut self, mut bytes: &[u8]) {
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
            self.frame(decode_frame(self.protocol, &event));
        }
    }

    /// A frame of the stream arrived, decoded (from SSE bytes, or a WebSocket message).
    pub(crate) fn frame(&mut self, frame: Result<Option<ClientFrame>, RpcError>) {
        if self.stream_ended {
            let error = RpcError::internal("an event after the end of the stream");
            self.seen.push(Seen::Error(error));
            return;
        }
        match frame {
            Ok(Some(ClientFrame::Message(message))) => {
                self.resumer.on_event(message.id(), message.meta().retry());
                self.seen.push(Seen::Event(message));
            }
            Ok(Some(ClientFrame::Done(value))) => {
                self.seen.push(Seen::Done(value));
                self.stream_ended = true;
                self.finished = Some(Ok(()));
            }
            Ok(Some(ClientFrame::Error(error))) => {
                self.seen.push(Seen::Error(error.clone()));
                self.stream_ended = true;
                self.decide(Ended::Error(error));
            }
            Ok(None) => {}
            Err(error) => self.seen.push(Seen::Error(error)),
        }
    }

    /// The connection closed (either side): a partial event is dropped, and a stream that did
    /// not end with `done` or an error counts as dropped.
    pub(crate) fn closed(&mut self) {
        self.decoder.finish();
        if !self.stream_ended {
            self.stream_ended = true;
            self.decide(Ended::Dropped);
        }
    }

    fn decide(&mut self, why: Ended) {
        if self.finished.is_some() {
            return;
        }
        if let Decision::GiveUp(error) = self.resumer.on_end(why, 0) {
            self.finished = Some(Err(error));
        }
    }

    pub(crate) fn seen(&self) -> &[Seen] {
        &self.seen
    }

    pub(crate) fn event_count(&self) -> usize {
        self.seen
            .iter()
            .filter(|s| matches!(s, Seen::Event(_)))
            .count()
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections
    }

    pub(crate) fn finished(&self) -> Option<&Result<(), RpcError>> {
        self.finished.as_ref()
    }

    pub(crate) fn last_event_id(&self) -> Option<&EventId> {
        self.resumer.last_event_id()
    }
}

/// The events among what was seen, in order.
pub(crate) fn events(seen: &[Seen]) -> impl Iterator<Item = &Event<Value>> {
    seen.iter().filter_map(|s| match s {
        Seen::Event(e) => Some(e),
        _ => None,
    })
}
