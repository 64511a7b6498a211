//! The client's half of both wire protocols, as far as the suites need it: how a subscription
//! is requested, how its stream's events read back, and how a refusal reads back.
//!
//! oRPC's client side lives in the core ([`outer_core::protocol::orpc`]), because the Rust
//! client speaks it. tRPC's is only here: Outer serves tRPC clients but ships none, so this is
//! a test's reading of the wire, following what `@trpc/client`'s `httpSubscriptionLink` does.

use outer_core::protocol::orpc::{self, ClientFrame};
use outer_core::sse::SseEvent;
use outer_core::{ErrorCode, Event, EventId, RpcError};
use serde_json::Value;

/// Which protocol a client speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// oRPC: `POST {prefix}/post/live` with a `{json, meta}` body; resume id in `last-event-id`.
    Orpc,
    /// tRPC: `GET {prefix}/post.live?input=…`; resume id as `input.lastEventId`, as
    /// `httpSubscriptionLink` sends it.
    Trpc,
}

impl Protocol {
    /// Both protocols, for suites that run each case on each.
    pub const ALL: [Protocol; 2] = [Protocol::Orpc, Protocol::Trpc];

    /// The URL prefix Outer's server mounts the protocol at by default.
    pub fn default_prefix(self) -> &'static str {
        match self {
            Protocol::Orpc => "/rpc",
            Protocol::Trpc => "/trpc",
        }
    }
}

/// One subscription request, in the form a server's protocol handler takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The path under the protocol's prefix: `/post/live` (oRPC) or `/post.live` (tRPC).
    pub route: String,
    /// The URL query, without `?` (empty for oRPC).
    pub query: String,
    /// Headers beyond the host: content type, last event id.
    pub headers: Vec<(String, String)>,
    /// The request body (empty for tRPC).
    pub body: String,
}

impl SubscribeRequest {
    /// A request for the procedure at the dotted `path` with `input`, resuming after
    /// `last_event_id` when there is one.
    pub fn new(
        protocol: Protocol,
        path: &str,
        input: Option<&Value>,
        last_event_id: Option<&EventId>,
    ) -> Self {
        match protocol {
            Protocol::Orpc => {
                let mut headers = vec![("content-type".into(), "application/json".into())];
                if let Some(id) = last_event_id {
                    headers.push(("last-event-id".into(), id.as_str().into()));
                }
                Self {
                    method: "POST",
                    route: format!("/{}", path.replace('.', "/")),
                    query: String::new(),
                    headers,
                    body: orpc::encode_call(input),
                }
            }
            Protocol::Trpc => {
                // httpSubscriptionLink carries the id in the input; an input that is not an
                // object has nowhere to put it, so the `Last-Event-ID` header does.
                let mut headers = Vec::new();
                let input = match (input, last_event_id) {
                    (input, None) => input.cloned(),
                    (None | Some(Value::Null), Some(id)) => {
                        Some(serde_json::json!({ "lastEventId": id.as_str() }))
                    }
                    (Some(Value::Object(map)), Some(id)) => {
                        let mut map = map.clone();
                        map.insert("lastEventId".into(), id.as_str().into());
                        Some(Value::Object(map))
                    }
                    (Some(other), Some(id)) => {
                        headers.push(("last-event-id".into(), id.as_str().into()));
                        Some(other.clone())
                    }
                };
                let query = match input {
                    Some(input) => {
                        let text = input.to_string();
                        let encoded: String =
                            form_urlencoded::byte_serialize(text.as_bytes()).collect();
                        format!("input={encoded}")
                    }
                    None => String::new(),
                };
                Self {
                    method: "GET",
                    route: format!("/{path}"),
                    query,
                    headers,
                    body: String::new(),
                }
            }
        }
    }
}

impl SubscribeRequest {
    /// The request as HTTP/1.1 bytes, for a server that mounts the protocol at `prefix`.
    pub fn to_http(&self, prefix: &str) -> Vec<u8> {
        let mut target = format!("{prefix}{}", self.route);
        if !self.query.is_empty() {
            target.push('?');
            target.push_str(&self.query);
        }
        let mut out = format!("{} {target} HTTP/1.1\r\nhost: loopback\r\n", self.method);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.method == "POST" {
            out.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

/// Reads one event of a subscription's stream: a message, the end, an error, or `Ok(None)` for
/// events that carry nothing for the caller (tRPC's `connected`, `ping`, `restore-id`).
pub fn decode_frame(protocol: Protocol, event: &SseEvent) -> Result<Option<ClientFrame>, RpcError> {
    match protocol {
        Protocol::Orpc => orpc::decode_event(event),
        Protocol::Trpc => decode_trpc_frame(event),
    }
}

fn decode_trpc_frame(event: &SseEvent) -> Result<Option<ClientFrame>, RpcError> {
    match event.event.as_str() {
        "message" => {
            let data: Value = serde_json::from_str(&event.data)
                .map_err(|e| RpcError::internal(format!("undecodable tRPC event data: {e}")))?;
            let mut message = Event::new(data);
            // An empty id line is tRPC's "untracked after a tracked one" (see `restore-id`).
            if let Some(id) = event.id.as_deref().filter(|id| !id.is_empty()) {
                message.meta_mut().set_id(id).map_err(RpcError::from)?;
            }
            Ok(Some(ClientFrame::Message(message)))
        }
        // tRPC does not send the return value.
        "return" => Ok(Some(ClientFrame::Done(Value::Null))),
        "serialized-error" => {
            let shape: Value = serde_json::from_str(&event.data)
                .map_err(|e| RpcError::internal(format!("undecodable tRPC error: {e}")))?;
            Ok(Some(ClientFrame::Error(trpc_error(&shape))))
        }
        _ => Ok(None),
    }
}

/// An error from tRPC's shape `{message, code, data: {code, httpStatus, path}}`.
pub(crate) fn trpc_error(shape: &Value) -> RpcError {
    let data = shape.get("data");
    let status = data
        .and_then(|d| d.get("httpStatus"))
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500);
    let code = data
        .and_then(|d| d.get("code"))
        .and_then(Value::as_str)
        .unwrap_or("INTERNAL_SERVER_ERROR");
    let message = shape
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match ErrorCode::lookup(code) {
        Some(known) if known.status == status => RpcError::new(known, message),
        _ => RpcError::custom(code, message).with_status(status),
    }
}

/// Reads a response that was not a stream (a refusal) as the error it carries.
pub fn decode_refusal(protocol: Protocol, status: u16, body: &[u8]) -> RpcError {
    match protocol {
        Protocol::Orpc => orpc::decode_error(status, body),
        Protocol::Trpc => match serde_json::from_slice::<Value>(body) {
            Ok(json) => match json.get("error") {
                Some(shape) => trpc_error(shape),
                None => RpcError::internal("a tRPC refusal without an error").with_status(status),
            },
            Err(e) => {
                RpcError::internal(format!("undecodable tRPC refusal: {e}")).with_status(status)
            }
        },
    }
}
