//! oRPC over WebSocket (`@orpc/client/websocket`'s `RPCLink`, `@orpc/server/ws`'s
//! `RPCHandler`), as pure functions: the messages a client sends, decoded; the messages a server
//! sends, encoded byte for byte as the reference server writes them. The socket and each
//! connection's state belong to the transport.
//!
//! Every message is a JSON object `{"i": id, "t"?: type, "p"?: payload}` in a text frame
//! (`tests/fixtures/reference-ws/NOTES.md` cites a capture for every rule here):
//! - a request is `{"i","p":{"u":"/post/live","b":{"json",…}|{},"h"?:{"last-event-id"},"m"?}}`,
//!   the HTTP request in small (`b` is the body's `{"json","meta"}` envelope, `{}` for no input);
//! - an abort is `{"i","t":4}`: the server drops the call and sends nothing back;
//! - a response is `{"i","p":{"s"?,"h"?,"b"?}}` (status only when not 200); an event stream
//!   answers with headers only (`content-type: text/event-stream`), then sends each event as
//!   `{"i","t":3,"p":{"e":"message"|"done"|"error","d"?,"m"?:{"id","retry"}}}`.
//!
//! Ids are strings from the real client, but any JSON value is echoed as it came.
//!
//! ```
//! use outer_core::protocol::orpc_ws::{decode, ClientMessage};
//! let message = decode(r#"{"i":"1","p":{"u":"/ping","b":{"json":{"n":1}}}}"#).unwrap();
//! let ClientMessage::Request { call, .. } = message else { panic!() };
//! assert_eq!(call.unwrap().path, "ping");
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::orpc::{decode_envelope, error_body, malformed, procedure_path, value_parts, OrpcCall};
use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;
use crate::procedure::Frame;

/// A message's id as the client sent it, echoed in every answer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// The id as JSON text: `"1"`.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// One client message.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// A call: the procedure and its input, or the error to answer it with at once (a url no
    /// procedure can have, `NOT_FOUND`: answer [`not_found`]; a body or resume id that cannot be
    /// read, a 400). A path the router does not have is [`not_found`] too.
    Request {
        /// Echoed in every answer.
        id: MessageId,
        /// What to call.
        call: Result<OrpcCall, RpcError>,
        /// The request's own headers (`h`, names in lower case): what the link's `headers`
        /// option sends with every call, such as an `authorization` a browser cannot put on
        /// the socket's upgrade.
        headers: Vec<(String, String)>,
    },
    /// `t: 4`: stop the call with this id (its handler is dropped); nothing is sent back.
    Abort(MessageId),
    /// `t: 3` from the client: an event of a client-to-server iterator, which Outer's
    /// procedures do not take. Ignored, as the reference ignores a message it cannot use.
    ClientEvent(MessageId),
}

/// A message that is not oRPC's: the reference server only logs it and sends nothing back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(String);

impl DecodeError {
    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// Decodes one client message.
pub fn decode(text: &str) -> Result<ClientMessage, DecodeError> {
    let value: Value =
        serde_json::from_str(text).map_err(|err| DecodeError(alloc::format!("not JSON: {err}")))?;
    let Value::Object(mut message) = value else {
        return Err(DecodeError("not an object".into()));
    };
    let id = match message.remove("i") {
        Some(id @ (Value::String(_) | Value::Number(_))) => MessageId(id.to_string()),
        _ => return Err(DecodeError("no id".into())),
    };
    match message.remove("t").and_then(|t| t.as_u64()) {
        Some(4) => return Ok(ClientMessage::Abort(id)),
        Some(3) => return Ok(ClientMessage::ClientEvent(id)),
        // Any other type is a request, as the reference reads it.
        _ => {}
    }
    let Some(Value::Object(mut payload)) = message.remove("p") else {
        return Err(DecodeError("no payload".into()));
    };
    let headers = match payload.get("h") {
        Some(Value::Object(headers)) => headers
            .iter()
            .filter_map(|(name, value)| {
                let value = value.as_str()?;
                Some((name.to_ascii_lowercase(), value.to_string()))
            })
            .collect(),
        _ => Vec::new(),
    };
    if headers.is_empty() {
        payload.remove("h");
    }
    Ok(ClientMessage::Request {
        call: request(payload),
        id,
        headers,
    })
}

fn request(mut payload: Map<String, Value>) -> Result<OrpcCall, RpcError> {
    let Some(Value::String(url)) = payload.remove("u") else {
        return Err(malformed("the message has no procedure url `u`"));
    };
    let route = url.split(['?', '#']).next().unwrap_or_default();
    let path = procedure_path(route).ok_or_else(|| RpcError::from_code(ErrorCode::NOT_FOUND))?;
    if let Some(method) = payload.remove("m").as_ref().and_then(Value::as_str) {
        if !method.eq_ignore_ascii_case("POST") {
            return Err(RpcError::from_code(ErrorCode::METHOD_NOT_SUPPORTED));
        }
    }
    let last_event_id = match payload.remove("h") {
        Some(Value::Object(headers)) => match headers.get("last-event-id") {
            Some(Value::String(id)) => EventId::from_resume(id)
                .map_err(|err| malformed(alloc::format!("last-event-id: {err}")))?,
            _ => None,
        },
        _ => None,
    };
    let input = match payload.remove("b") {
        None | Some(Value::Null) => None,
        Some(body) => decode_envelope(body, super::orpc::OrpcVersion::V1)?,
    };
    Ok(OrpcCall {
        path,
        input,
        last_event_id,
    })
}

/// A call's answer: `{"i","p":{"b":{"json":…}}}`; `body` is [`super::orpc::value_body`]'s or
/// [`error_body`]'s JSON, and `status` is left out when it is 200.
pub fn response(id: &MessageId, status: u16, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 32);
    out.push_str("{\"i\":");
    out.push_str(&id.0);
    out.push_str(",\"p\":{");
    if status != 200 {
        out.push_str("\"s\":");
        out.push_str(&status.to_string());
        out.push(',');
    }
    out.push_str("\"b\":");
    out.push_str(body);
    out.push_str("}}");
    out
}

/// A failed call: its status and error body.
pub fn error(id: &MessageId, error: &RpcError) -> String {
    response(id, error.status(), &error_body(error))
}

/// The answer to a call of a path no procedure has: the reference's plain-string body, which
/// the client reads as `NOT_FOUND`.
pub fn not_found(id: &MessageId) -> String {
    response(id, 404, "\"No procedure matched\"")
}

/// The answer that opens an event stream: headers only; the events follow as [`event`]s.
pub fn stream_opened(id: &MessageId) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("{\"i\":");
    out.push_str(&id.0);
    out.push_str(",\"p\":{\"h\":{\"content-type\":\"text/event-stream\"}}}");
    out
}

/// One item of an event stream: a value as `message` with its id and retry, the return value
/// as `done`, an error as `error`. Nothing follows `done` or `error`.
pub fn event(id: &MessageId, frame: Frame) -> String {
    let mut out = String::with_capacity(64);
    out.push_str("{\"i\":");
    out.push_str(&id.0);
    out.push_str(",\"t\":3,\"p\":{\"e\":");
    match frame {
        Frame::Event(event) => {
            let (value, meta) = event.into_parts();
            message(&value, meta.id(), meta.retry(), &mut out);
        }
        // The message carries this socket's call id: nothing whole to share, written per call.
        Frame::Shared(event) => message(event.data(), event.id(), None, &mut out),
        Frame::Done(value) => {
            out.push_str("\"done\",\"d\":");
            out.extend(value_parts(&value));
        }
        Frame::Error(failure) => {
            out.push_str("\"error\",\"d\":");
            out.push_str(&error_body(&failure));
        }
    }
    out.push_str("}}");
    out
}

/// A `message` event's `"d"` and `"m"`, after `"e":`.
fn message(value: &RawValue, id: Option<&EventId>, retry: Option<u64>, out: &mut String) {
    out.push_str("\"message\",\"d\":");
    out.extend(value_parts(value));
    if id.is_some() || retry.is_some() {
        out.push_str(",\"m\":{");
        if let Some(event_id) = id {
            out.push_str("\"id\":");
            out.push_str(&serde_json::to_string(event_id.as_str()).unwrap_or_default());
        }
        if let Some(retry) = retry {
            if id.is_some() {
                out.push(',');
            }
            out.push_str("\"retry\":");
            out.push_str(&retry.to_string());
        }
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use serde_json::value::RawValue;

    fn json(text: &str) -> crate::procedure::Json {
        RawValue::from_string(text.into()).unwrap()
    }

    fn call(text: &str) -> (MessageId, Result<OrpcCall, RpcError>) {
        match decode(text).unwrap() {
            ClientMessage::Request { id, call, .. } => (id, call),
            other => panic!("not a request: {other:?}"),
        }
    }

    // Each frame below is copied from a capture in tests/fixtures/reference-ws.

    #[test]
    fn a_call_and_its_answer_are_the_reference_bytes() {
        // orpc/ping.jsonl
        let (id, ping) = call(r#"{"i":"1","p":{"u":"/ping","b":{"json":{"n":1}}}}"#);
        let ping = ping.unwrap();
        assert_eq!(ping.path, "ping");
        assert_eq!(ping.input, Some(serde_json::json!({"n": 1})));
        assert_eq!(
            response(&id, 200, r#"{"json":{"n":1}}"#),
            r#"{"i":"1","p":{"b":{"json":{"n":1}}}}"#
        );
        // orpc/post-live.jsonl: no input is `"b":{}`.
        let (_, live) = call(r#"{"i":"1","p":{"u":"/post/live","b":{}}}"#);
        let live = live.unwrap();
        assert_eq!((live.path.as_str(), live.input), ("post.live", None));
    }

    #[test]
    fn a_resumed_call_carries_the_last_event_id_header() {
        // orpc/resume-after-cut.jsonl
        let (id, resumed) =
            call(r#"{"i":"3","p":{"u":"/post/live","b":{},"h":{"last-event-id":"3"}}}"#);
        assert_eq!(id.as_json(), r#""3""#);
        assert_eq!(
            resumed.unwrap().last_event_id,
            Some(EventId::new("3").unwrap())
        );
        // A resume id that cannot be one is a 400 for that call.
        let (_, refused) =
            call(r#"{"i":"4","p":{"u":"/post/live","b":{},"h":{"last-event-id":"a\nb"}}}"#);
        assert_eq!(refused.unwrap_err().status(), 400);
    }

    #[test]
    fn errors_and_unknown_paths_answer_as_the_reference_does() {
        // orpc/not-found.jsonl: the router finds no `nope`; the answer is the reference's.
        let (id, missing) = call(r#"{"i":"1","p":{"u":"/nope","b":{}}}"#);
        assert_eq!(missing.unwrap().path, "nope");
        assert_eq!(
            not_found(&id),
            r#"{"i":"1","p":{"s":404,"b":"No procedure matched"}}"#
        );
        // A url no procedure can have is refused by the decoder already.
        let (_, unreadable) = call(r#"{"i":"2","p":{"u":"/a.b","b":{}}}"#);
        assert_eq!(unreadable.unwrap_err().code(), "NOT_FOUND");
        // orpc/failing.jsonl's error, as a unary answer (orpc/validation-error.jsonl's shape).
        let failure = RpcError::new(ErrorCode::BAD_REQUEST, "nope")
            .with_data(serde_json::json!({"why": "x"}));
        assert_eq!(
            error(&id, &failure),
            r#"{"i":"1","p":{"s":400,"b":{"json":{"defined":false,"code":"BAD_REQUEST","status":400,"message":"nope","data":{"why":"x"}}}}}"#
        );
    }

    #[test]
    fn a_stream_opens_with_headers_then_sends_events_done_and_errors() {
        let id = MessageId("\"1\"".into());
        // orpc/counter.jsonl
        assert_eq!(
            stream_opened(&id),
            r#"{"i":"1","p":{"h":{"content-type":"text/event-stream"}}}"#
        );
        let event = Event::new(json(r#"{"n":1}"#))
            .with_id("1")
            .unwrap()
            .with_retry(1000);
        assert_eq!(
            super::event(&id, Frame::Event(event)),
            r#"{"i":"1","t":3,"p":{"e":"message","d":{"json":{"n":1}},"m":{"id":"1","retry":1000}}}"#
        );
        assert_eq!(
            super::event(&id, Frame::Done(json(r#"{"done":true}"#))),
            r#"{"i":"1","t":3,"p":{"e":"done","d":{"json":{"done":true}}}}"#
        );
        // orpc/failing.jsonl: an event without meta, then the error.
        assert_eq!(
            super::event(&id, Frame::Event(Event::new(json(r#"{"n":1}"#)))),
            r#"{"i":"1","t":3,"p":{"e":"message","d":{"json":{"n":1}}}}"#
        );
        let failure = RpcError::new(ErrorCode::BAD_REQUEST, "nope")
            .with_data(serde_json::json!({"why": "x"}));
        assert_eq!(
            super::event(&id, Frame::Error(failure)),
            r#"{"i":"1","t":3,"p":{"e":"error","d":{"json":{"defined":false,"code":"BAD_REQUEST","status":400,"message":"nope","data":{"why":"x"}}}}}"#
        );
    }

    #[test]
    fn aborts_client_events_and_messages_that_are_not_orpc() {
        // orpc/cancel-signal.jsonl
        assert_eq!(
            decode(r#"{"i":"1","t":4}"#),
            Ok(ClientMessage::Abort(MessageId("\"1\"".into())))
        );
        assert_eq!(
            decode(r#"{"i":"1","t":3,"p":{"e":"message","d":{}}}"#),
            Ok(ClientMessage::ClientEvent(MessageId("\"1\"".into())))
        );
        // raw/orpc-unknown-type.jsonl: another type is a request; a number id is echoed.
        let (id, ping) = call(r#"{"i":1,"t":9,"p":{"u":"/ping","b":{"json":{"n":1}}}}"#);
        assert_eq!(id.as_json(), "1");
        assert!(ping.is_ok());
        // raw/orpc-malformed-json.jsonl and friends: the reference answers nothing.
        assert!(decode("not json{").is_err());
        assert!(decode("[1]").is_err());
        assert!(decode(r#"{"p":{"u":"/ping"}}"#).is_err());
        assert!(decode(r#"{"i":2,"t":9}"#).is_err());
    }
}
