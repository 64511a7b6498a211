//! tRPC's messages on a socket: the connection params, calls, subscriptions and stops.

use std::future::ready;
use std::sync::Arc;

use futures_util::future::Either;
use futures_util::stream;
use futures_util::StreamExt;
use outer_core::procedure::Frame;
use outer_core::protocol::trpc_ws;
use outer_core::{ErrorCode, ProcedureKind, RpcError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::{answer, once, refused, Answer, CallId, Frames, Socket};

impl<Ctx, S> Socket<Ctx, S>
where
    Ctx: Clone + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    pub(super) fn on_trpc(&mut self, text: &str) {
        if let Some(mut head) = self.awaiting_params.take() {
            match trpc_ws::decode_connection_params(text) {
                Ok(params) => {
                    head.connection_params = params;
                    self.build_context(head);
                }
                Err(error) => {
                    self.send(error.frame());
                    self.close(CloseCode::Policy, error.message());
                }
            }
            return;
        }
        let messages = match trpc_ws::decode(text) {
            Ok(messages) => messages,
            Err(error) => return self.send(error.frame()),
        };
        for message in messages {
            match message {
                trpc_ws::ClientMessage::Ping => self.send(trpc_ws::PONG.to_owned()),
                trpc_ws::ClientMessage::Pong => {}
                trpc_ws::ClientMessage::Refused(frame) => self.send(frame),
                trpc_ws::ClientMessage::Stop(id) => self.stop(id.as_json()),
                trpc_ws::ClientMessage::Request(request) => self.trpc_request(request),
            }
        }
    }

    fn trpc_request(&mut self, request: trpc_ws::WsRequest) {
        let trpc_ws::WsRequest {
            id,
            kind,
            path,
            input,
            last_event_id,
        } = request;
        let subscription = kind == ProcedureKind::Subscription;
        if subscription && self.live.contains_key(id.as_json()) {
            let error = RpcError::new(
                ErrorCode::BAD_REQUEST,
                format!("Duplicate id {}", id.as_json()),
            );
            refused(&self.shared, self.protocol, Some(&path), &error);
            return self.send(trpc_ws::error(&id, &error, &path));
        }
        if self.busy() {
            let error = self.too_many();
            refused(&self.shared, self.protocol, Some(&path), &error);
            return self.send(trpc_ws::error(&id, &error, &path));
        }
        let known = self
            .shared
            .app
            .router()
            .get(&path)
            .is_some_and(|procedure| procedure.kind() == kind);
        if !known {
            let error = trpc_ws::no_such_procedure(kind, &path);
            // A procedure of another kind is still a name the router serves.
            refused(&self.shared, self.protocol, Some(&path), &error);
            return self.send(trpc_ws::error(&id, &error, &path));
        }
        let shared = Arc::clone(&self.shared);
        let context = Arc::clone(&self.context);
        let request = id.clone();
        let protocol = self.protocol;
        let call = async move {
            let context = context.get().await;
            let answered = answer(&shared, protocol, context, &path, input, last_event_id).await;
            let frames: Frames = match answered {
                Err(error) => once(trpc_ws::error(&request, &error, &path)),
                Ok(Answer::Value(json)) => once(trpc_ws::data(&request, json.get(), None)),
                Ok(Answer::Stream(frames)) => {
                    let bytes = frames.bytes();
                    let started = trpc_ws::started(&request);
                    bytes.increment(started.len() as u64);
                    let events = frames.flat_map(move |frame| match frame {
                        // One frame per event, without the list the end's two need. A shared
                        // event is written per socket too: its message carries this call's id.
                        Frame::Event(_) | Frame::Shared(_) => {
                            let data = trpc_ws::data(
                                &request,
                                frame.event_data().map_or("null", |data| data.get()),
                                frame.event_id(),
                            );
                            bytes.increment(data.len() as u64);
                            Either::Left(stream::once(ready(data)))
                        }
                        end => {
                            let frames = trpc_ws::subscription_frames(&request, &path, end);
                            let written: usize = frames.iter().map(String::len).sum();
                            bytes.increment(written as u64);
                            Either::Right(stream::iter(frames))
                        }
                    });
                    Box::pin(stream::once(async move { started }).chain(events))
                }
            };
            frames
        };
        let frames: Frames = Box::pin(stream::once(call).flatten());
        self.start(frames, subscription.then_some(CallId::Trpc(id)));
    }
}
