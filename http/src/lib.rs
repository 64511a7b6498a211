//! # outer-http
//!
//! Outer over HTTP with hyper 1.x, independent of any runtime: the service, the limits, the
//! streaming body, the connection and accept loops and graceful shutdown, shared by
//! `outer-tokio` and `outer-smol` so that they stay a few lines each.
//!
//! [`OuterService`] answers oRPC calls under a prefix (`/rpc` by default) and writes event
//! streams chunk by chunk, each event as soon as the handler yields it. It is a hyper service
//! and a tower service, so it also mounts in axum. You rarely use this crate directly: serve
//! with `outer_tokio::serve` or `outer_smol::serve`. Here a router is served without sockets:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use http_body_util::{BodyExt, Full};
//! use outer_core::rt::{Sleep, Timer};
//! use outer_core::{procedure, Router};
//! use outer_http::{OuterService, ServerConfig};
//!
//! // Each runtime adapter brings its timer; this one never fires.
//! #[derive(Debug)]
//! struct NoTimer;
//! impl Timer for NoTimer {
//!     fn sleep(&self, _: Duration) -> Sleep { Box::pin(std::future::pending()) }
//!     fn now(&self) -> Duration { Duration::ZERO }
//! }
//!
//! #[derive(serde::Deserialize)]
//! struct Ping { n: u32 }
//!
//! let router = Router::new().route(
//!     "ping",
//!     procedure::<()>().input::<Ping>().query(|req| async move { Ok(req.input.n + 1) }),
//! );
//! let service = OuterService::new(router, ServerConfig::default(), Arc::new(NoTimer));
//!
//! let request = http::Request::post("/rpc/ping").body(Full::new(r#"{"json":{"n":1}}"#.as_bytes()))?;
//! let response = futures::executor::block_on(service.respond(request))?;
//! assert_eq!(response.status(), 200);
//! let body = futures::executor::block_on(response.into_body().collect())?.to_bytes();
//! assert_eq!(body, r#"{"json":2}"#);
//! # Ok::<_, Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Limits
//! Memory is bounded per request and per server: bodies over [`ServerConfig::max_body_bytes`]
//! are refused (413) without being read, at most [`ServerConfig::max_streams`] event streams are
//! open at once (503 beyond), a connection must send its headers within
//! [`ServerConfig::header_read_timeout`] and its body within
//! [`ServerConfig::body_read_timeout`] (408 after), and a server keeps at most
//! [`ServerConfig::max_connections`] open, accepting more only as they close.
//!
//! ## Fairness
//! Every answer and every event stream is polled inside [`outer_core::coop::budgeted`], so a
//! handler looping over Outer's always-ready futures yields; and a stream yields its thread after
//! each full chunk it hands out without waiting, so one fast stream cannot starve the others.
//!
//! ## HTTP/2, TLS and tower layers
//! The servers of [`server`] serve HTTP/1.1 and HTTP/2 on one port, told by each connection's
//! first bytes ([`ServerConfig::http2`] has the limits); TLS (feature `tls`, module `tls`) is
//! the adapters' `serve_tls`. They serve an [`OuterService`] or any [`Stack`] of tower layers
//! around one ([`OuterService::layer`]): [`Pages`] and [`TestHooks`] are two such layers.
//!
//! ## Metrics
//! Connections, streams, deliveries, resumes, gaps, latency and calls are recorded through the
//! `metrics` facade: see [`metrics`].
//!
//! ## WebSocket
//! An upgrade to the tRPC prefix speaks tRPC's `wsLink`, one to the oRPC prefix oRPC's
//! websocket link ([`ServerConfig::websocket`] has the limits): the same router, many calls on
//! one socket. On the servers of [`server`] the socket runs in its connection's own task after
//! the 101, so nothing is spawned; under another server (axum) the service spawns it on the
//! runtime given to [`OuterService::with_spawner`].
//!
//! ## Metrics
//! Connections, streams, deliveries and their bytes, resumes, gaps, publish-to-write latency
//! and calls by procedure and code are recorded through the `metrics` facade: install a
//! recorder (Prometheus, OpenTelemetry) and they appear; [`metrics`] lists them all.
//!
//! ## Client disconnects
//! A client that closes its connection ends its stream even while the stream is silent: hyper
//! keeps reading the connection while it writes a response, sees the end of input, and drops
//! the response body, which drops the procedure's handler (its cleanup runs) and frees the
//! stream's place. [`OuterService::active_streams`] shows it.
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod body;
pub mod client;
mod config;
pub mod fair;
pub mod local;
pub mod metrics;
mod pages;
pub mod server;
mod service;
mod shutdown;
mod stack;
mod test_hooks;
#[cfg(feature = "tls")]
pub mod tls;
mod ws;

pub use body::{Aborted, OuterBody};
pub use config::{Http2Config, ServerConfig, WebSocketConfig};
pub use outer_core::protocol::orpc::OrpcOptions;
pub use outer_core::protocol::trpc::TrpcOptions;
pub use outer_core::protocol::StreamTiming;
pub use pages::{Pages, PagesService};
pub use service::{HttpHead, OuterService, PeerAddr, ResponseFuture};
pub use shutdown::Shutdown;
pub use stack::{BoxError, HttpService, Stack};
pub use test_hooks::{TestHooks, TestHooksService};
