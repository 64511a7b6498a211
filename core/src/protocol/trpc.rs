//! tRPC v11's HTTP protocol (as `@trpc/client` 11.25 speaks it), as pure functions.
//!
//! Queries are `GET {base}/ping?input=<json>`, mutations `POST {base}/post.create` with the raw
//! JSON input as the body, batches `{base}/a,b?batch=1` with inputs keyed by position, and
//! subscriptions `GET {base}/post.live?input=..` answered as SSE (`connected`, data with `id:`,
//! `ping`, `return`, `serialized-error`). Byte layout: `shared/protocols/trpc.md`. No I/O here.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::{Answer, Answered, Body, Chunk, Framing, HttpResponse, SseBody, StreamTiming};
use crate::error::{ErrorCode, RpcError};
use crate::event::EventId;
use crate::head::RequestHead;
use crate::procedure::{error_stream, Encoding, Frame, Reply, SharedEvent};
use crate::router::App;
use crate::rt::Timer;
use crate::sse::{EncodeError, EventWriter, SseBuf};
use crate::sync::Arc;
use crate::ProcedureKind;

/// How a tRPC endpoint behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrpcOptions {
    /// Send an `event: ping` after this long without an event (tRPC's `sse.ping`). Default:
    /// every 5 s, so proxies keep the stream open; tRPC's own default is off.
    pub ping: Option<Duration>,
    /// End each subscription after this long (tRPC's `sse.maxDurationMs`), without `return`, so
    /// the client reconnects and resumes. Default: never.
    pub max_duration: Option<Duration>,
    /// Tell clients to reconnect when neither an event nor a ping arrived for this long (tRPC's
    /// `sse.client.reconnectAfterInactivityMs`, sent in the `connected` event). Default: unset.
    pub reconnect_after_inactivity: Option<Duration>,
}

impl Default for TrpcOptions {
    fn default() -> Self {
        Self {
            ping: Some(Duration::from_secs(5)),
            max_duration: None,
            reconnect_after_inactivity: None,
        }
    }
}

impl TrpcOptions {
    /// The `connected` event's data: the options the client should use.
    pub fn client_config(&self) -> String {
        match self.reconnect_after_inactivity {
            Some(after) => format!("{{\"reconnectAfterInactivityMs\":{}}}", after.as_millis()),
            None => String::from("{}"),
        }
    }
}

/// One call of a (possibly batched) tRPC request.
#[derive(Clone, Debug, PartialEq)]
pub struct TrpcCall {
    /// The dotted procedure path.
    pub path: String,
    /// The input, `None` when absent.
    pub input: Option<Value>,
}

/// A decoded tRPC request.
#[derive(Clone, Debug, PartialEq)]
pub struct TrpcRequest {
    /// `?batch=1`: the answer is an array, one entry per call.
    pub batch: bool,
    /// The calls, in order.
    pub calls: Vec<TrpcCall>,
    /// `GET` or `POST`.
    pub method: Method,
    /// The resume id from the `Last-Event-ID` header, else the `lastEventId` query parameter,
    /// else `Last-Event-Id`: the first one sent and not empty (see [`EventId::from_resume`]).
    pub last_event_id: Option<EventId>,
}

/// The two methods tRPC uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Queries and subscriptions.
    Get,
    /// Mutations.
    Post,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request that failed before any procedure was looked up, with the path to report.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    /// The error.
    pub error: RpcError,
    /// The procedure path, when known.
    pub path: Option<String>,
}

/// The most calls one batch may hold: each costs a task and an answer slot.
pub const MAX_BATCH: usize = 64;

/// Decodes a tRPC request. `route` is the URL path under the base (`/ping,ping`), `query` the
/// URL query without `?`.
///
/// ```
/// use outer_core::protocol::trpc::decode_request;
/// use outer_core::RequestHead;
/// let head = RequestHead::new("GET", "/trpc/ping,ping");
/// let req = decode_request(&head, "/ping,ping", "batch=1&input=%7B%220%22%3A%7B%22n%22%3A1%7D%7D", b"").unwrap();
/// assert!(req.batch);
/// assert_eq!(req.calls[0].input, Some(serde_json::json!({"n": 1})));
/// assert_eq!(req.calls[1].input, None);
/// ```
pub fn decode_request(
    head: &RequestHead,
    route: &str,
    query: &str,
    body: &[u8],
) -> Result<TrpcRequest, RequestError> {
    let route = route.strip_prefix('/').unwrap_or(route);
    let route: String = percent_decode(route);
    let whole_path = Some(route.clone());
    let fail = |error: RpcError| RequestError {
        error,
        path: whole_path.clone(),
    };
    let method = if head.method.eq_ignore_ascii_case("GET") {
        Method::Get
    } else if head.method.eq_ignore_ascii_case("POST") {
        Method::Post
    } else {
        return Err(fail(RpcError::new(
            ErrorCode::METHOD_NOT_SUPPORTED,
            format!("Unsupported {}-request", head.method),
        )));
    };
    let mut batch = false;
    let mut query_input = None;
    let mut last_event_id = None;
    let mut lower_last_event_id = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "batch" => batch = value == "1" || value == "true",
            "input" => query_input = Some(value.into_owned()),
            "lastEventId" => last_event_id = Some(value.into_owned()),
            "Last-Event-Id" => lower_last_event_id = Some(value.into_owned()),
            _ => {}
        }
    }
    // An empty id is no id (`EventId::from_resume`): the next place may still hold one.
    let last_event_id = [
        head.header("last-event-id"),
        last_event_id.as_deref(),
        lower_last_event_id.as_deref(),
    ]
    .into_iter()
    .flatten()
    .find(|id| !id.is_empty())
    .map(resume_id)
    .transpose()
    .map_err(&fail)?;
    let raw_input: Option<Value> = match method {
        Method::Get => match query_input {
            Some(text) => Some(parse_json(text.as_bytes()).map_err(&fail)?),
            None => None,
        },
        Method::Post => {
            match head.header("content-type") {
                None => {
                    return Err(RequestError {
                        error: RpcError::new(
                            ErrorCode::UNSUPPORTED_MEDIA_TYPE,
                            "Missing content-type header",
                        ),
                        path: None,
                    })
                }
                Some(kind) if !is_json(kind) => {
                    return Err(RequestError {
                        error: RpcError::new(
                            ErrorCode::UNSUPPORTED_MEDIA_TYPE,
                            format!("Unsupported content-type \"{kind}\""),
                        ),
                        path: None,
                    })
                }
                Some(_) => {}
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(parse_json(body).map_err(&fail)?)
            }
        }
    };
    let paths: Vec<&str> = if batch {
        route.split(',').collect()
    } else {
        alloc::vec![route.as_str()]
    };
    if paths.len() > MAX_BATCH {
        return Err(fail(RpcError::new(
            ErrorCode::PAYLOAD_TOO_LARGE,
            format!("A batch may hold at most {MAX_BATCH} calls"),
        )));
    }
    let calls = if batch {
        let mut inputs = match raw_input {
            None => serde_json::Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(fail(RpcError::new(
                    ErrorCode::BAD_REQUEST,
                    "A batch's input must be an object keyed by position",
                )))
            }
        };
        paths
            .iter()
            .enumerate()
            .map(|(i, path)| TrpcCall {
                path: String::from(*path),
                input: inputs.remove(&i.to_string()),
            })
            .collect()
    } else {
        alloc::vec![TrpcCall {
            path: route.clone(),
            input: raw_input,
        }]
    };
    Ok(TrpcRequest {
        batch,
        calls,
        method,
        last_event_id,
    })
}

/// A resume id, or the 400 a malformed one is answered with (oRPC answers the same).
fn resume_id(text: &str) -> Result<EventId, RpcError> {
    EventId::new(text).map_err(|err| {
        RpcError::new(
            ErrorCode::BAD_REQUEST,
            format!("Invalid lastEventId / Last-Event-ID: {err}"),
        )
    })
}

/// The JSON type of `value`, for messages (the value itself may be large).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"))
}

fn parse_json(text: &[u8]) -> Result<Value, RpcError> {
    serde_json::from_slice(text)
        .map_err(|err| RpcError::new(ErrorCode::BAD_REQUEST, err.to_string()))
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

fn validation_message(error: &RpcError) -> Option<String> {
    if error.code() != ErrorCode::BAD_REQUEST.name {
        return None;
    }
    let issues = error.data()?.get("issues")?;
    serde_json::to_string_pretty(issues).ok()
}

/// Writes tRPC's error shape, `{"message", "code": <JSON-RPC>, "data": {"code", "httpStatus",
/// "path"?}}`, in tRPC's key order (a serde_json map would sort the keys). An input validation
/// error's message is its issues as indented JSON, as zod's is.
pub(super) fn write_error_shape(error: &RpcError, path: Option<&str>, out: &mut String) {
    let message = validation_message(error).unwrap_or_else(|| error.message().into());
    #[derive(Serialize)]
    struct Data<'a> {
        code: &'a str,
        #[serde(rename = "httpStatus")]
        http_status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<&'a str>,
    }
    #[derive(Serialize)]
    struct Shape<'a> {
        message: &'a str,
        code: i32,
        data: Data<'a>,
    }
    let shape = Shape {
        message: &message,
        code: error.jsonrpc_code(),
        data: Data {
            code: error.code(),
            http_status: error.status(),
            path,
        },
    };
    // Strings and integers always serialize.
    out.push_str(&serde_json::to_string(&shape).unwrap_or_default());
}

fn error_envelope(error: &RpcError, path: Option<&str>) -> String {
    let mut out = String::from("{\"error\":");
    write_error_shape(error, path, &mut out);
    out.push('}');
    out
}

fn json_response(status: u16, body: String) -> HttpResponse {
    let mut response = HttpResponse::json(status, body);
    response
        .headers
        .push(("vary", Cow::Borrowed("trpc-accept, accept")));
    response
}

/// The answer to a request that failed before any call: status and `{"error": shape}`.
pub fn error_response(error: &RpcError, path: Option<&str>) -> HttpResponse {
    json_response(error.status(), error_envelope(error, path))
}

/// One call's outcome, before it is written.
enum Outcome {
    Data(crate::procedure::Json),
    Error(RpcError),
}

/// Answers one tRPC request: decodes it, runs the calls, and encodes the answers. Unary calls
/// are awaited; a subscription comes back once its setup is done, as an [`SseBody`]. The
/// context is built once per request, as tRPC's is: the calls of a batch share it (each gets a
/// clone), and a context that fails answers every call of the batch that reached a procedure
/// with its error.
pub async fn handle<Ctx: Clone>(
    app: &App<Ctx>,
    head: RequestHead,
    route: &str,
    query: &str,
    body: &[u8],
    options: &TrpcOptions,
    timer: Option<Arc<dyn Timer>>,
) -> HttpResponse {
    handle_observed(app, head, route, query, body, options, timer, &mut |_| {}).await
}

/// [`handle`], telling `observe` how each call of the request was answered: for an adapter's
/// metrics.
#[allow(clippy::too_many_arguments)] // handle's, and the observer
pub async fn handle_observed<Ctx: Clone>(
    app: &App<Ctx>,
    mut head: RequestHead,
    route: &str,
    query: &str,
    body: &[u8],
    options: &TrpcOptions,
    timer: Option<Arc<dyn Timer>>,
    observe: &mut (dyn FnMut(Answered<'_>) + Send),
) -> HttpResponse {
    match connection_params(query) {
        Ok(params) => head.connection_params = params,
        Err(error) => {
            observe(refusal(None, &error));
            return error_response(&error, None);
        }
    }
    let request = match decode_request(&head, route, query, body) {
        Ok(request) => request,
        Err(failure) => {
            observe(refusal(
                served(app, failure.path.as_deref()),
                &failure.error,
            ));
            return error_response(&failure.error, failure.path.as_deref());
        }
    };
    if !request.batch {
        let call = &request.calls[0];
        if let Some(procedure) = app.router().get(&call.path) {
            if procedure.kind() == ProcedureKind::Subscription {
                return subscribe(app, head, request, options, timer, observe).await;
            }
        }
    }
    let method = request.method;
    let mut outcomes = Vec::with_capacity(request.calls.len());
    let mut allow = None;
    // Built at the first call that reaches a procedure, then shared.
    let mut head = Some(head);
    let mut context: Option<Result<Ctx, RpcError>> = None;
    for call in request.calls {
        let outcome = match check_kind(app, &call.path, method) {
            Err((error, allowed)) => {
                allow = allowed;
                Outcome::Error(error)
            }
            Ok(()) => match call_once(app, &mut head, &mut context, &call.path, call.input).await {
                Err(error) => Outcome::Error(error),
                Ok(Reply::Value(json)) => Outcome::Data(json),
                // check_kind refused subscriptions already.
                Ok(Reply::Stream(_)) => {
                    Outcome::Error(RpcError::internal("a subscription answered a unary call"))
                }
            },
        };
        observe(Answered {
            procedure: served(app, Some(&call.path)),
            resumed: false,
            answer: match &outcome {
                Outcome::Data(_) => Answer::Value,
                Outcome::Error(error) => Answer::Error(error),
            },
        });
        outcomes.push((call.path, outcome));
    }
    let status = batch_status(outcomes.iter().map(|(_, o)| match o {
        Outcome::Data(_) => 200,
        Outcome::Error(e) => e.status(),
    }));
    let mut out = String::new();
    if request.batch {
        out.push('[');
    }
    for (i, (path, outcome)) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match outcome {
            // tRPC leaves out `data` for `undefined`, which is what `()` stands for.
            Outcome::Data(json) if json.get() == "null" => out.push_str("{\"result\":{}}"),
            Outcome::Data(json) => {
                out.push_str("{\"result\":{\"data\":");
                out.push_str(json.get());
                out.push_str("}}");
            }
            Outcome::Error(error) => out.push_str(&error_envelope(error, Some(path))),
        }
    }
    if request.batch {
        out.push(']');
    }
    let mut response = json_response(status, out);
    if let (Some(allowed), false) = (allow, request.batch) {
        response
            .headers
            .insert(0, ("allow", Cow::Borrowed(allowed)));
    }
    response
}

/// `path` if the router serves a procedure there: what a client makes up never becomes a name.
fn served<'p, Ctx>(app: &App<Ctx>, path: Option<&'p str>) -> Option<&'p str> {
    path.filter(|path| app.router().get(path).is_some())
}

/// A call refused before it reached a procedure's answer.
fn refusal<'a>(procedure: Option<&'a str>, error: &'a RpcError) -> Answered<'a> {
    Answered {
        procedure,
        resumed: false,
        answer: Answer::Error(error),
    }
}

/// Calls the procedure at `path` in the request's context, built at the first call that reaches
/// a procedure and shared by the rest. An unknown path is a 404 with no context built.
async fn call_once<Ctx: Clone>(
    app: &App<Ctx>,
    head: &mut Option<RequestHead>,
    context: &mut Option<Result<Ctx, RpcError>>,
    path: &str,
    input: Option<Value>,
) -> Result<Reply, RpcError> {
    if app.router().get(path).is_none() {
        return Err(crate::router::not_found(path));
    }
    if context.is_none() {
        let head = head.take().unwrap_or_default();
        *context = Some(app.context(head).await);
    }
    let ctx = match context {
        Some(Ok(ctx)) => ctx.clone(),
        Some(Err(error)) => return Err(error.clone()),
        None => return Err(RpcError::internal("no context")),
    };
    app.call_in(ctx, path, input, None).await
}

/// 200 when every call succeeded, the shared status when all failed alike, else 207.
fn batch_status(statuses: impl Iterator<Item = u16>) -> u16 {
    let mut first = None;
    let mut mixed = false;
    for status in statuses {
        match first {
            None => first = Some(status),
            Some(seen) if seen != status => mixed = true,
            Some(_) => {}
        }
    }
    if mixed {
        207
    } else {
        first.unwrap_or(200)
    }
}

/// Refuses a call made with the wrong method: 405 and the method to use.
fn check_kind<Ctx>(
    app: &App<Ctx>,
    path: &str,
    method: Method,
) -> Result<(), (RpcError, Option<&'static str>)> {
    let Some(procedure) = app.router().get(path) else {
        return Ok(()); // the call answers 404
    };
    let (kind, allowed) = match (procedure.kind(), method) {
        (ProcedureKind::Query, Method::Get) | (ProcedureKind::Mutation, Method::Post) => {
            return Ok(())
        }
        (ProcedureKind::Query, Method::Post) => ("query", "GET"),
        (ProcedureKind::Mutation, Method::Get) => ("mutation", "POST"),
        // Only reached inside a batch: a subscription is a stream of its own, never a batch's
        // entry. Saying so beats "unsupported GET-request", which reads as the wrong method.
        (ProcedureKind::Subscription, _) => {
            return Err((
                RpcError::new(
                    ErrorCode::BAD_REQUEST,
                    format!(
                        "Subscriptions cannot be batched: open \"{path}\" in a request of its \
                         own (GET without batch=1)"
                    ),
                ),
                None,
            ))
        }
    };
    Err((
        RpcError::new(
            ErrorCode::METHOD_NOT_SUPPORTED,
            format!(
                "Unsupported {}-request to {kind} procedure at path \"{path}\"",
                method.as_str()
            ),
        ),
        Some(allowed),
    ))
}

/// Answers a subscription as SSE, once its setup is done. A POST still answers 200 and
/// carries its error in the stream after `connected`, as tRPC does. Whatever else refuses the
/// call before the stream opens (the context, a middleware, the input, the setup) answers with
/// its own status and tRPC's error body, where tRPC's server would answer 200 and put the
/// error in the stream: a browser's `EventSource` fails at once on a non-200 and does not
/// reconnect, where after a 200 it would reconnect for ever into the same refusal.
async fn subscribe<Ctx>(
    app: &App<Ctx>,
    head: RequestHead,
    mut request: TrpcRequest,
    options: &TrpcOptions,
    timer: Option<Arc<dyn Timer>>,
    observe: &mut (dyn FnMut(Answered<'_>) + Send),
) -> HttpResponse {
    let call = request.calls.remove(0);
    let path = call.path;
    let (input, resume) = match merge_last_event_id(call.input, request.last_event_id) {
        Ok(merged) => merged,
        Err(error) => {
            observe(refusal(Some(&path), &error));
            return error_response(&error, Some(&path));
        }
    };
    let resumed = resume.is_some();
    let mut headers: Vec<(&'static str, Cow<'static, str>)> = alloc::vec![
        ("content-type", Cow::Borrowed("text/event-stream")),
        ("cache-control", Cow::Borrowed("no-cache, no-transform")),
        ("x-accel-buffering", Cow::Borrowed("no")),
        ("vary", Cow::Borrowed("trpc-accept, accept")),
    ];
    let frames = if request.method == Method::Post {
        headers.insert(0, ("allow", Cow::Borrowed("GET")));
        error_stream(RpcError::new(
            ErrorCode::METHOD_NOT_SUPPORTED,
            format!("Unsupported POST-request to subscription procedure at path \"{path}\""),
        ))
    } else {
        match app.call(head, &path, input, resume.clone()).await {
            Ok(Reply::Stream(frames)) => frames,
            Ok(Reply::Value(_)) => error_stream(RpcError::internal("not a subscription")),
            Err(error) => {
                observe(Answered {
                    procedure: Some(&path),
                    resumed,
                    answer: Answer::Error(&error),
                });
                return error_response(&error, Some(&path));
            }
        }
    };
    // A stream opens (even one that only carries the refusal of a POST): its end tells the rest.
    observe(Answered {
        procedure: Some(&path),
        resumed,
        answer: Answer::Stream,
    });
    let timing = StreamTiming {
        keep_alive: options.ping,
        max_duration: options.max_duration,
    };
    let framing = TrpcFraming {
        client_config: options.client_config(),
        path,
        last_event_id: resume.map_or(LastId::None, LastId::Own),
    };
    HttpResponse {
        status: 200,
        headers,
        body: Body::Events(SseBody::new(frames, framing, &timing, timer)),
    }
}

/// The `connectionParams` of a request's query: a JSON object of strings, which tRPC's
/// `httpSubscriptionLink` sends when given `connectionParams` (over WebSocket they come as the
/// first message instead). `None` when the query has none; a value that is not such an object is
/// a 400 `PARSE_ERROR`, as tRPC's server answers it.
///
/// ```
/// use outer_core::protocol::trpc::connection_params;
/// let params = connection_params("input=%7B%7D&connectionParams=%7B%22token%22%3A%22t%22%7D").unwrap();
/// assert_eq!(params.unwrap()["token"], "t");
/// assert!(connection_params("connectionParams=%7B%22n%22%3A1%7D").is_err());
/// assert_eq!(connection_params("input=1").unwrap(), None);
/// ```
pub fn connection_params(query: &str) -> Result<Option<BTreeMap<String, String>>, RpcError> {
    let Some((_, text)) =
        form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "connectionParams")
    else {
        return Ok(None);
    };
    let invalid = || RpcError::new(ErrorCode::PARSE_ERROR, "Invalid connection params shape");
    let params = serde_json::from_str::<Value>(&text).map_err(|_| invalid())?;
    string_params(params).ok_or_else(invalid)
}

/// Connection params as tRPC takes them, from the query or a socket's first message: `null` is
/// none, an object of strings is the params; anything else is `None` here, an error to the
/// caller.
pub(super) fn string_params(params: Value) -> Option<Option<BTreeMap<String, String>>> {
    match params {
        Value::Null => Some(None),
        Value::Object(params) => params
            .into_iter()
            .map(|(name, value)| match value {
                Value::String(value) => Some((name, value)),
                _ => None,
            })
            .collect::<Option<_>>()
            .map(Some),
        _ => None,
    }
}

/// tRPC carries the resume id in the input (`input.lastEventId`); the header or query value,
/// when present, overrides it. The handler gets it as `last_event_id`, and the input without
/// it, so the same handler serves oRPC and tRPC unchanged.
///
/// An empty or `null` `lastEventId` is no id; one that is not a string, or holds CR, LF or
/// NUL, is a 400 `BAD_REQUEST` rather than silently dropped (the stream would start live and
/// the client would miss what it asked to resume).
pub fn merge_last_event_id(
    input: Option<Value>,
    from_request: Option<EventId>,
) -> Result<(Option<Value>, Option<EventId>), RpcError> {
    match input {
        Some(Value::Object(mut map)) => {
            let in_input = map.remove("lastEventId");
            let input = if map.is_empty() {
                None
            } else {
                Some(Value::Object(map))
            };
            if from_request.is_some() {
                return Ok((input, from_request));
            }
            let resume = match in_input {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) if id.is_empty() => None,
                Some(Value::String(id)) => Some(resume_id(&id)?),
                Some(other) => {
                    return Err(RpcError::new(
                        ErrorCode::BAD_REQUEST,
                        format!(
                            "Invalid lastEventId: a string was expected, not {}",
                            kind(&other)
                        ),
                    ))
                }
            };
            Ok((input, resume))
        }
        other => Ok((other, from_request)),
    }
}

/// Writes tRPC's event stream: `connected`, values as `data:` then `id:`, `ping`, `return`
/// and `serialized-error`, every event followed by an extra blank line.
#[derive(Debug)]
pub struct TrpcFraming {
    client_config: String,
    path: String,
    /// The last id sent or resumed from: an event without one then carries an empty `id:`
    /// and a `restore-id` event puts the browser's last id back.
    last_event_id: LastId,
}

/// A [`TrpcFraming`]'s last id. A shared event's is kept as the event itself: one reference
/// count per event, where holding the id would copy it, per subscriber per event, for the rare
/// event without an id that follows.
#[derive(Debug)]
enum LastId {
    None,
    Own(EventId),
    Shared(SharedEvent),
}

impl LastId {
    fn get(&self) -> Option<&EventId> {
        match self {
            LastId::None => None,
            LastId::Own(id) => Some(id),
            LastId::Shared(event) => event.id(),
        }
    }
}

impl TrpcFraming {
    /// Framing for a subscription at `path`, resuming after `last_event_id`.
    pub fn new(options: &TrpcOptions, path: &str, last_event_id: Option<EventId>) -> Self {
        Self {
            client_config: options.client_config(),
            path: path.into(),
            last_event_id: last_event_id.map_or(LastId::None, LastId::Own),
        }
    }

    /// An event's data with its id, or, without one, an empty `id:` and a `restore-id` event
    /// when an id came before.
    fn write_event(
        &self,
        data: &RawValue,
        id: Option<&EventId>,
        out: &mut Chunk,
    ) -> Result<(), EncodeError> {
        match (id, self.last_event_id.get()) {
            (Some(id), _) => write_data(data, id, out),
            (None, None) => EventWriter::new(out)
                .data(data.get())
                .finish_with_blank_line(),
            (None, Some(last)) => EventWriter::new(out)
                .data(data.get())
                .id("")
                .finish_with_blank_line()
                .and_then(|()| {
                    EventWriter::new(out)
                        .event("restore-id")
                        .data("")
                        .id(last.as_str())
                        .finish_with_blank_line()
                }),
        }
    }
}

/// An event with an id: `data:` then `id:`, the same for every stream.
fn write_data<B: SseBuf + ?Sized>(
    data: &RawValue,
    id: &EventId,
    out: &mut B,
) -> Result<(), EncodeError> {
    EventWriter::new(out)
        .data(data.get())
        .id(id.as_str())
        .finish_with_blank_line()
}

impl Framing for TrpcFraming {
    fn open(&mut self, out: &mut Chunk) {
        let written = EventWriter::new(out)
            .event("connected")
            .data(&self.client_config)
            .finish_with_blank_line();
        debug_assert!(written.is_ok());
    }

    fn frame(&mut self, frame: Frame, out: &mut Chunk) {
        // Ids were checked for CR, LF and NUL when the event was built.
        let written = match frame {
            Frame::Event(event) => {
                let (data, mut meta) = event.into_parts();
                let id = meta.take_id();
                let written = self.write_event(&data, id.as_ref(), out);
                if let Some(id) = id {
                    self.last_event_id = LastId::Own(id);
                }
                written
            }
            // With an id, the same bytes for every stream: written once, shared.
            Frame::Shared(event) => match event.id() {
                Some(id) => {
                    let mut written = Ok(());
                    let bytes = event.encoded(Encoding::TrpcSse, |text| {
                        written = write_data(event.data(), id, text);
                    });
                    out.push_shared(bytes);
                    self.last_event_id = LastId::Shared(event);
                    written
                }
                None => self.write_event(event.data(), None, out),
            },
            // tRPC does not send the return value.
            Frame::Done(_) => EventWriter::new(out)
                .event("return")
                .data("")
                .finish_with_blank_line(),
            Frame::Error(error) => {
                let mut shape = String::new();
                write_error_shape(&error, Some(&self.path), &mut shape);
                EventWriter::new(out)
                    .event("serialized-error")
                    .data(&shape)
                    .finish_with_blank_line()
            }
        };
        debug_assert!(
            written.is_ok(),
            "validated fields were refused: {written:?}"
        );
    }

    fn keep_alive(&mut self, out: &mut Chunk) {
        let written = EventWriter::new(out)
            .event("ping")
            .data("")
            .finish_with_blank_line();
        debug_assert!(written.is_ok());
    }
}
