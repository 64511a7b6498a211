//! What a server accepts and for how long: the limits that keep its memory bounded, the URL
//! prefix it answers under, and the protocol's own options.
//!
//! Plain data with documented defaults; [`crate::OuterService`] reads it, nothing here acts.

use std::time::Duration;

use outer_core::protocol::trpc::TrpcOptions;

use outer_core::protocol::orpc::OrpcOptions;

/// How an [`OuterService`](crate::OuterService) and the servers built on it behave.
///
/// Start from the defaults and change what you need:
///
/// ```
/// use std::time::Duration;
/// use outer_http::ServerConfig;
///
/// let mut config = ServerConfig::default();
/// config.max_streams = 1_000;
/// config.orpc.timing.max_duration = Some(Duration::from_secs(3600));
/// assert_eq!(config.rpc_prefix, "/rpc");
/// assert_eq!(config.rpc_v2_prefix.as_deref(), Some("/rpc2"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    /// The URL prefix oRPC procedures are served under: `post.live` is `POST {prefix}/post/live`.
    /// Any other path is answered 404 `NOT_FOUND`. `""` serves at the root, which is what you
    /// want under axum's `nest_service`, since axum strips the nesting path before the service
    /// sees the request. A trailing `/` is ignored. Default: `"/rpc"`.
    pub rpc_prefix: String,
    /// The URL prefix oRPC 2 clients (`@orpc/client` 2.x) are served under, from the same
    /// router; [`rpc_prefix`](Self::rpc_prefix) serves oRPC 1 clients. The two versions' requests
    /// cannot be told apart (the same paths, bodies and headers) while their answers differ
    /// (error bodies, the end of a stream), so each version has its own prefix. A prefix equal
    /// to `rpc_prefix` takes it over: set `Some("/rpc")` once every client speaks oRPC 2.
    /// `None` turns oRPC 2 off. oRPC 2's WebSocket link is not served. Default: `Some("/rpc2")`.
    pub rpc_v2_prefix: Option<String>,
    /// The largest request body read, in bytes. A larger one is answered 413
    /// `PAYLOAD_TOO_LARGE` at once when its `content-length` says so, otherwise as soon as the
    /// bytes read pass the limit: no more than one read past it is ever buffered.
    /// Default: 1 MiB.
    pub max_body_bytes: usize,
    /// The most event streams open at once. A stream request beyond it is answered 503
    /// `SERVICE_UNAVAILABLE` (retryable: clients with retries come back later) and its stream
    /// is dropped before its first poll. Its setup has run by then (whether a call streams is
    /// known only once its setup answers), so a setup's own resources are dropped with it, as on
    /// any refusal. Default: 10 000.
    pub max_streams: usize,
    /// How long a connection may take to send a request's headers before it is closed
    /// (hyper's `header_read_timeout`, run on the service's timer). `None`: no limit.
    /// Default: 30 s, as hyper's.
    pub header_read_timeout: Option<Duration>,
    /// How long a request's whole body may take to arrive once its headers have: a body that
    /// never ends, or trickles in a byte at a time, is answered 408 `TIMEOUT` when this runs out
    /// and its connection is closed, so it cannot hold a connection (and a file descriptor)
    /// for ever. `None`: no limit. Default: 30 s (a full [`max_body_bytes`](Self::max_body_bytes)
    /// body then needs about 35 KB/s).
    pub body_read_timeout: Option<Duration>,
    /// The most connections a server built on this service ([`crate::server::accept_loop`]:
    /// `outer_tokio::serve`, `outer_smol::serve`) keeps open at once. At the limit it stops
    /// accepting until one closes: new connections wait in the kernel's listen queue rather
    /// than being accepted and starved, and the process never runs out of file descriptors
    /// through its listener. Each connection needs one descriptor, so keep this under the
    /// process's limit (`ulimit -n`) less what else it opens. Under axum, axum accepts and
    /// this does not apply. Default: 16 384, or on Unix the process's soft descriptor limit
    /// less 64 when that is lower (a default limit of 1 024 gives 960).
    pub max_connections: usize,
    /// How long a server's graceful shutdown waits for open connections to finish (after it
    /// has ended every event stream) before it closes them. Default: 10 s.
    pub shutdown_grace: Duration,
    /// oRPC's options: keep-alive comments after 5 s of silence by default, and
    /// `timing.max_duration`, the longest a stream stays open before it ends with the
    /// protocol's interruption instead of `done` (for oRPC a retryable 503 `error` event: clients
    /// reconnect and resume), `None` by default.
    pub orpc: OrpcOptions,
    /// The URL prefix tRPC procedures are served under, from the same router: `post.live` is
    /// `GET {prefix}/post.live`. `None` turns tRPC off. When one prefix lies inside the other
    /// (`rpc_prefix: ""`), the longer one is matched first. Default: `Some("/trpc")`.
    pub trpc_prefix: Option<String>,
    /// tRPC's options: `ping` after 5 s of silence by default, `max_duration` (ends the stream
    /// cleanly; tRPC clients reconnect and resume), and `reconnect_after_inactivity` for clients.
    pub trpc: TrpcOptions,
    /// WebSocket: tRPC's `wsLink` upgrades at [`trpc_prefix`](Self::trpc_prefix) and oRPC's
    /// websocket link at [`rpc_prefix`](Self::rpc_prefix), each socket carrying any number of
    /// calls and subscriptions of the same router. On by default.
    pub websocket: WebSocketConfig,
    /// HTTP/2, beside HTTP/1.1 on the same port: with prior knowledge on cleartext
    /// (`curl --http2-prior-knowledge`), and as browsers reach it, over TLS where ALPN offers it.
    /// On by default.
    pub http2: Http2Config,
}

/// How HTTP/2 connections behave (see [`ServerConfig::http2`]).
///
/// One HTTP/2 connection carries many requests at once, so a browser's page is no longer held
/// to six event streams per origin. Every request on it is one stream, limited as an HTTP/1.1
/// request is ([`ServerConfig::max_body_bytes`], [`ServerConfig::body_read_timeout`], and each
/// event stream under [`ServerConfig::max_streams`]); these settings limit the connection.
///
/// ```
/// use outer_http::ServerConfig;
///
/// let mut config = ServerConfig::default();
/// config.http2.max_concurrent_streams = 64;
/// assert!(config.http2.enabled);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Http2Config {
    /// Whether HTTP/2 is served. When off, a connection that opens with HTTP/2's preface goes
    /// to HTTP/1.1, which answers it nothing and closes it (hyper's HTTP/1.1 gives no status
    /// to a preface), and TLS offers only `http/1.1`. Default: `true`.
    pub enabled: bool,
    /// The most requests open at once on one connection (HTTP/2's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`); the client waits for one to end before it opens
    /// more. Default: 256.
    pub max_concurrent_streams: u32,
    /// The most bytes of one response buffered for a client that is not reading: past it, the
    /// response's body is not polled until the client's flow-control window lets bytes go, so
    /// a slow reader's event stream waits (and lags behind its publisher) instead of growing a
    /// buffer. Default: 64 KiB.
    pub max_send_buffer_bytes: usize,
    /// After this long without a frame from the client, the server sends a PING to check it
    /// is still there. `None`: never. Default: 15 s.
    pub keep_alive_interval: Option<std::time::Duration>,
    /// How long the client has to answer that PING before the connection is closed.
    /// Default: 10 s.
    pub keep_alive_timeout: std::time::Duration,
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            enabled: true,
            max_concurrent_streams: 256,
            max_send_buffer_bytes: 64 * 1024,
            keep_alive_interval: Some(Duration::from_secs(15)),
            keep_alive_timeout: Duration::from_secs(10),
        }
    }
}

/// How sockets upgraded to WebSocket behave (see [`ServerConfig::websocket`]).
///
/// A socket carries many calls at once, so its limits are per socket; each subscription on it
/// also takes a place under [`ServerConfig::max_streams`], as an SSE stream does.
///
/// ```
/// use std::time::Duration;
/// use outer_http::ServerConfig;
///
/// let mut config = ServerConfig::default();
/// config.websocket.max_calls = 16;
/// config.websocket.ping = Some(Duration::from_secs(30));
/// assert!(config.websocket.enabled);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Whether upgrades are accepted. When off, an upgrade request is answered as any other
    /// request to its path. Default: `true`.
    pub enabled: bool,
    /// The largest message a client may send, in bytes. A larger one closes the socket with
    /// code 1009 (message too big). Default: 1 MiB.
    pub max_message_bytes: usize,
    /// The most calls (queries, mutations and subscriptions) running at once on one socket. One
    /// more is answered `TOO_MANY_REQUESTS` (429) and the socket stays open. Default: 100.
    pub max_calls: usize,
    /// After this long without hearing from the client, the server checks it is still there:
    /// tRPC sockets get tRPC's `PING` text (its client answers `PONG`), oRPC sockets a
    /// WebSocket ping frame (answered by every client). `None`: never. Default: 15 s.
    pub ping: Option<Duration>,
    /// How long the client has to answer a ping (any message counts) before the socket is
    /// dropped as dead. Default: 10 s.
    pub pong_wait: Duration,
    /// On shutdown, tRPC sockets get tRPC's reconnect notice, and the client moves its
    /// subscriptions to a new socket on its own and closes this one; one still open this long
    /// after the notice is closed (1012, service restart). oRPC sockets end each stream with a
    /// retryable error and close at once. Default: 2 s.
    pub reconnect_close_after: Duration,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_message_bytes: 1024 * 1024,
            max_calls: 100,
            ping: Some(Duration::from_secs(15)),
            pong_wait: Duration::from_secs(10),
            reconnect_close_after: Duration::from_secs(2),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            rpc_prefix: "/rpc".into(),
            rpc_v2_prefix: Some("/rpc2".into()),
            max_body_bytes: 1024 * 1024,
            max_streams: 10_000,
            header_read_timeout: Some(Duration::from_secs(30)),
            body_read_timeout: Some(Duration::from_secs(30)),
            max_connections: default_max_connections(),
            shutdown_grace: Duration::from_secs(10),
            orpc: OrpcOptions::default(),
            trpc_prefix: Some("/trpc".into()),
            trpc: TrpcOptions::default(),
            websocket: WebSocketConfig::default(),
            http2: Http2Config::default(),
        }
    }
}

/// The default [`ServerConfig::max_connections`]: 16 384, less on a process whose descriptor
/// limit would run out first.
fn default_max_connections() -> usize {
    const MOST: usize = 16_384;
    /// Descriptors left for everything but connections: the listener, logs, a database.
    const RESERVE: u64 = 64;
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, Resource};
        if let Some(limit) = getrlimit(Resource::Nofile).current {
            let usable = limit.saturating_sub(RESERVE).max(1);
            return usize::try_from(usable).map_or(MOST, |usable| usable.min(MOST));
        }
    }
    MOST
}

/// `"/rpc/"` and `"rpc"` are `"/rpc"`; `"/"` is `""`, the root.
pub(crate) fn normalize_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.starts_with('/') {
        trimmed.into()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized_to_a_leading_slash_and_no_trailing_one() {
        for (given, normal) in [
            ("/rpc", "/rpc"),
            ("/rpc/", "/rpc"),
            ("rpc", "/rpc"),
            ("/api/rpc", "/api/rpc"),
            ("/", ""),
            ("", ""),
        ] {
            assert_eq!(normalize_prefix(given), normal, "{given}");
        }
    }
}
