//! oRPC's RPC protocol (as `@orpc/client` 1.16 speaks it), as pure functions.
//!
//! Requests: `POST {prefix}/post/live` with a `{"json": input, "meta": [...]}` envelope and the
//! resume id in `last-event-id`. Answers: the same envelope for values, `{"json": {defined,
//! code, status, message, data}}` for errors, and for streams an SSE body of `message`, `done`
//! and `error` events. The byte layout is in `shared/protocols/orpc.md`; this module does no I/O.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use core::time::Duration;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Answer, Answered, Body, Chunk, Framing, HttpResponse, SseBody, StreamTiming};
use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;
use crate::head::RequestHead;
use crate::procedure::Encoding;
use crate::procedure::{Frame, Json, Reply};
use crate::router::App;
use crate::rt::Timer;
use crate::sse::{EventWriter, SseBuf};
use crate::sync::Arc;

/// How an oRPC endpoint behaves. The defaults are oRPC's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrpcOptions {
    /// Keep-alive and deadline of event streams. oRPC sends a keep-alive comment after 5 s of
    /// silence and has no deadline.
    pub timing: StreamTiming,
}

impl Default for OrpcOptions {
    fn default() -> Self {
        Self {
            timing: StreamTiming {
                keep_alive: Some(Duration::from_secs(5)),
                max_duration: None,
            },
        }
    }
}

/// A decoded oRPC request: which procedure, with what input, resuming after which id.
#[derive(Clone, Debug, PartialEq)]
pub struct OrpcCall {
    /// The dotted procedure path, e.g. `post.live`.
    pub path: String,
    /// The input, `None` when the body was empty (oRPC's `undefined`).
    pub input: Option<Value>,
    /// The `last-event-id` header, when sent.
    pub last_event_id: Option<EventId>,
}

/// The message oRPC answers a body it cannot read with; our reason goes in `data.reason`.
pub const MALFORMED: &str = "Malformed request. Ensure the request body is properly formatted and the 'Content-Type' header is set correctly.";

pub(crate) fn malformed(reason: impl Into<String>) -> RpcError {
    let reason: String = reason.into();
    RpcError::new(ErrorCode::BAD_REQUEST, MALFORMED)
        .with_data(serde_json::json!({ "reason": reason }))
}

/// Decodes a request. `route` is the URL path under the prefix (`/post/live`).
///
/// ```
/// use outer_core::protocol::orpc::decode_request;
/// use outer_core::RequestHead;
/// let head = RequestHead::new("POST", "/rpc/ping");
/// let call = decode_request(&head, "/ping", br#"{"json":{"n":1}}"#).unwrap();
/// assert_eq!(call.path, "ping");
/// assert_eq!(call.input, Some(serde_json::json!({"n": 1})));
/// ```
pub fn decode_request(head: &RequestHead, route: &str, body: &[u8]) -> Result<OrpcCall, RpcError> {
    let path = procedure_path(route).ok_or_else(|| RpcError::from_code(ErrorCode::NOT_FOUND))?;
    if !head.method.eq_ignore_ascii_case("POST") {
        // oRPC's own message; procedures cannot opt in to GET here.
        return Err(RpcError::from_code(ErrorCode::METHOD_NOT_SUPPORTED));
    }
    let last_event_id = match head.header("last-event-id") {
        Some(id) => {
            EventId::from_resume(id).map_err(|err| malformed(format!("last-event-id: {err}")))?
        }
        None => None,
    };
    Ok(OrpcCall {
        path,
        input: decode_body(body)?,
        last_event_id,
    })
}

/// Maps `/post/live` to `post.live`; `None` for a path no procedure can have.
pub(crate) fn procedure_path(route: &str) -> Option<String> {
    let route = route.strip_prefix('/').unwrap_or(route);
    if route.contains('.') {
        return None;
    }
    let path = route.replace('/', ".");
    crate::router::check_path(&path).ok().map(|()| path)
}

/// Decodes the `{"json", "meta"}` envelope; an empty body is no input.
pub fn decode_body(body: &[u8]) -> Result<Option<Value>, RpcError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let envelope: Value = serde_json::from_slice(body)
        .map_err(|err| malformed(format!("the body is not JSON: {err}")))?;
    decode_envelope(envelope)
}

/// Decodes the `{"json", "meta"}` envelope, already parsed (a WebSocket message's body).
pub(crate) fn decode_envelope(envelope: Value) -> Result<Option<Value>, RpcError> {
    let Value::Object(mut envelope) = envelope else {
        return Err(malformed("the body must be an object {\"json\", \"meta\"}"));
    };
    let mut input = envelope.remove("json");
    match envelope.remove("meta") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for entry in entries {
                apply_meta(&mut input, entry)?;
            }
        }
        Some(_) => return Err(malformed("meta must be an array")),
    }
    Ok(input)
}

/// oRPC's meta type codes for values JSON cannot carry (`@orpc/client`'s serializer).
mod meta_type {
    pub const BIGINT: u64 = 0;
    pub const DATE: u64 = 1;
    pub const NAN: u64 = 2;
    pub const UNDEFINED: u64 = 3;
    pub const URL: u64 = 4;
    pub const REGEXP: u64 = 5;
    pub const SET: u64 = 6;
    pub const MAP: u64 = 7;
}

/// Applies one `[type, ...path]` meta entry to the input. Supported: bigint (to a JSON number
/// when it fits 64 bits), undefined (the key removed), and Date, URL, Set, Map and RegExp (kept
/// in the JSON form the client sent). NaN has no JSON form a Rust type could read back, and an
/// unknown type no meaning: both are refused with 400.
fn apply_meta(input: &mut Option<Value>, entry: Value) -> Result<(), RpcError> {
    let bad = |why: &str| malformed(format!("meta entry: {why}"));
    let Value::Array(mut entry) = entry else {
        return Err(bad("expected [type, ...path]"));
    };
    if entry.is_empty() {
        return Err(bad("expected [type, ...path]"));
    }
    let kind = entry
        .remove(0)
        .as_u64()
        .ok_or_else(|| bad("the type must be a number"))?;
    let path = entry;
    if kind == meta_type::UNDEFINED {
        return remove_at(input, &path).ok_or_else(|| bad("path not found in json"));
    }
    let target = walk(input.as_mut(), &path).ok_or_else(|| bad("path not found in json"))?;
    match kind {
        meta_type::BIGINT => {
            let text = target
                .as_str()
                .ok_or_else(|| bad("a bigint must be a string"))?;
            let number = if let Ok(n) = text.parse::<i64>() {
                Value::from(n)
            } else if let Ok(n) = text.parse::<u64>() {
                Value::from(n)
            } else {
                return Err(bad("a bigint outside 64 bits is not supported"));
            };
            *target = number;
            Ok(())
        }
        // Kept in their JSON form: an ISO string, a URL string, an array, an array of
        // [key, value] pairs, a `/source/flags` string. Rust types read those as they are.
        meta_type::DATE | meta_type::URL | meta_type::SET | meta_type::MAP | meta_type::REGEXP => {
            Ok(())
        }
        meta_type::NAN => Err(RpcError::new(
            ErrorCode::BAD_REQUEST,
            format!("Unsupported meta type {kind} (NaN): it has no JSON form"),
        )),
        other => Err(RpcError::new(
            ErrorCode::BAD_REQUEST,
            format!("Unknown meta type {other}"),
        )),
    }
}

fn walk<'a>(mut value: Option<&'a mut Value>, path: &[Value]) -> Option<&'a mut Value> {
    for segment in path {
        value = match (value?, segment) {
            (Value::Object(map), Value::String(key)) => map.get_mut(key),
            (Value::Array(items), Value::Number(i)) => {
                items.get_mut(usize::try_from(i.as_u64()?).ok()?)
            }
            (Value::Array(items), Value::String(i)) => items.get_mut(i.parse::<usize>().ok()?),
            _ => None,
        };
    }
    value
}

fn remove_at(input: &mut Option<Value>, path: &[Value]) -> Option<()> {
    let Some((last, parent)) = path.split_last() else {
        *input = None;
        return Some(());
    };
    match (walk(input.as_mut(), parent)?, last) {
        (Value::Object(map), Value::String(key)) => {
            map.remove(key);
        }
        // An undefined array element reads as null, as JSON.stringify writes it.
        (Value::Array(items), Value::Number(i)) => {
            *items.get_mut(usize::try_from(i.as_u64()?).ok()?)? = Value::Null;
        }
        _ => return None,
    }
    Some(())
}

/// The JSON body of an error: `{"json": {"defined", "code", "status", "message", "data"?}}`,
/// fields in the reference server's order.
pub fn error_body(error: &RpcError) -> String {
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        defined: bool,
        code: &'a str,
        status: u16,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<&'a Value>,
    }
    #[derive(serde::Serialize)]
    struct Envelope<'a> {
        json: Wire<'a>,
    }
    let envelope = Envelope {
        json: Wire {
            defined: error.is_defined(),
            code: error.code(),
            status: error.status(),
            message: error.message(),
            data: error.data(),
        },
    };
    // Strings, numbers and an existing JSON value always serialize.
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// A value in the `{"json": ...}` envelope, without parsing it again. `null` (what `()` and
/// `None` serialize to) is written as oRPC writes JavaScript's `undefined`: `{}`.
pub fn value_body(json: &Json) -> String {
    value_parts(json).concat()
}

/// Writes [`value_body`]`(json)` as the event's data, straight into the stream's text.
fn write_value<'a, B: SseBuf + ?Sized>(
    writer: EventWriter<'a, B>,
    json: &RawValue,
) -> EventWriter<'a, B> {
    writer.data_parts(&value_parts(json))
}

/// The pieces [`value_body`] joins: the envelope around the JSON, or `{}` for `null`.
pub(crate) fn value_parts(json: &RawValue) -> [&str; 3] {
    match json.get() {
        "null" => ["{}", "", ""],
        body => ["{\"json\":", body, "}"],
    }
}

/// The response for an error: its status and the error body.
pub fn error_response(error: &RpcError) -> HttpResponse {
    HttpResponse::json(error.status(), error_body(error))
}

/// Answers one oRPC request: decodes it, builds the context, calls the procedure, and encodes
/// the answer. Unary calls are awaited; a stream comes back once its setup is done, as an
/// [`SseBody`] the adapter writes. Whatever refused the call before that (the context, a
/// middleware, the input, the setup) answers with its own status and an error body.
pub async fn handle<Ctx>(
    app: &App<Ctx>,
    head: RequestHead,
    route: &str,
    body: &[u8],
    options: &OrpcOptions,
    timer: Option<Arc<dyn Timer>>,
) -> HttpResponse {
    handle_observed(app, head, route, body, options, timer, &mut |_| {}).await
}

/// [`handle`], telling `observe` how the call was answered (once per request): for an
/// adapter's metrics.
pub async fn handle_observed<Ctx>(
    app: &App<Ctx>,
    head: RequestHead,
    route: &str,
    body: &[u8],
    options: &OrpcOptions,
    timer: Option<Arc<dyn Timer>>,
    observe: &mut (dyn FnMut(Answered<'_>) + Send),
) -> HttpResponse {
    let refused = |observe: &mut (dyn FnMut(Answered<'_>) + Send), error: RpcError| {
        observe(Answered {
            procedure: None,
            resumed: false,
            answer: Answer::Error(&error),
        });
        error_response(&error)
    };
    let call = match decode_request(&head, route, body) {
        Ok(call) => call,
        Err(error) => return refused(observe, error),
    };
    if app.router().get(&call.path).is_none() {
        return refused(observe, RpcError::from_code(ErrorCode::NOT_FOUND));
    }
    let resumed = call.last_event_id.is_some();
    let answered = app
        .call(head, &call.path, call.input, call.last_event_id)
        .await;
    let answer = match &answered {
        Err(error) => Answer::Error(error),
        Ok(Reply::Value(_)) => Answer::Value,
        Ok(Reply::Stream(_)) => Answer::Stream,
    };
    observe(Answered {
        procedure: Some(&call.path),
        resumed,
        answer,
    });
    match answered {
        Err(error) => error_response(&error),
        Ok(Reply::Value(json)) => HttpResponse::json(200, value_body(&json)),
        Ok(Reply::Stream(frames)) => HttpResponse {
            status: 200,
            headers: alloc::vec![
                ("content-type", Cow::Borrowed("text/event-stream")),
                ("cache-control", Cow::Borrowed("no-cache")),
            ],
            body: Body::Events(SseBody::new(frames, OrpcFraming, &options.timing, timer)),
        },
    }
}

/// The error that ends a stream cut short by the server (deadline or shutdown), over SSE and over
/// WebSocket alike: a retryable 503, since oRPC's client takes a clean end for a finished stream
/// and its retry plugin calls again, with the last event id, on an error.
pub fn interruption() -> RpcError {
    RpcError::new(
        ErrorCode::SERVICE_UNAVAILABLE,
        "The stream was interrupted by the server: reconnect to resume",
    )
}

/// Writes oRPC's event stream: an initial comment, then `message`, `done` and `error` events.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrpcFraming;

impl Framing for OrpcFraming {
    fn open(&mut self, out: &mut Chunk) {
        out.push_str(": \n\n");
    }

    fn frame(&mut self, frame: Frame, out: &mut Chunk) {
        // Ids and comments were checked for CR, LF and NUL when the event was built, so the
        // writer has nothing left to refuse.
        let written = match frame {
            Frame::Event(event) => {
                let (data, meta) = event.into_parts();
                let mut writer = EventWriter::new(out);
                for comment in meta.comments() {
                    writer = writer.comment(comment);
                }
                writer = writer.event("message");
                if let Some(retry) = meta.retry() {
                    writer = writer.retry(retry);
                }
                if let Some(id) = meta.id() {
                    writer = writer.id(id.as_str());
                }
                write_value(writer, &data).finish()
            }
            // The same bytes as an `Event` with this data and id, written once for every stream.
            Frame::Shared(event) => {
                let mut written = Ok(());
                let bytes = event.encoded(Encoding::OrpcSse, |text| {
                    let mut writer = EventWriter::new(text).event("message");
                    if let Some(id) = event.id() {
                        writer = writer.id(id.as_str());
                    }
                    written = write_value(writer, event.data()).finish();
                });
                out.push_shared(bytes);
                written
            }
            Frame::Done(value) => write_value(EventWriter::new(out).event("done"), &value).finish(),
            Frame::Error(error) => EventWriter::new(out)
                .event("error")
                .data(&error_body(&error))
                .finish(),
        };
        debug_assert!(
            written.is_ok(),
            "validated fields were refused: {written:?}"
        );
    }

    fn keep_alive(&mut self, out: &mut Chunk) {
        out.push_str(": \n\n");
    }

    /// oRPC's client (and its retry plugin) takes a clean end without `done` for a finished
    /// stream, so an interrupted stream says so with a retryable error: with `ClientRetryPlugin`
    /// the client reconnects and resumes after its last id.
    fn interrupted(&mut self, out: &mut Chunk) {
        self.frame(Frame::Error(interruption()), out);
    }
}

/// The text of a whole event stream for `frames` (no keep-alives): for tests and tools.
pub fn encode_frames(frames: impl IntoIterator<Item = Frame>) -> String {
    let mut framing = OrpcFraming;
    let mut out = Chunk::new();
    framing.open(&mut out);
    for frame in frames {
        framing.frame(frame, &mut out);
    }
    out.into_string()
}

/// What a client reads from an oRPC event stream.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientFrame {
    /// A `message` event: the value with its id, retry and comments.
    Message(crate::Event<Value>),
    /// `done`: the procedure returned this value (`null` when it returned nothing).
    Done(Value),
    /// `error`: the procedure failed.
    Error(RpcError),
}

/// The body of a call: the input in the `{"json": ...}` envelope (`{}` for no input).
///
/// ```
/// use outer_core::protocol::orpc::encode_call;
/// assert_eq!(encode_call(Some(&serde_json::json!({"n": 1}))), r#"{"json":{"n":1}}"#);
/// assert_eq!(encode_call(None), "{}");
/// ```
pub fn encode_call(input: Option<&Value>) -> String {
    match input {
        Some(input) => alloc::format!("{{\"json\":{input}}}"),
        None => String::from("{}"),
    }
}

/// Reads a unary answer: the value for a 2xx status, else the error it carries. A body that is
/// not oRPC's shape becomes an error with the response's status, never a panic.
pub fn decode_answer(status: u16, body: &[u8]) -> Result<Value, RpcError> {
    if (200..300).contains(&status) {
        return decode_body(body).map(|value| value.unwrap_or(Value::Null));
    }
    Err(decode_error(status, body))
}

/// Reads an error body (`{"json": {code, status, message, data}}`); anything else becomes an
/// error named by `status`.
pub fn decode_error(status: u16, body: &[u8]) -> RpcError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("json")) {
        Some(json) => error_from_json(json, status),
        None => {
            let code = ErrorCode::ALL
                .iter()
                .find(|c| c.status == status)
                .copied()
                .unwrap_or(ErrorCode::INTERNAL_SERVER_ERROR);
            RpcError::new(
                code,
                alloc::format!("HTTP {status} without an oRPC error body"),
            )
            .with_status(status)
        }
    }
}

fn error_from_json(json: &Value, fallback_status: u16) -> RpcError {
    let code = json
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("INTERNAL_SERVER_ERROR");
    let status = json
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(fallback_status);
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut error = RpcError::custom(code, message).with_status(status).defined(
        json.get("defined")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    if let Some(data) = json.get("data") {
        error = error.with_data(data.clone());
    }
    error
}

/// Reads one event of an oRPC stream. Events of other types are not oRPC's: `Ok(None)`.
pub fn decode_event(event: &crate::sse::SseEvent) -> Result<Option<ClientFrame>, RpcError> {
    let envelope = || -> Result<Value, RpcError> {
        Ok(decode_body(event.data.as_bytes())?.unwrap_or(Value::Null))
    };
    match event.event.as_str() {
        "message" => {
            let mut message = crate::Event::new(envelope()?);
            if let Some(id) = &event.id {
                message
                    .meta_mut()
                    .set_id(id.as_str())
                    .map_err(RpcError::from)?;
            }
            if let Some(retry) = event.retry {
                message.meta_mut().set_retry(retry);
            }
            Ok(Some(ClientFrame::Message(message)))
        }
        "done" => Ok(Some(ClientFrame::Done(envelope()?))),
        "error" => {
            let value = envelope()?;
            Ok(Some(ClientFrame::Error(error_from_json(&value, 500))))
        }
        _ => Ok(None),
    }
}
