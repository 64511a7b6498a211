//! WebSocket: tRPC's `wsLink` and oRPC's websocket link, each socket carrying any number of calls
//! and subscriptions of the same router.
//!
//! The upgrade is an ordinary request to the protocol's prefix (`GET /trpc`, `GET /rpc` with
//! `Upgrade: websocket`). The service answers it 101 and leaves an [`Upgrade`] in the
//! connection's [`UpgradeSlot`]; once hyper has written the 101, the connection's own future
//! ([`crate::server::Serving`]) takes the socket back and runs it as a [`Socket`]. Nothing is
//! spawned, so it works the same on a work-stealing runtime and on a thread per core, and a
//! socket counts as its connection for the limits and for shutdown. Under a server Outer does not
//! own (axum), hyper's upgrade future delivers the socket and the service's spawner runs it.
//!
//! The frames themselves are the core's ([`outer_core::protocol::trpc_ws`],
//! [`outer_core::protocol::orpc_ws`]); [`Socket`] is the state around them: the context, the
//! calls in flight, keep-alive, limits and shutdown.

pub(crate) mod io;
mod socket;

use std::sync::{Arc, Mutex, PoisonError};

use http::header::{
    CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use outer_core::{ErrorCode, RequestHead, RpcError};

pub(crate) use socket::Socket;

use crate::OuterBody;

/// Which protocol a socket speaks, chosen by the path it was opened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WsProtocol {
    Trpc,
    Orpc,
}

impl WsProtocol {
    /// The protocol's `protocol` label.
    pub(crate) fn name(self) -> &'static str {
        match self {
            WsProtocol::Trpc => "trpc",
            WsProtocol::Orpc => "orpc",
        }
    }
}

/// An accepted upgrade: what the socket needs once hyper hands it over.
#[derive(Debug)]
pub(crate) struct Upgrade {
    pub(crate) protocol: WsProtocol,
    /// The head of the request that opened the socket: every call on it shares the context
    /// built from it, as tRPC's and oRPC's adapters build one per connection.
    pub(crate) head: RequestHead,
    /// tRPC's `?connectionParams=1`: the first message holds parameters for the context.
    pub(crate) connection_params: bool,
}

/// Where the service leaves an accepted [`Upgrade`] for the connection that carried the request.
/// The connection puts one in every request's extensions.
#[derive(Clone, Debug, Default)]
pub(crate) struct UpgradeSlot(Arc<Mutex<Option<Upgrade>>>);

impl UpgradeSlot {
    pub(crate) fn put(&self, upgrade: Upgrade) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(upgrade);
    }

    pub(crate) fn take(&self) -> Option<Upgrade> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Whether a request asks to become a WebSocket (`Upgrade: websocket`).
pub(crate) fn wants_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &UPGRADE, "websocket")
}

/// Why an upgrade is refused, and the version spoken when that is why.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) error: Box<RpcError>,
    pub(crate) version: Option<HeaderValue>,
}

/// The 101 that accepts an upgrade, or why it cannot be accepted (RFC 6455, section 4.2).
pub(crate) fn accept(method: &Method, headers: &HeaderMap) -> Result<Response<OuterBody>, Refusal> {
    let refuse = |message: &str| Refusal {
        error: Box::new(RpcError::new(ErrorCode::BAD_REQUEST, message.to_owned())),
        version: None,
    };
    if method != Method::GET {
        return Err(refuse("A WebSocket upgrade must be a GET request"));
    }
    if !has_token(headers, &CONNECTION, "upgrade") {
        return Err(refuse("A WebSocket upgrade needs `Connection: upgrade`"));
    }
    if headers
        .get(SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        // 426 with the version spoken, as the RFC asks.
        let error = RpcError::new(
            ErrorCode::BAD_REQUEST,
            "Only WebSocket version 13 is spoken (Sec-WebSocket-Version: 13)",
        )
        .with_status(426);
        return Err(Refusal {
            error: Box::new(error),
            version: Some(HeaderValue::from_static("13")),
        });
    }
    let key = match headers.get(SEC_WEBSOCKET_KEY) {
        Some(key) if !key.is_empty() => key,
        _ => return Err(refuse("A WebSocket upgrade needs a Sec-WebSocket-Key")),
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut response = Response::new(OuterBody::full(bytes::Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok(response)
}

/// Whether header `name` lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: &http::header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// Whether a query string has `connectionParams=1`.
pub(crate) fn asks_connection_params(query: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair == "connectionParams=1" || pair == "connectionParams=true")
}
