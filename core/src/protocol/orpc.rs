//! oRPC's RPC protocol, versions 1 and 2, as pure functions.
//!
//! Requests: `POST {prefix}/post/live` with a `{"json": input, "meta": [...]}` envelope and the
//! resume id in `last-event-id`. Answers: the same envelope for values, `{"json": {defined,
//! code, status, message, data}}` for errors, and for streams an SSE body of `message`, `done`
//! and `error` events. The byte layout is in `shared/protocols/orpc.md`; this module does no I/O.
//!
//! oRPC 2 changed the wire in small ways that break either client against the other version's
//! server: its error bodies carry `inferable` instead of `status`, its streams end with `close`
//! instead of `done`, `undefined` is no data instead of `{}`, meta types are names instead of
//! numbers, and its server accepts `GET` behind a CSRF check. Requests of the two versions
//! cannot be told apart, so each version is served under its own prefix. The free functions
//! here speak version 1, as `@orpc/client` 1.x does; [`OrpcVersion`]'s methods speak the version
//! you pick. `tests/fixtures/reference/NOTES.md` lists every difference, with captures.

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

/// Which major version of oRPC's protocol is spoken: `@orpc/client` 1.x or 2.x.
///
/// ```
/// use outer_core::protocol::orpc::OrpcVersion;
/// use outer_core::RpcError;
///
/// let error = RpcError::custom("NOT_FOUND", "gone");
/// assert_eq!(
///     OrpcVersion::V1.error_body(&error),
///     r#"{"json":{"defined":false,"code":"NOT_FOUND","status":404,"message":"gone"}}"#
/// );
/// assert_eq!(
///     OrpcVersion::V2.error_body(&error),
///     r#"{"json":{"defined":false,"inferable":false,"code":"NOT_FOUND","message":"gone"}}"#
/// );
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OrpcVersion {
    /// oRPC 1 (`@orpc/client` and `@orpc/server` 1.16).
    #[default]
    V1,
    /// oRPC 2 (`@orpc/client` and `@orpc/server` 2.0.0-beta.16).
    V2,
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

/// Decodes a version 1 request ([`OrpcVersion::decode_request`]). `route` is the URL path under
/// the prefix (`/post/live`).
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
    OrpcVersion::V1.decode_request(head, route, body)
}

/// Refuses, with 415 `UNSUPPORTED_MEDIA_TYPE`, the bodies `@orpc/client` sends for files and
/// raw streams, which a procedure's serde input cannot take: `multipart/form-data` (an input
/// holding a `Blob`, in both versions) and oRPC 2's `standard-server` hints other than `json`
/// and `none` (a `Blob` or a stream as the whole input). Without this they would fail as JSON
/// that does not parse, which says less.
fn refuse_files(head: &RequestHead) -> Result<(), RpcError> {
    let multipart = head.header("content-type").is_some_and(|kind| {
        let mime = kind.split(';').next().unwrap_or_default().trim();
        mime.eq_ignore_ascii_case("multipart/form-data")
    });
    let hint = head.header("standard-server").filter(|hint| {
        !["json", "none"]
            .iter()
            .any(|ok| hint.eq_ignore_ascii_case(ok))
    });
    if !multipart && hint.is_none() {
        return Ok(());
    }
    let sent = match hint {
        Some(hint) => format!("standard-server: {hint}"),
        None => "multipart/form-data".into(),
    };
    Err(RpcError::new(
        ErrorCode::UNSUPPORTED_MEDIA_TYPE,
        format!("Inputs are JSON here: files and streams ({sent}) are not supported"),
    ))
}

/// The message oRPC 2's CSRF guard answers with.
pub const CSRF_BLOCKED: &str = "Request blocked by CSRF protection.";

impl OrpcVersion {
    /// Decodes a request. `route` is the URL path under the prefix (`/post/live`).
    ///
    /// Version 1 takes `POST` only (405 `METHOD_NOT_SUPPORTED` otherwise, as oRPC 1 answers a
    /// procedure that did not opt in to `GET`). Version 2 also takes `GET` with the envelope in
    /// `?data=`, as oRPC 2's server does for every procedure, and first refuses what a browser
    /// marks as not made by script (`sec-fetch-mode` present and neither `cors` nor
    /// `same-origin`: a form post, an `<img>`, a navigation) with 403 `FORBIDDEN`, oRPC 2's CSRF
    /// guard.
    ///
    /// ```
    /// use outer_core::protocol::orpc::OrpcVersion;
    /// use outer_core::RequestHead;
    ///
    /// let mut head = RequestHead::new("GET", "/rpc/ping");
    /// head.query = "data=%7B%22json%22%3A%7B%22n%22%3A1%7D%7D".into();
    /// let call = OrpcVersion::V2.decode_request(&head, "/ping", b"").unwrap();
    /// assert_eq!(call.input, Some(serde_json::json!({"n": 1})));
    /// assert_eq!(OrpcVersion::V1.decode_request(&head, "/ping", b"").unwrap_err().status(), 405);
    ///
    /// let head = RequestHead::new("POST", "/rpc/ping").with_header("sec-fetch-mode", "no-cors");
    /// assert_eq!(OrpcVersion::V2.decode_request(&head, "/ping", b"").unwrap_err().status(), 403);
    /// ```
    pub fn decode_request(
        self,
        head: &RequestHead,
        route: &str,
        body: &[u8],
    ) -> Result<OrpcCall, RpcError> {
        let path =
            procedure_path(route).ok_or_else(|| RpcError::from_code(ErrorCode::NOT_FOUND))?;
        let get = head.method.eq_ignore_ascii_case("GET");
        match self {
            OrpcVersion::V1 if !head.method.eq_ignore_ascii_case("POST") => {
                // oRPC's own message; procedures cannot opt in to GET here.
                return Err(RpcError::from_code(ErrorCode::METHOD_NOT_SUPPORTED));
            }
            OrpcVersion::V1 => {}
            OrpcVersion::V2 => {
                let fetched_by_script = head.header("sec-fetch-mode").is_none_or(|mode| {
                    mode.eq_ignore_ascii_case("cors") || mode.eq_ignore_ascii_case("same-origin")
                });
                if !fetched_by_script {
                    return Err(RpcError::new(ErrorCode::FORBIDDEN, CSRF_BLOCKED));
                }
            }
        }
        refuse_files(head)?;
        let last_event_id = match head.header("last-event-id") {
            Some(id) => EventId::from_resume(id)
                .map_err(|err| malformed(format!("last-event-id: {err}")))?,
            None => None,
        };
        let input = if get && self == OrpcVersion::V2 {
            // The last `data` wins, as oRPC 2 reads it; none at all is no input.
            let data = form_urlencoded::parse(head.query.as_bytes())
                .filter(|(key, _)| key == "data")
                .last();
            match data {
                Some((_, envelope)) => self.decode_body(envelope.as_bytes())?,
                None => None,
            }
        } else {
            self.decode_body(body)?
        };
        Ok(OrpcCall {
            path,
            input,
            last_event_id,
        })
    }

    /// Decodes the `{"json", "meta"}` envelope; an empty body is no input.
    ///
    /// ```
    /// use outer_core::protocol::orpc::OrpcVersion;
    /// // A bigint: version 1 names the type 0, version 2 "bigint".
    /// let v1 = OrpcVersion::V1.decode_body(br#"{"json":{"n":"7"},"meta":[[0,"n"]]}"#);
    /// let v2 = OrpcVersion::V2.decode_body(br#"{"json":{"n":"7"},"meta":[["bigint","n"]]}"#);
    /// assert_eq!(v1.unwrap(), Some(serde_json::json!({"n": 7})));
    /// assert_eq!(v2.unwrap(), Some(serde_json::json!({"n": 7})));
    /// ```
    pub fn decode_body(self, body: &[u8]) -> Result<Option<Value>, RpcError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let envelope: Value = serde_json::from_slice(body)
            .map_err(|err| malformed(format!("the body is not JSON: {err}")))?;
        decode_envelope(envelope, self)
    }
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

/// Decodes a version 1 `{"json", "meta"}` envelope ([`OrpcVersion::decode_body`]); an empty
/// body is no input.
pub fn decode_body(body: &[u8]) -> Result<Option<Value>, RpcError> {
    OrpcVersion::V1.decode_body(body)
}

/// Decodes the `{"json", "meta"}` envelope, already parsed (a WebSocket message's body).
pub(crate) fn decode_envelope(
    envelope: Value,
    version: OrpcVersion,
) -> Result<Option<Value>, RpcError> {
    let Value::Object(mut envelope) = envelope else {
        return Err(malformed("the body must be an object {\"json\", \"meta\"}"));
    };
    let mut input = envelope.remove("json");
    match envelope.remove("meta") {
        None | Some(Value::Null) => {}
        Some(Value::Array(entries)) => {
            for entry in entries {
                apply_meta(&mut input, entry, version)?;
            }
        }
        Some(_) => return Err(malformed("meta must be an array")),
    }
    Ok(input)
}

/// The values JSON cannot carry, as oRPC's serializer marks them in `meta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MetaType {
    BigInt,
    Date,
    NaN,
    Undefined,
    Url,
    RegExp,
    Set,
    Map,
}

impl MetaType {
    /// Version 1 numbers the types (`@orpc/client` 1.x's serializer), version 2 names them.
    fn read(kind: &Value, version: OrpcVersion) -> Option<Self> {
        const ORDER: [MetaType; 8] = [
            MetaType::BigInt,
            MetaType::Date,
            MetaType::NaN,
            MetaType::Undefined,
            MetaType::Url,
            MetaType::RegExp,
            MetaType::Set,
            MetaType::Map,
        ];
        const NAMES: [&str; 8] = [
            "bigint",
            "date",
            "nan",
            "undefined",
            "url",
            "regexp",
            "set",
            "map",
        ];
        let index = match version {
            OrpcVersion::V1 => usize::try_from(kind.as_u64()?).ok()?,
            OrpcVersion::V2 => NAMES.iter().position(|name| kind.as_str() == Some(name))?,
        };
        ORDER.get(index).copied()
    }
}

/// Applies one `[type, ...path]` meta entry to the input. Supported: bigint (to a JSON number
/// when it fits 64 bits), undefined (the key removed), and Date, URL, Set, Map and RegExp (kept
/// in the JSON form the client sent). NaN has no JSON form a Rust type could read back, and an
/// unknown type no meaning: both are refused with 400.
fn apply_meta(
    input: &mut Option<Value>,
    entry: Value,
    version: OrpcVersion,
) -> Result<(), RpcError> {
    let bad = |why: &str| malformed(format!("meta entry: {why}"));
    let Value::Array(mut entry) = entry else {
        return Err(bad("expected [type, ...path]"));
    };
    if entry.is_empty() {
        return Err(bad("expected [type, ...path]"));
    }
    let kind = entry.remove(0);
    let path = entry;
    let Some(kind) = MetaType::read(&kind, version) else {
        return Err(match version {
            OrpcVersion::V1 if !kind.is_u64() => bad("the type must be a number"),
            OrpcVersion::V1 => {
                RpcError::new(ErrorCode::BAD_REQUEST, format!("Unknown meta type {kind}"))
            }
            // oRPC 2 calls the named type's decoder, so an unknown name is a malformed request.
            OrpcVersion::V2 => bad(&format!("unknown type {kind}")),
        });
    };
    if kind == MetaType::Undefined {
        return remove_at(input, &path).ok_or_else(|| bad("path not found in json"));
    }
    let target = walk(input.as_mut(), &path).ok_or_else(|| bad("path not found in json"))?;
    match kind {
        MetaType::BigInt => {
            let text = target
                .as_str()
                .ok_or_else(|| bad("a bigint must be a string"))?;
            let number = if let Ok(n) = text.parse::<i64>() {
                Value::from(n)
            } else if let Ok(n) = text.parse::<u64>() {
                Value::from(n)
            } else if is_integer(text) {
                return Err(bad("a bigint outside 64 bits is not supported"));
            } else {
                // What `BigInt(text)` throws on: a malformed request to oRPC too.
                return Err(bad("a bigint must be a decimal integer"));
            };
            *target = number;
            Ok(())
        }
        // Kept in their JSON form: an ISO string, a URL string, an array, an array of
        // [key, value] pairs, a `/source/flags` string. Rust types read those as they are.
        MetaType::Date | MetaType::Url | MetaType::Set | MetaType::Map | MetaType::RegExp => Ok(()),
        MetaType::NaN => Err(RpcError::new(
            ErrorCode::BAD_REQUEST,
            "Unsupported meta type NaN: it has no JSON form",
        )),
        MetaType::Undefined => Ok(()),
    }
}

/// Whether `text` is a decimal integer, however long: a sign, then digits.
fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
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

/// The JSON body of a version 1 error ([`OrpcVersion::error_body`]).
pub fn error_body(error: &RpcError) -> String {
    OrpcVersion::V1.error_body(error)
}

/// A value in version 1's `{"json": ...}` envelope ([`OrpcVersion::value_body`]).
pub fn value_body(json: &Json) -> String {
    value_parts(json).concat()
}

/// Writes a value as the event's data, straight into the stream's text: version 1's `{}` or
/// nothing at all for version 2's `undefined` (see [`OrpcVersion::value_parts`]).
fn write_value<'a, B: SseBuf + ?Sized>(
    writer: EventWriter<'a, B>,
    json: &RawValue,
    version: OrpcVersion,
) -> EventWriter<'a, B> {
    match version.value_parts(json) {
        Some(parts) => writer.data_parts(&parts),
        None => writer,
    }
}

/// The pieces of version 1's [`value_body`]: the envelope around the JSON, or `{}` for `null`.
pub(crate) fn value_parts(json: &RawValue) -> [&str; 3] {
    match json.get() {
        "null" => ["{}", "", ""],
        body => ["{\"json\":", body, "}"],
    }
}

/// The response for a version 1 error: its status and the error body.
pub fn error_response(error: &RpcError) -> HttpResponse {
    OrpcVersion::V1.error_response(error)
}

/// Answers one version 1 request ([`OrpcVersion::handle`]).
pub async fn handle<Ctx>(
    app: &App<Ctx>,
    head: RequestHead,
    route: &str,
    body: &[u8],
    options: &OrpcOptions,
    timer: Option<Arc<dyn Timer>>,
) -> HttpResponse {
    (OrpcVersion::V1.handle(app, head, route, body, options, timer)).await
}

/// [`handle`], telling `observe` how the call was answered ([`OrpcVersion::handle_observed`]).
pub async fn handle_observed<Ctx>(
    app: &App<Ctx>,
    head: RequestHead,
    route: &str,
    body: &[u8],
    options: &OrpcOptions,
    timer: Option<Arc<dyn Timer>>,
    observe: &mut (dyn FnMut(Answered<'_>) + Send),
) -> HttpResponse {
    OrpcVersion::V1
        .handle_observed(app, head, route, body, options, timer, observe)
        .await
}

impl OrpcVersion {
    /// The JSON body of an error, fields in the reference servers' order. Version 1:
    /// `{"json": {"defined", "code", "status", "message", "data"?}}`. Version 2:
    /// `{"json": {"defined", "inferable", "code", "message", "data"?}}`, where `inferable`
    /// (the client may type the error from the procedure's declaration) is true for declared
    /// errors, and the status travels only as the HTTP status.
    pub fn error_body(self, error: &RpcError) -> String {
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            defined: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            inferable: Option<bool>,
            code: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: Option<u16>,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a Value>,
        }
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            json: Wire<'a>,
        }
        let (inferable, status) = match self {
            OrpcVersion::V1 => (None, Some(error.status())),
            OrpcVersion::V2 => (Some(error.is_defined()), None),
        };
        let envelope = Envelope {
            json: Wire {
                defined: error.is_defined(),
                inferable,
                code: error.code(),
                status,
                message: error.message(),
                data: error.data(),
            },
        };
        // Strings, numbers and an existing JSON value always serialize.
        serde_json::to_string(&envelope).unwrap_or_default()
    }

    /// The response for an error: its status and the error body.
    pub fn error_response(self, error: &RpcError) -> HttpResponse {
        HttpResponse::json(error.status(), self.error_body(error))
    }

    /// A value in the `{"json": ...}` envelope, without parsing it again. `null` (what `()`
    /// and `None` serialize to) is written as oRPC writes JavaScript's `undefined`: `{}` in
    /// version 1, nothing at all (an empty string) in version 2.
    ///
    /// ```
    /// use outer_core::protocol::orpc::OrpcVersion;
    /// use serde_json::value::RawValue;
    /// let unit = RawValue::from_string("null".into()).unwrap();
    /// assert_eq!(OrpcVersion::V1.value_body(&unit), "{}");
    /// assert_eq!(OrpcVersion::V2.value_body(&unit), "");
    /// let n = RawValue::from_string("1".into()).unwrap();
    /// assert_eq!(OrpcVersion::V2.value_body(&n), r#"{"json":1}"#);
    /// ```
    pub fn value_body(self, json: &Json) -> String {
        self.value_parts(json)
            .map(|parts| parts.concat())
            .unwrap_or_default()
    }

    /// The pieces [`value_body`](Self::value_body) joins; `None` for version 2's `undefined`.
    fn value_parts(self, json: &RawValue) -> Option<[&str; 3]> {
        match (self, json.get()) {
            (OrpcVersion::V2, "null") => None,
            _ => Some(value_parts(json)),
        }
    }

    /// The answer to a unary call: 200 and the value's body. Version 2 answers `undefined`
    /// with no body and no `content-type`, as oRPC 2 does.
    fn value_response(self, json: &Json) -> HttpResponse {
        match self.value_parts(json) {
            Some(parts) => HttpResponse::json(200, parts.concat()),
            None => HttpResponse {
                status: 200,
                headers: alloc::vec![],
                body: Body::Full(alloc::vec![]),
            },
        }
    }

    /// Answers one oRPC request: decodes it, builds the context, calls the procedure, and
    /// encodes the answer. Unary calls are awaited; a stream comes back once its setup is done,
    /// as an [`SseBody`] the adapter writes. Whatever refused the call before that (the
    /// context, a middleware, the input, the setup) answers with its own status and an error
    /// body.
    pub async fn handle<Ctx>(
        self,
        app: &App<Ctx>,
        head: RequestHead,
        route: &str,
        body: &[u8],
        options: &OrpcOptions,
        timer: Option<Arc<dyn Timer>>,
    ) -> HttpResponse {
        self.handle_observed(app, head, route, body, options, timer, &mut |_| {})
            .await
    }

    /// [`handle`](Self::handle), telling `observe` how the call was answered (once per
    /// request): for an adapter's metrics.
    #[allow(clippy::too_many_arguments)]
    pub async fn handle_observed<Ctx>(
        self,
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
            self.error_response(&error)
        };
        let call = match self.decode_request(&head, route, body) {
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
            Err(error) => self.error_response(&error),
            Ok(Reply::Value(json)) => self.value_response(&json),
            Ok(Reply::Stream(frames)) => HttpResponse {
                status: 200,
                headers: alloc::vec![
                    ("content-type", Cow::Borrowed("text/event-stream")),
                    ("cache-control", Cow::Borrowed("no-cache")),
                ],
                body: Body::Events(SseBody::new(
                    frames,
                    OrpcFraming::new(self),
                    &options.timing,
                    timer,
                )),
            },
        }
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

/// Writes oRPC's event stream: an initial comment, then `message` events and an end: `done`
/// (version 1) or `close` (version 2) for a return value, `error` for a failure.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrpcFraming {
    version: OrpcVersion,
}

impl OrpcFraming {
    /// The framing of `version` (`default()` is version 1's).
    pub const fn new(version: OrpcVersion) -> Self {
        Self { version }
    }
}

impl Framing for OrpcFraming {
    fn open(&mut self, out: &mut Chunk) {
        out.push_str(": \n\n");
    }

    fn frame(&mut self, frame: Frame, out: &mut Chunk) {
        let version = self.version;
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
                write_value(writer, &data, version).finish()
            }
            // Version 2's `undefined` (no data line) is the one event whose bytes differ between
            // the versions; it is written for this stream alone.
            Frame::Shared(event) if version.value_parts(event.data()).is_none() => {
                let mut writer = EventWriter::new(out).event("message");
                if let Some(id) = event.id() {
                    writer = writer.id(id.as_str());
                }
                writer.finish()
            }
            // The same bytes as an `Event` with this data and id, written once for every stream
            // of either version.
            Frame::Shared(event) => {
                let mut written = Ok(());
                let bytes = event.encoded(Encoding::OrpcSse, |text| {
                    let mut writer = EventWriter::new(text).event("message");
                    if let Some(id) = event.id() {
                        writer = writer.id(id.as_str());
                    }
                    written = write_value(writer, event.data(), OrpcVersion::V1).finish();
                });
                out.push_shared(bytes);
                written
            }
            Frame::Done(value) => {
                let end = match version {
                    OrpcVersion::V1 => "done",
                    OrpcVersion::V2 => "close",
                };
                write_value(EventWriter::new(out).event(end), &value, version).finish()
            }
            Frame::Error(error) => EventWriter::new(out)
                .event("error")
                .data(&version.error_body(&error))
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

/// The text of a whole version 1 event stream for `frames` (no keep-alives): for tests and
/// tools ([`OrpcVersion::encode_frames`]).
pub fn encode_frames(frames: impl IntoIterator<Item = Frame>) -> String {
    OrpcVersion::V1.encode_frames(frames)
}

impl OrpcVersion {
    /// The text of a whole event stream for `frames` (no keep-alives): for tests and tools.
    ///
    /// ```
    /// use outer_core::procedure::Frame;
    /// use outer_core::protocol::orpc::OrpcVersion;
    /// use serde_json::value::RawValue;
    /// let end = || Frame::Done(RawValue::from_string("null".into()).unwrap());
    /// assert_eq!(OrpcVersion::V1.encode_frames([end()]), ": \n\nevent: done\ndata: {}\n\n");
    /// assert_eq!(OrpcVersion::V2.encode_frames([end()]), ": \n\nevent: close\n\n");
    /// ```
    pub fn encode_frames(self, frames: impl IntoIterator<Item = Frame>) -> String {
        let mut framing = OrpcFraming::new(self);
        let mut out = Chunk::new();
        framing.open(&mut out);
        for frame in frames {
            framing.frame(frame, &mut out);
        }
        out.into_string()
    }
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

/// The body of a version 1 call: the input in the `{"json": ...}` envelope (`{}` for no
/// input; [`OrpcVersion::encode_call`]).
///
/// ```
/// use outer_core::protocol::orpc::encode_call;
/// assert_eq!(encode_call(Some(&serde_json::json!({"n": 1}))), r#"{"json":{"n":1}}"#);
/// assert_eq!(encode_call(None), "{}");
/// ```
pub fn encode_call(input: Option<&Value>) -> String {
    OrpcVersion::V1.encode_call(input)
}

/// Reads a version 1 unary answer ([`OrpcVersion::decode_answer`]).
pub fn decode_answer(status: u16, body: &[u8]) -> Result<Value, RpcError> {
    OrpcVersion::V1.decode_answer(status, body)
}

/// Reads an error body of either version (`{"json": {code, status?, message, data?}}`); the
/// HTTP `status` stands in for a missing `status`, and anything else becomes an error named by
/// `status`.
pub fn decode_error(status: u16, body: &[u8]) -> RpcError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(|v| v.get("json")) {
        Some(json) => error_from_json(json, Some(status)),
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

/// An error from its JSON. Its status: the body's (version 1), else the HTTP status of a
/// unary answer, else (an `error` event of version 2) the code's own, 500 for a code not known.
fn error_from_json(json: &Value, http_status: Option<u16>) -> RpcError {
    let code = json
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("INTERNAL_SERVER_ERROR");
    let status = json
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .or(http_status);
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut error = RpcError::custom(code, message).defined(
        json.get("defined")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    );
    if let Some(status) = status {
        error = error.with_status(status);
    }
    if let Some(data) = json.get("data") {
        error = error.with_data(data.clone());
    }
    error
}

/// Reads one event of a version 1 stream ([`OrpcVersion::decode_event`]).
pub fn decode_event(event: &crate::sse::SseEvent) -> Result<Option<ClientFrame>, RpcError> {
    OrpcVersion::V1.decode_event(event)
}

impl OrpcVersion {
    /// The body of a call: the input in the `{"json": ...}` envelope. No input is `{}` in
    /// version 1 and no body at all in version 2 (send it without a `content-type`, as
    /// `@orpc/client` 2 does).
    ///
    /// ```
    /// use outer_core::protocol::orpc::OrpcVersion;
    /// assert_eq!(OrpcVersion::V1.encode_call(None), "{}");
    /// assert_eq!(OrpcVersion::V2.encode_call(None), "");
    /// ```
    pub fn encode_call(self, input: Option<&Value>) -> String {
        match (input, self) {
            (Some(input), _) => alloc::format!("{{\"json\":{input}}}"),
            (None, OrpcVersion::V1) => String::from("{}"),
            (None, OrpcVersion::V2) => String::new(),
        }
    }

    /// Reads a unary answer: the value for a 2xx status (`null` for no value), else the error
    /// it carries. A body that is not oRPC's shape becomes an error with the response's status,
    /// never a panic.
    pub fn decode_answer(self, status: u16, body: &[u8]) -> Result<Value, RpcError> {
        if (200..300).contains(&status) {
            return self
                .decode_body(body)
                .map(|value| value.unwrap_or(Value::Null));
        }
        Err(decode_error(status, body))
    }

    /// Reads one event of an oRPC stream. Events the version does not define are skipped
    /// (`Ok(None)`), as its client skips them: version 2 ends with `close` and knows no `done`.
    pub fn decode_event(
        self,
        event: &crate::sse::SseEvent,
    ) -> Result<Option<ClientFrame>, RpcError> {
        let envelope = || -> Result<Value, RpcError> {
            Ok(self
                .decode_body(event.data.as_bytes())?
                .unwrap_or(Value::Null))
        };
        let end = match self {
            OrpcVersion::V1 => "done",
            OrpcVersion::V2 => "close",
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
            name if name == end => Ok(Some(ClientFrame::Done(envelope()?))),
            "error" => {
                let value = envelope()?;
                Ok(Some(ClientFrame::Error(error_from_json(&value, None))))
            }
            _ => Ok(None),
        }
    }
}
