//! The client on tokio: typed calls, and subscriptions that reconnect and resume by themselves,
//! against any oRPC server (Outer's or oRPC's own).
//!
//! All of the client lives in `outer_http::client`; this module only opens TCP connections
//! with tokio ([`TokioTransport`]). Use it inside a tokio runtime with time and I/O enabled.
//!
//! ```
//! use futures_util::StreamExt;
//! use outer_core::{event_iterator, procedure, tracked, Router};
//! use outer_tokio::{serve, service, Client, ServerConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let os = procedure::<()>();
//! let router = Router::new()
//!     .route("double", os.input::<u32>().query(|req| async move { Ok(req.input * 2) }))
//!     .route("count", os.subscription(|_| async {
//!         Ok(event_iterator(|mut emit| async move {
//!             for n in 1..=3u32 {
//!                 emit.send(tracked(n, n)?).await?;
//!             }
//!             Ok("finished")
//!         }))
//!     }));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = serve(listener, service(router, ServerConfig::default()))?;
//!
//! let client = Client::new(&format!("http://{}/rpc", server.local_addr()))?;
//! let four = client.call::<u32>("double", &2).await?;
//! assert_eq!(four, 4);
//!
//! let mut count = client.subscribe::<u32>("count", &());
//! let mut seen = Vec::new();
//! while let Some(event) = count.next().await {
//!     let event = event?;
//!     seen.push((event.id().unwrap().to_string(), *event.data()));
//! }
//! assert_eq!(seen, [("1".into(), 1), ("2".into(), 2), ("3".into(), 3)]);
//! assert_eq!(count.returned::<String>().transpose()?.as_deref(), Some("finished"));
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use hyper_util::rt::TokioIo;
use outer_core::rt::Timer;
use tokio::net::TcpStream;

pub use outer_http::client::{Call, ConfigError, OrpcVersion, Subscription, Transport};

use crate::TokioRuntime;

/// Opens the client's TCP connections with tokio, and times with [`TokioRuntime`].
///
/// ```
/// use outer_http::client::ClientBuilder;
/// use outer_tokio::client::TokioTransport;
/// let client = ClientBuilder::new("http://127.0.0.1:3000/rpc", TokioTransport).build()?;
/// # Ok::<(), outer_tokio::client::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioTransport;

impl Transport for TokioTransport {
    type Io = TokioIo<TcpStream>;

    fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Self::Io>> + Send>> {
        let host = host.to_owned();
        Box::pin(async move {
            let stream = TcpStream::connect((host.as_str(), port)).await?;
            // Requests are small writes that must leave at once.
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(stream))
        })
    }

    fn timer(&self) -> Arc<dyn Timer> {
        Arc::new(TokioRuntime)
    }
}

/// A client on tokio: see `outer_http::client::Client` for its methods.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// let client = outer_tokio::Client::builder("http://127.0.0.1:3000/rpc")
///     .inactivity_timeout(Some(Duration::from_secs(20)))
///     .build()?;
/// let pong = client.call::<serde_json::Value>("ping", &serde_json::json!({"n": 1})).await?;
/// # Ok(()) }
/// ```
pub type Client = outer_http::client::Client<TokioTransport>;

/// Settings for a [`Client`] on tokio, from `Client::builder(base_url)`.
///
/// ```
/// use outer_tokio::client::OrpcVersion;
/// let builder: outer_tokio::client::ClientBuilder =
///     outer_tokio::Client::builder("http://127.0.0.1:3000/rpc").max_attempts(Some(3));
/// assert!(builder.build().is_ok());
/// // oRPC 2 (`@orpc/server` 2.x, or Outer's `rpc_v2_prefix`); oRPC 1 unless chosen.
/// let v2 = outer_tokio::Client::builder("http://127.0.0.1:3000/rpc2")
///     .orpc_version(OrpcVersion::V2)
///     .build()?;
/// assert_eq!(v2.orpc_version(), OrpcVersion::V2);
/// # Ok::<(), outer_tokio::client::ConfigError>(())
/// ```
pub type ClientBuilder = outer_http::client::ClientBuilder<TokioTransport>;
