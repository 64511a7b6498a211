//! tRPC over WebSocket (`@trpc/client`'s `wsLink`, `@trpc/server`'s ws adapter), as pure
//! functions: the frames a client sends, decoded; the frames a server sends, encoded byte for
//! byte as the reference server writes them. The socket, the upgrade and each connection's
//! state (its open subscriptions, keep-alive) belong to the transport.
//!
//! The bytes were read off the real client and server (`tests/fixtures/reference-ws`, whose
//! `NOTES.md` cites a capture for every rule here):
//! - a client frame is `PING`, `PONG`, one JSON message or a JSON array of them;
//! - a request is `{"id","method":"query"|"mutation"|"subscription","params":{"input"?,"path","lastEventId"?}}`
//!   (`id` a number or a string, echoed as given; `"jsonrpc":"2.0"` optional and echoed), a stop
//!   is `{"id","method":"subscription.stop"}`;
//! - answers: `{"id","result":{"type":"data","data"}}` for a call; `started`, then `data`
//!   (a tracked event's id both in `result.id` and as `data: {"id","data"}`), then `stopped` for
//!   a subscription; `{"id","error":shape}` with the HTTP error shape; frames it cannot read get
//!   `{"id":null,"error":…PARSE_ERROR…}` and the socket stays open;
//! - the first frame is `{"method":"connectionParams","data":{…}}` when the client connected
//!   with `?connectionParams=1` ([`decode_connection_params`]).
//!
//! ```
//! use outer_core::protocol::trpc_ws::{decode, started, ClientMessage};
//! let messages = decode(r#"{"id":1,"method":"subscription","params":{"path":"post.live"}}"#).unwrap();
//! let ClientMessage::Request(request) = &messages[0] else { panic!() };
//! assert_eq!(request.path, "post.live");
//! assert_eq!(started(&request.id), r#"{"id":1,"result":{"type":"started"}}"#);
//! ```

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use serde_json::{Map, Value};

use super::trpc::{merge_last_event_id, string_params, write_error_shape, MAX_BATCH};
use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;
use crate::procedure::Frame;
use crate::ProcedureKind;

/// The keep-alive frame either side sends after a silence; answered with [`PONG`].
pub const PING: &str = "PING";

/// The answer to [`PING`].
pub const PONG: &str = "PONG";

/// Sent to every open socket before the server goes away: the client opens a new socket,
/// resubscribes there with its last event ids, then closes this one.
pub const RECONNECT: &str = r#"{"id":null,"method":"reconnect"}"#;

/// A request's id as the client sent it (a number or a string), and whether it said
/// `"jsonrpc":"2.0"`: every answer to the request echoes both.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RequestId {
    /// The id as JSON: `1`, `"abc"`.
    json: String,
    jsonrpc: bool,
}

impl RequestId {
    /// The id as JSON text.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// `{"id":…` and, when the request had it, `,"jsonrpc":"2.0"`: how every answer starts.
    fn open(&self, out: &mut String) {
        out.push_str("{\"id\":");
        out.push_str(&self.json);
        if self.jsonrpc {
            out.push_str(",\"jsonrpc\":\"2.0\"");
        }
    }
}

/// A query, a mutation or a subscription, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct WsRequest {
    /// Echoed in every answer.
    pub id: RequestId,
    /// Which kind of procedure the client asked for.
    pub kind: ProcedureKind,
    /// The procedure's dotted path.
    pub path: String,
    /// The input, without a `lastEventId` it may have carried.
    pub input: Option<Value>,
    /// Where to resume: `params.lastEventId`, or the input's `lastEventId`.
    pub last_event_id: Option<EventId>,
}

/// One message of a client frame.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientMessage {
    /// `PING`: answer [`PONG`].
    Ping,
    /// `PONG`: the client is alive.
    Pong,
    /// A call or a subscription to start.
    Request(WsRequest),
    /// `subscription.stop`: end that subscription and answer [`stopped`]. A stop for an id
    /// that is not running is ignored.
    Stop(RequestId),
    /// A message to answer at once with this frame (an error), and otherwise ignore: a request
    /// without an id, or with a resume id that cannot be one.
    Refused(String),
}

/// A frame that could not be read: answer it with [`ParseError::frame`] and go on (tRPC keeps
/// the socket open).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError(String);

impl ParseError {
    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.0
    }

    /// `{"id":null,"error":…}` with a `PARSE_ERROR` shape.
    pub fn frame(&self) -> String {
        refusal(
            None,
            &RpcError::new(ErrorCode::PARSE_ERROR, self.0.clone()),
            None,
        )
    }
}

/// The answer to a binary frame: this protocol is JSON in text frames.
pub fn binary_refused() -> String {
    ParseError(
        "jsonEncoder received binary data. JSON uses text frames. Use a binary encoder for binary data."
            .into(),
    )
    .frame()
}

/// Decodes a client frame (after `PING`/`PONG`): one message or a batch, all or nothing, as
/// tRPC's adapter reads them.
pub fn decode(text: &str) -> Result<Vec<ClientMessage>, ParseError> {
    match text {
        PING => return Ok(vec![ClientMessage::Ping]),
        PONG => return Ok(vec![ClientMessage::Pong]),
        _ => {}
    }
    let value: Value = serde_json::from_str(text).map_err(|err| ParseError(err.to_string()))?;
    match value {
        // As over HTTP: a batch's answers are one frame each, so its size bounds what one
        // message can make the server queue.
        Value::Array(messages) if messages.len() > MAX_BATCH => Err(ParseError(alloc::format!(
            "A batch holds at most {MAX_BATCH} messages, not {}",
            messages.len()
        ))),
        Value::Array(messages) => messages.into_iter().map(message).collect(),
        one => Ok(vec![message(one)?]),
    }
}

fn message(value: Value) -> Result<ClientMessage, ParseError> {
    let fail = |message: &str| ParseError(message.into());
    let Value::Object(mut object) = value else {
        return Err(fail("Not an object"));
    };
    let id = match object.remove("id") {
        Some(Value::Null) => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.to_string()),
        _ => return Err(fail("Invalid request id")),
    };
    let jsonrpc = match object.remove("jsonrpc") {
        None => false,
        Some(Value::String(version)) if version == "2.0" => true,
        Some(_) => return Err(fail("Must be JSONRPC 2.0")),
    };
    let method = object.remove("method");
    let kind = match method.as_ref().and_then(Value::as_str) {
        Some("subscription.stop") => None,
        Some("query") => Some(ProcedureKind::Query),
        Some("mutation") => Some(ProcedureKind::Mutation),
        Some("subscription") => Some(ProcedureKind::Subscription),
        _ => return Err(fail("Invalid procedure type")),
    };
    let mut params = match (kind, object.remove("params")) {
        (None, _) => Map::new(),
        (Some(_), Some(Value::Object(params))) => params,
        (Some(_), _) => return Err(fail("Not an object")),
    };
    let path = match (kind, params.remove("path")) {
        (None, _) => String::new(),
        (Some(_), Some(Value::String(path))) => path,
        (Some(_), _) => return Err(fail("Invalid string")),
    };
    let last_event_id = match params.remove("lastEventId") {
        None => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => return Err(fail("Invalid string")),
    };
    // Checked after the whole message, as tRPC's adapter does: the batch's other messages run.
    let Some(id) = id else {
        return Ok(ClientMessage::Refused(
            ParseError("`id` is required".into()).frame(),
        ));
    };
    let id = RequestId { json: id, jsonrpc };
    let Some(kind) = kind else {
        return Ok(ClientMessage::Stop(id));
    };
    let from_params = match last_event_id.as_deref().map(EventId::new) {
        None => None,
        Some(Ok(resume)) => Some(resume),
        Some(Err(err)) => {
            let error = RpcError::new(
                ErrorCode::BAD_REQUEST,
                alloc::format!("Invalid lastEventId: {err}"),
            );
            return Ok(ClientMessage::Refused(refusal(
                Some(&id),
                &error,
                Some(&path),
            )));
        }
    };
    match merge_last_event_id(params.remove("input"), from_params) {
        Ok((input, last_event_id)) => Ok(ClientMessage::Request(WsRequest {
            id,
            kind,
            path,
            input,
            last_event_id,
        })),
        Err(error) => Ok(ClientMessage::Refused(refusal(
            Some(&id),
            &error,
            Some(&path),
        ))),
    }
}

/// Decodes the first frame of a socket opened with `?connectionParams=1`: the parameters
/// (string values), or `None` for `"data": null`. On an error, answer [`ParseError::frame`]
/// and close the socket, as tRPC does.
pub fn decode_connection_params(
    text: &str,
) -> Result<Option<BTreeMap<String, String>>, ParseError> {
    let malformed = || ParseError("Malformed TRPCConnectionParamsMessage".into());
    let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
        return Err(malformed());
    };
    let params = message.remove("data").unwrap_or(Value::Null);
    string_params(params).ok_or_else(|| ParseError("Invalid connection params shape".into()))
}

/// The error for a request whose path is no procedure of the kind it asked for (an unknown path,
/// or a query sent as a subscription): tRPC's `NOT_FOUND`, naming the method.
///
/// ```
/// use outer_core::protocol::trpc_ws::no_such_procedure;
/// use outer_core::ProcedureKind;
/// let error = no_such_procedure(ProcedureKind::Query, "nope");
/// assert_eq!(error.message(), r#"No "query"-procedure on path "nope""#);
/// assert_eq!(error.status(), 404);
/// ```
pub fn no_such_procedure(kind: ProcedureKind, path: &str) -> RpcError {
    let method = match kind {
        ProcedureKind::Query => "query",
        ProcedureKind::Mutation => "mutation",
        ProcedureKind::Subscription => "subscription",
    };
    RpcError::new(
        ErrorCode::NOT_FOUND,
        alloc::format!("No \"{method}\"-procedure on path \"{path}\""),
    )
}

/// `{"id","result":{"type":"started"}}`: the subscription runs.
pub fn started(id: &RequestId) -> String {
    result(id, "{\"type\":\"started\"}")
}

/// `{"id","result":{"type":"stopped"}}`: the subscription ended (or was stopped).
pub fn stopped(id: &RequestId) -> String {
    result(id, "{\"type\":\"stopped\"}")
}

/// A call's answer, or one value of a subscription: `data` is the value as JSON. A tracked
/// event's id goes in `result.id` and wraps the value as `{"id","data"}`, as tRPC's client
/// expects.
pub fn data(id: &RequestId, data: &str, event_id: Option<&EventId>) -> String {
    let mut out = String::with_capacity(data.len() + 64);
    id.open(&mut out);
    out.push_str(",\"result\":{\"type\":\"data\"");
    match event_id {
        None => {
            out.push_str(",\"data\":");
            out.push_str(data);
        }
        Some(event_id) => {
            let quoted = serde_json::to_string(event_id.as_str()).unwrap_or_default();
            out.push_str(",\"data\":{\"id\":");
            out.push_str(&quoted);
            out.push_str(",\"data\":");
            out.push_str(data);
            out.push_str("},\"id\":");
            out.push_str(&quoted);
        }
    }
    out.push_str("}}");
    out
}

/// `{"id","error":shape}`: the request failed; `path` is the procedure's.
pub fn error(id: &RequestId, error: &RpcError, path: &str) -> String {
    refusal(Some(id), error, Some(path))
}

/// The frames one item of a subscription's stream becomes: a value as [`data`]; its end as
/// [`stopped`] (tRPC does not send the return value); an error as [`error`] then [`stopped`].
pub fn subscription_frames(id: &RequestId, path: &str, frame: Frame) -> Vec<String> {
    match frame {
        Frame::Event(event) => {
            let (value, mut meta) = event.into_parts();
            vec![data(id, value.get(), meta.take_id().as_ref())]
        }
        // The message carries this socket's request id: nothing whole to share.
        Frame::Shared(event) => vec![data(id, event.data().get(), event.id())],
        Frame::Done(_) => vec![stopped(id)],
        Frame::Error(failure) => vec![error(id, &failure, path), stopped(id)],
    }
}

fn result(id: &RequestId, result: &str) -> String {
    let mut out = String::with_capacity(result.len() + 32);
    id.open(&mut out);
    out.push_str(",\"result\":");
    out.push_str(result);
    out.push('}');
    out
}

fn refusal(id: Option<&RequestId>, error: &RpcError, path: Option<&str>) -> String {
    let mut out = String::new();
    match id {
        Some(id) => id.open(&mut out),
        None => out.push_str("{\"id\":null"),
    }
    out.push_str(",\"error\":");
    write_error_shape(error, path, &mut out);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_over_the_cap_is_one_parse_error() {
        let ping = r#"{"id":1,"method":"subscription.stop"}"#;
        let batch = |n: usize| alloc::format!("[{}]", alloc::vec![ping; n].join(","));
        assert_eq!(decode(&batch(MAX_BATCH)).unwrap().len(), MAX_BATCH);
        let error = decode(&batch(MAX_BATCH + 1)).unwrap_err();
        assert_eq!(error.message(), "A batch holds at most 64 messages, not 65");
        assert!(error.frame().contains(r#""code":"PARSE_ERROR""#));
    }

    fn one(text: &str) -> ClientMessage {
        let mut messages = decode(text).unwrap();
        assert_eq!(messages.len(), 1);
        messages.remove(0)
    }

    fn request(text: &str) -> WsRequest {
        match one(text) {
            ClientMessage::Request(request) => request,
            other => panic!("not a request: {other:?}"),
        }
    }

    // Each frame below is copied from a capture in tests/fixtures/reference-ws.

    #[test]
    fn calls_decode_and_their_answers_are_the_reference_bytes() {
        // trpc/query.jsonl
        let query =
            request(r#"{"id":1,"method":"query","params":{"input":{"n":1},"path":"ping"}}"#);
        assert_eq!(query.kind, ProcedureKind::Query);
        assert_eq!(query.path, "ping");
        assert_eq!(query.input, Some(serde_json::json!({"n": 1})));
        assert_eq!(
            data(&query.id, r#"{"n":1}"#, None),
            r#"{"id":1,"result":{"type":"data","data":{"n":1}}}"#
        );
        // trpc/mutation.jsonl
        let mutation = request(
            r#"{"id":1,"method":"mutation","params":{"input":{"title":"hello"},"path":"post.create"}}"#,
        );
        assert_eq!(mutation.kind, ProcedureKind::Mutation);
        // raw/trpc-id-string-jsonrpc.jsonl: a string id and jsonrpc are echoed.
        let named = request(
            r#"{"id":"abc","jsonrpc":"2.0","method":"query","params":{"path":"ping","input":{"n":1}}}"#,
        );
        assert_eq!(
            data(&named.id, r#"{"n":1}"#, None),
            r#"{"id":"abc","jsonrpc":"2.0","result":{"type":"data","data":{"n":1}}}"#
        );
    }

    #[test]
    fn a_subscription_is_started_then_tracked_data_then_stopped() {
        // trpc/subscription-complete.jsonl
        let sub = request(
            r#"{"id":1,"method":"subscription","params":{"input":{"from":1,"to":2,"delayMs":1},"path":"counter"}}"#,
        );
        assert_eq!(sub.kind, ProcedureKind::Subscription);
        assert_eq!(sub.last_event_id, None);
        assert_eq!(started(&sub.id), r#"{"id":1,"result":{"type":"started"}}"#);
        let id = EventId::new("1").unwrap();
        assert_eq!(
            data(&sub.id, r#"{"n":1}"#, Some(&id)),
            r#"{"id":1,"result":{"type":"data","data":{"id":"1","data":{"n":1}},"id":"1"}}"#
        );
        assert_eq!(stopped(&sub.id), r#"{"id":1,"result":{"type":"stopped"}}"#);
    }

    #[test]
    fn a_resubscription_carries_its_last_event_id_apart_from_the_input() {
        // trpc/resubscribe-after-cut.jsonl and raw/trpc-subscription-last-event-id.jsonl
        let bare = request(
            r#"{"id":1,"method":"subscription","params":{"path":"post.live","lastEventId":"4"}}"#,
        );
        assert_eq!(bare.last_event_id, Some(EventId::new("4").unwrap()));
        assert_eq!(bare.input, None);
        let with_input = request(
            r#"{"id":1,"method":"subscription","params":{"path":"counter","input":{"from":1,"to":4,"delayMs":1},"lastEventId":"2"}}"#,
        );
        assert_eq!(with_input.last_event_id, Some(EventId::new("2").unwrap()));
        assert_eq!(
            with_input.input,
            Some(serde_json::json!({"from": 1, "to": 4, "delayMs": 1}))
        );
        // A resume id that cannot be one is refused for that request, with its id and path.
        let ClientMessage::Refused(frame) = one(
            r#"{"id":7,"method":"subscription","params":{"path":"post.live","lastEventId":"a\nb"}}"#,
        ) else {
            panic!("not refused")
        };
        assert!(
            frame.starts_with(r#"{"id":7,"error":{"message":"Invalid lastEventId"#),
            "{frame}"
        );
        assert!(frame.ends_with(r#""code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400,"path":"post.live"}}}"#), "{frame}");
    }

    #[test]
    fn stops_batches_and_keep_alives() {
        // trpc/subscription-stop.jsonl
        let ClientMessage::Stop(id) = one(r#"{"id":1,"method":"subscription.stop"}"#) else {
            panic!("not a stop")
        };
        assert_eq!(id.as_json(), "1");
        // trpc/batch.jsonl: one frame, two requests.
        let batch = decode(
            r#"[{"id":1,"method":"query","params":{"input":{"n":1},"path":"ping"}},{"id":2,"method":"query","params":{"input":{"n":2},"path":"ping"}}]"#,
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(decode("PING").unwrap(), [ClientMessage::Ping]);
        assert_eq!(decode("PONG").unwrap(), [ClientMessage::Pong]);
    }

    #[test]
    fn frames_it_cannot_read_get_the_reference_parse_errors() {
        let refused = |text: &str| decode(text).unwrap_err().frame();
        let parse_error = |message: &str| {
            alloc::format!(
                r#"{{"id":null,"error":{{"message":"{message}","code":-32700,"data":{{"code":"PARSE_ERROR","httpStatus":400}}}}}}"#
            )
        };
        // raw/trpc-not-object.jsonl
        assert_eq!(refused("[1,2]"), parse_error("Not an object"));
        assert_eq!(refused(r#""x""#), parse_error("Not an object"));
        // raw/trpc-unknown-method.jsonl
        assert_eq!(
            refused(r#"{"id":1,"method":"foo","params":{"path":"ping","input":{"n":1}}}"#),
            parse_error("Invalid procedure type")
        );
        // raw/trpc-id-string-jsonrpc.jsonl
        assert_eq!(
            refused(
                r#"{"id":"x","jsonrpc":"1.0","method":"query","params":{"path":"ping","input":{"n":1}}}"#
            ),
            parse_error("Must be JSONRPC 2.0")
        );
        // raw/trpc-id-null.jsonl: refused for that message only.
        assert_eq!(
            one(r#"{"id":null,"method":"query","params":{"path":"ping","input":{"n":1}}}"#),
            ClientMessage::Refused(parse_error("`id` is required"))
        );
        // raw/trpc-binary.jsonl
        assert_eq!(
            binary_refused(),
            parse_error("jsonEncoder received binary data. JSON uses text frames. Use a binary encoder for binary data.")
        );
        // Malformed JSON: the same shape; the message is the parser's own (V8's in the capture).
        assert!(refused("not json{").starts_with(r#"{"id":null,"error":{"message":""#));
        assert!(refused("not json{")
            .ends_with(r#""code":-32700,"data":{"code":"PARSE_ERROR","httpStatus":400}}}"#));
    }

    #[test]
    fn connection_params_are_the_first_frame() {
        // trpc/connection-params.jsonl
        let params = decode_connection_params(
            r#"{"method":"connectionParams","data":{"token":"secret-token","locale":"en"}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(params["token"], "secret-token");
        assert_eq!(
            decode_connection_params(r#"{"method":"connectionParams","data":null}"#),
            Ok(None)
        );
        // raw/trpc-connection-params-malformed.jsonl
        assert_eq!(
            decode_connection_params("not json{").unwrap_err().frame(),
            r#"{"id":null,"error":{"message":"Malformed TRPCConnectionParamsMessage","code":-32700,"data":{"code":"PARSE_ERROR","httpStatus":400}}}"#
        );
        assert_eq!(
            decode_connection_params(r#"{"method":"connectionParams","data":{"n":1}}"#)
                .unwrap_err()
                .message(),
            "Invalid connection params shape"
        );
    }

    #[test]
    fn errors_have_the_http_shape_with_the_request_id() {
        // trpc/error-4xx.jsonl, trpc/error-5xx.jsonl
        let id = request(r#"{"id":1,"method":"subscription","params":{"path":"failing"}}"#).id;
        assert_eq!(
            error(
                &id,
                &RpcError::new(ErrorCode::BAD_REQUEST, "nope"),
                "failing"
            ),
            r#"{"id":1,"error":{"message":"nope","code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400,"path":"failing"}}}"#
        );
        assert_eq!(
            error(
                &id,
                &RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, "boom"),
                "failing5xx"
            ),
            r#"{"id":1,"error":{"message":"boom","code":-32603,"data":{"code":"INTERNAL_SERVER_ERROR","httpStatus":500,"path":"failing5xx"}}}"#
        );
        // raw/trpc-subscription-error.jsonl: an error inside a started subscription, then stopped.
        let frames = subscription_frames(
            &id,
            "failing",
            Frame::Error(RpcError::new(ErrorCode::BAD_REQUEST, "nope")),
        );
        assert_eq!(
            frames,
            [
                r#"{"id":1,"error":{"message":"nope","code":-32600,"data":{"code":"BAD_REQUEST","httpStatus":400,"path":"failing"}}}"#,
                r#"{"id":1,"result":{"type":"stopped"}}"#,
            ]
        );
        // trpc/reconnect-notice.jsonl
        assert_eq!(RECONNECT, r#"{"id":null,"method":"reconnect"}"#);
    }
}
