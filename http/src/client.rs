//! A client for oRPC servers, Outer's or oRPC's own, over HTTP/1.1 with hyper and no runtime of
//! its own: typed unary calls, and subscriptions that reconnect and resume by themselves.
//!
//! A runtime brings a [`Transport`] (open a TCP connection, make a timer); `outer_tokio::Client`
//! and `outer_smol::Client` are this [`Client`] on theirs, and most code names those. What an
//! answer means, when to reconnect and after which id are the core's decisions
//! ([`outer_core::client::Subscription`]); this module moves the bytes. It speaks plain `http://`;
//! a `Transport` that wraps its connections in TLS adds `https`. It speaks oRPC 1 unless told
//! otherwise ([`ClientBuilder::orpc_version`]).
//!
//! ```no_run
//! # async fn run(client: outer_http::client::Client<impl outer_http::client::Transport>) -> Result<(), outer_core::RpcError> {
//! use futures_util::StreamExt;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize)]
//! struct NewPost { title: String }
//! #[derive(Deserialize)]
//! struct Post { id: u64, title: String }
//!
//! // A unary call: serde input, serde output, the server's error as an `RpcError`.
//! let post = client.call::<Post>("post.create", &NewPost { title: "hi".into() }).await?;
//!
//! // A subscription: events with their ids, across reconnects, until the end (`done`, or
//! // `close` in oRPC 2) or an error.
//! let mut live = client.subscribe::<Post>("post.live", &());
//! while let Some(event) = live.next().await {
//!     let event = event?;
//!     println!("{:?}: {}", event.id(), event.data().title);
//! }
//! # Ok(()) }
//! ```

mod connection;
mod subscription;

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, HOST};
use http::{Request, Uri};
use http_body_util::Full;
use outer_core::client::RetryPolicy;
use outer_core::protocol::orpc;
use outer_core::rt::Timer;
use outer_core::sse::Limits;
use outer_core::{ErrorCode, EventId, RpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use outer_core::protocol::orpc::OrpcVersion;
pub use subscription::Subscription;

/// What the client needs from a runtime: TCP connections and a timer.
///
/// `outer_tokio::TokioTransport` and `outer_smol::SmolTransport` implement it in a few lines;
/// implement it to run the client elsewhere, or to wrap connections in TLS.
///
/// ```
/// use std::{future::Future, io, pin::Pin, sync::Arc, time::Duration};
/// use outer_core::rt::{Sleep, Timer};
/// use outer_http::client::Transport;
///
/// /// A transport whose connections always fail: for showing the shape only.
/// #[derive(Clone, Debug)]
/// struct Offline;
///
/// #[derive(Debug)]
/// struct NeverFires;
/// impl Timer for NeverFires {
///     fn sleep(&self, _: Duration) -> Sleep { Box::pin(std::future::pending()) }
///     fn now(&self) -> Duration { Duration::ZERO }
/// }
///
/// impl Transport for Offline {
///     // Any connection hyper can use; a real one wraps a TCP stream.
///     type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
///     fn connect(&self, _host: &str, _port: u16) -> Pin<Box<dyn Future<Output = io::Result<Self::Io>> + Send>> {
///         Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
///     }
///     fn timer(&self) -> Arc<dyn Timer> { Arc::new(NeverFires) }
/// }
/// ```
///
/// The connection and its connect future are `Send`, because a client's calls and
/// subscriptions are `Send` values that a work-stealing runtime may move between threads. A
/// thread-per-core runtime, whose sockets are not `Send`, wraps both in
/// [`Local`](crate::local::Local), which checks that they are only used on the thread that
/// opened them (`outer_monoio::MonoioTransport` does).
pub trait Transport: Clone + Send + Sync + fmt::Debug + 'static {
    /// A connection, wrapped for hyper (`hyper_util::rt::TokioIo`, `outer_smol::SmolIo`,
    /// `Local<outer_monoio::MonoioIo>`).
    type Io: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static;

    /// Opens a connection to `host:port`.
    fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = io::Result<Self::Io>> + Send>>;

    /// The runtime's timer, for retry delays and timeouts.
    fn timer(&self) -> Arc<dyn Timer>;
}

/// A base URL or a header the client cannot use.
///
/// ```
/// use outer_http::client::ClientBuilder;
/// # #[derive(Clone, Debug)] struct T;
/// # #[derive(Debug)] struct NoTimer;
/// # impl outer_core::rt::Timer for NoTimer {
/// #     fn sleep(&self, _: std::time::Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
/// #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
/// # }
/// # impl outer_http::client::Transport for T {
/// #     type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
/// #     fn connect(&self, _: &str, _: u16) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Io>> + Send>> { unimplemented!() }
/// #     fn timer(&self) -> std::sync::Arc<dyn outer_core::rt::Timer> { std::sync::Arc::new(NoTimer) }
/// # }
/// let err = ClientBuilder::new("ftp://example.com", T).build().unwrap_err();
/// assert!(err.to_string().contains("http://"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where the server is: `http://host:port/prefix`.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    authority: HeaderValue,
    /// The path procedures sit under, without a trailing `/` (`/rpc`, or `` for the root).
    prefix: String,
}

impl Target {
    fn parse(base_url: &str) -> Result<Self, ConfigError> {
        let bad = |why: &str| ConfigError(format!("base URL {base_url:?}: {why}"));
        let uri: Uri = base_url.parse().map_err(|err| bad(&format!("{err}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad(
                "only http:// URLs are supported (for TLS, implement a Transport that wraps its connections)",
            ));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if uri.query().is_some() {
            return Err(bad("a query string has no meaning here"));
        }
        let host = authority.host();
        // `[::1]` connects as `::1`.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Self {
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(80),
            authority: HeaderValue::from_str(authority.as_str())
                .map_err(|err| bad(&format!("{err}")))?,
            prefix: uri.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// What every request of one client shares.
#[derive(Debug)]
pub(crate) struct Shared {
    dial: Box<dyn connection::Dial>,
    timer: Arc<dyn Timer>,
    target: Target,
    headers: HeaderMap,
    retry: RetryPolicy,
    request_timeout: Option<Duration>,
    max_body_bytes: usize,
    limits: Limits,
    version: OrpcVersion,
}

/// A call's request, checked and encoded before anything is sent.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    path_and_query: http::uri::PathAndQuery,
    body: Bytes,
}

impl Shared {
    fn prepare<I: Serialize + ?Sized>(&self, path: &str, input: &I) -> Result<Prepared, RpcError> {
        outer_core::router::check_path(path).map_err(|err| {
            RpcError::new(
                ErrorCode::BAD_REQUEST,
                format!("not a procedure path: {err}"),
            )
        })?;
        let input = serde_json::to_value(input).map_err(|err| {
            RpcError::new(
                ErrorCode::BAD_REQUEST,
                format!("the input does not serialize to JSON: {err}"),
            )
        })?;
        // `()` and `None` travel as oRPC's `undefined`, the way the server writes them back:
        // `{}` in version 1, no body at all in version 2.
        let body = self
            .version
            .encode_call((!input.is_null()).then_some(&input));
        let uri = format!("{}/{}", self.target.prefix, path.replace('.', "/"));
        let path_and_query = uri.parse().map_err(|err| {
            RpcError::new(
                ErrorCode::BAD_REQUEST,
                format!("not a procedure path: {err}"),
            )
        })?;
        Ok(Prepared {
            path_and_query,
            body: Bytes::from(body),
        })
    }

    fn request(
        &self,
        prepared: &Prepared,
        last_event_id: Option<&EventId>,
        stream: bool,
    ) -> Result<Request<Full<Bytes>>, RpcError> {
        let mut request = Request::post(prepared.path_and_query.as_str())
            .body(Full::new(prepared.body.clone()))
            .map_err(|err| RpcError::internal(format!("could not build the request: {err}")))?;
        let headers = request.headers_mut();
        for (name, value) in &self.headers {
            headers.append(name, value.clone());
        }
        headers.insert(HOST, self.target.authority.clone());
        // Version 2's `undefined` is no body, sent without a content-type as `@orpc/client` 2
        // sends it (its server reads no type as no input).
        if !prepared.body.is_empty() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        if let Some(id) = last_event_id {
            let value = HeaderValue::from_bytes(id.as_str().as_bytes()).map_err(|_| {
                RpcError::new(
                    ErrorCode::BAD_GATEWAY,
                    format!("the server's event id {id:?} cannot travel back in a header"),
                )
            })?;
            headers.insert(HeaderName::from_static("last-event-id"), value);
        }
        Ok(request)
    }

    /// One unary exchange: connect, send, read the answer within the limits and the timeout.
    async fn round_trip(self: Arc<Self>, prepared: Prepared) -> Result<Value, RpcError> {
        let request = self.request(&prepared, None, false)?;
        let exchange = async {
            let mut open = self.dial.dial(&self.target).await?;
            let response = open.send(request).await?;
            let status = response.status().as_u16();
            let body = open.read_body(response, self.max_body_bytes).await?;
            decode_answer(self.version, status, &body)
        };
        match connection::within(self.timer.as_ref(), self.request_timeout, exchange).await {
            Some(answer) => answer,
            None => Err(connection::timed_out(self.request_timeout)),
        }
    }
}

/// Reads a unary answer: the value of a 2xx (`null` for an empty body, version 2's
/// `undefined`), else the error it carries (the server's, intact; its status, missing from
/// version 2's bodies, is the answer's).
fn decode_answer(version: OrpcVersion, status: u16, body: &[u8]) -> Result<Value, RpcError> {
    if !(200..300).contains(&status) {
        return Err(orpc::decode_error(status, body));
    }
    version
        .decode_body(body)
        .map(|value| value.unwrap_or(Value::Null))
        .map_err(|err| {
            // The decoder words its errors for a server reading a request; say it as a client.
            let reason = err
                .data()
                .and_then(|data| data.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or(err.message());
            RpcError::new(
                ErrorCode::BAD_GATEWAY,
                format!("the answer (HTTP {status}) is not oRPC's JSON: {reason}"),
            )
        })
}

/// A client for one oRPC server: cheap to clone, every clone shares its settings.
///
/// Each call and each subscription opens its own connection, so that a subscription's
/// connection closes the moment it is dropped and no call waits behind another's stream.
///
/// ```no_run
/// # async fn run<R: outer_http::client::Transport + Default>() -> Result<(), Box<dyn std::error::Error>> {
/// use outer_http::client::Client;
/// let client = Client::<R>::new("http://127.0.0.1:3000/rpc")?;
/// let pong: serde_json::Value = client.call("ping", &serde_json::json!({"n": 1})).await?;
/// # Ok(()) }
/// ```
pub struct Client<R> {
    shared: Arc<Shared>,
    _transport: PhantomData<fn() -> R>,
}

impl<R> Clone for Client<R> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            _transport: PhantomData,
        }
    }
}

impl<R> fmt::Debug for Client<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.shared.target.host)
            .field("port", &self.shared.target.port)
            .field("prefix", &self.shared.target.prefix)
            .field("version", &self.shared.version)
            .finish_non_exhaustive()
    }
}

impl<R: Transport + Default> Client<R> {
    /// A client with the default settings for the server at `base_url`, the URL its
    /// procedures sit under (`http://127.0.0.1:3000/rpc`).
    ///
    /// ```
    /// # #[derive(Clone, Debug, Default)] struct R;
    /// # #[derive(Debug)] struct NoTimer;
    /// # impl outer_core::rt::Timer for NoTimer {
    /// #     fn sleep(&self, _: std::time::Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
    /// #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
    /// # }
    /// # impl outer_http::client::Transport for R {
    /// #     type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
    /// #     fn connect(&self, _: &str, _: u16) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Io>> + Send>> { unimplemented!() }
    /// #     fn timer(&self) -> std::sync::Arc<dyn outer_core::rt::Timer> { std::sync::Arc::new(NoTimer) }
    /// # }
    /// use outer_http::client::Client;
    /// assert!(Client::<R>::new("http://127.0.0.1:3000/rpc").is_ok());
    /// assert!(Client::<R>::new("not a url").is_err());
    /// ```
    pub fn new(base_url: &str) -> Result<Self, ConfigError> {
        Self::builder(base_url).build()
    }

    /// A builder for a client with settings of your own.
    ///
    /// ```
    /// # #[derive(Clone, Debug, Default)] struct R;
    /// # #[derive(Debug)] struct NoTimer;
    /// # impl outer_core::rt::Timer for NoTimer {
    /// #     fn sleep(&self, _: std::time::Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
    /// #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
    /// # }
    /// # impl outer_http::client::Transport for R {
    /// #     type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
    /// #     fn connect(&self, _: &str, _: u16) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Io>> + Send>> { unimplemented!() }
    /// #     fn timer(&self) -> std::sync::Arc<dyn outer_core::rt::Timer> { std::sync::Arc::new(NoTimer) }
    /// # }
    /// use std::time::Duration;
    /// use outer_http::client::Client;
    /// let client = Client::<R>::builder("http://127.0.0.1:3000/rpc")
    ///     .max_attempts(Some(5))
    ///     .inactivity_timeout(Some(Duration::from_secs(20)))
    ///     .header("authorization", "Bearer secret")
    ///     .build()?;
    /// # Ok::<(), outer_http::client::ConfigError>(())
    /// ```
    pub fn builder(base_url: &str) -> ClientBuilder<R> {
        ClientBuilder::new(base_url, R::default())
    }
}

impl<R: Transport> Client<R> {
    /// The version of oRPC it speaks ([`ClientBuilder::orpc_version`]).
    pub fn orpc_version(&self) -> OrpcVersion {
        self.shared.version
    }

    /// Calls a unary procedure (query or mutation) with `input` and reads its output as an `O`.
    ///
    /// A failure is an [`RpcError`]: the server's error with its code, status, message and
    /// data as sent; or one of the client's own: `SERVICE_UNAVAILABLE` when the connection
    /// could not be made or broke, `GATEWAY_TIMEOUT` past the request timeout, `BAD_GATEWAY`
    /// for an answer over `max_body_bytes` or not of the expected shape, `BAD_REQUEST` for an
    /// input that does not serialize or a malformed path. A call is never retried: a mutation
    /// may have happened even when its answer was lost.
    ///
    /// The input is encoded at once; the request leaves when the future is first polled.
    ///
    /// ```no_run
    /// # async fn run<R: outer_http::client::Transport>(client: outer_http::client::Client<R>) -> Result<(), outer_core::RpcError> {
    /// #[derive(serde::Deserialize)]
    /// struct Pong { n: u32 }
    /// let pong = client.call::<Pong>("ping", &serde_json::json!({"n": 1})).await?;
    /// assert_eq!(pong.n, 1);
    /// # Ok(()) }
    /// ```
    pub fn call<O: DeserializeOwned>(
        &self,
        path: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Call<O> {
        let prepared = self.shared.prepare(path, input);
        let shared = Arc::clone(&self.shared);
        Call {
            answer: Box::pin(async move { shared.round_trip(prepared?).await }),
            _output: PhantomData,
        }
    }

    /// Subscribes to a streaming procedure: a stream of its events as `T`, with their ids.
    ///
    /// The subscription reconnects by itself when the connection drops, when the server
    /// answers or ends the stream with a 5xx, and when nothing (no event, no keep-alive)
    /// arrives within the inactivity timeout, sending the last id it saw in `last-event-id`
    /// so the server resumes after it. It ends with `None` after the server's `done` (`close`
    /// in oRPC 2; see [`Subscription::returned`]), or with one `Err` and then `None`: a 4xx
    /// (the server's error intact), bad input from the server, or the attempts used up.
    ///
    /// Nothing is sent until the stream is first polled. Dropping the stream closes its
    /// connection at once; the server then drops the procedure's handler.
    ///
    /// ```no_run
    /// # async fn run<R: outer_http::client::Transport>(client: outer_http::client::Client<R>) -> Result<(), outer_core::RpcError> {
    /// use futures_util::StreamExt;
    /// #[derive(serde::Deserialize)]
    /// struct Tick { n: u64 }
    /// let input = serde_json::json!({"from": 1, "to": 3, "delayMs": 10});
    /// #[derive(serde::Deserialize)]
    /// struct Finished { done: bool }
    /// let mut ticks = client.subscribe::<Tick>("counter", &input);
    /// while let Some(tick) = ticks.next().await {
    ///     println!("{}", tick?.data().n);
    /// }
    /// assert!(ticks.returned::<Finished>().transpose()?.is_some_and(|end| end.done));
    /// # Ok(()) }
    /// ```
    pub fn subscribe<T: DeserializeOwned>(
        &self,
        path: &str,
        input: &(impl Serialize + ?Sized),
    ) -> Subscription<T> {
        self.resume(path, input, None)
    }

    /// [`subscribe`](Self::subscribe), resuming after an id kept from earlier (say, across a
    /// restart of this program): the first request already sends it.
    ///
    /// ```no_run
    /// # fn run<R: outer_http::client::Transport>(client: outer_http::client::Client<R>) {
    /// use outer_core::EventId;
    /// let live = client.resume::<serde_json::Value>("post.live", &(), Some(EventId::from(41u64)));
    /// # }
    /// ```
    pub fn resume<T: DeserializeOwned>(
        &self,
        path: &str,
        input: &(impl Serialize + ?Sized),
        last_event_id: Option<EventId>,
    ) -> Subscription<T> {
        let prepared = self.shared.prepare(path, input);
        Subscription::new(Arc::clone(&self.shared), prepared, last_event_id)
    }
}

/// The answer to a [`Client::call`]: a future of the output or the error.
pub struct Call<O> {
    answer: Pin<Box<dyn Future<Output = Result<Value, RpcError>> + Send>>,
    _output: PhantomData<fn() -> O>,
}

impl<O> fmt::Debug for Call<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Call")
    }
}

impl<O: DeserializeOwned> Future for Call<O> {
    type Output = Result<O, RpcError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.answer.as_mut().poll(cx).map(|answer| {
            serde_json::from_value(answer?).map_err(|err| {
                RpcError::new(
                    ErrorCode::BAD_GATEWAY,
                    format!("the answer does not have the expected type: {err}"),
                )
            })
        })
    }
}

/// Settings for a [`Client`]; every one has a default.
///
/// ```
/// # #[derive(Clone, Debug, Default)] struct R;
/// # #[derive(Debug)] struct NoTimer;
/// # impl outer_core::rt::Timer for NoTimer {
/// #     fn sleep(&self, _: std::time::Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
/// #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
/// # }
/// # impl outer_http::client::Transport for R {
/// #     type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
/// #     fn connect(&self, _: &str, _: u16) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Io>> + Send>> { unimplemented!() }
/// #     fn timer(&self) -> std::sync::Arc<dyn outer_core::rt::Timer> { std::sync::Arc::new(NoTimer) }
/// # }
/// use std::time::Duration;
/// use outer_core::client::RetryPolicy;
/// use outer_http::client::ClientBuilder;
/// let client = ClientBuilder::new("http://127.0.0.1:3000/rpc", R)
///     .retry_policy(RetryPolicy { initial_delay: Duration::from_millis(200), ..RetryPolicy::default() })
///     .request_timeout(Some(Duration::from_secs(5)))
///     .max_body_bytes(64 * 1024)
///     .max_event_bytes(64 * 1024)
///     .build()?;
/// # Ok::<(), outer_http::client::ConfigError>(())
/// ```
pub struct ClientBuilder<R> {
    base_url: String,
    transport: R,
    headers: HeaderMap,
    retry: RetryPolicy,
    request_timeout: Option<Duration>,
    max_body_bytes: usize,
    limits: Limits,
    version: OrpcVersion,
    error: Option<ConfigError>,
}

impl<R> fmt::Debug for ClientBuilder<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("limits", &self.limits)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl<R: Transport> ClientBuilder<R> {
    /// Settings for the server at `base_url` over `transport`, all at their defaults: the
    /// core's [`RetryPolicy::default`] (1 s backoff doubling to 30 s with jitter, 10 attempts
    /// in a row, 15 s inactivity timeout), a 30 s request timeout, answers up to 1 MiB, SSE
    /// lines up to 64 KiB and events up to 1 MiB, oRPC 1.
    pub fn new(base_url: &str, transport: R) -> Self {
        Self {
            base_url: base_url.to_owned(),
            transport,
            headers: HeaderMap::new(),
            retry: RetryPolicy::default(),
            request_timeout: Some(Duration::from_secs(30)),
            max_body_bytes: 1024 * 1024,
            limits: Limits::DEFAULT,
            version: OrpcVersion::V1,
            error: None,
        }
    }

    /// The version of oRPC's protocol to speak; [`OrpcVersion::V1`] by default. The two cannot
    /// share a URL (each reads the other's errors and stream ends wrongly), so pick the one the
    /// server speaks at `base_url`: `@orpc/server` 1.x or 2.x, or Outer's `rpc_prefix` (`/rpc`,
    /// version 1) or `rpc_v2_prefix` (`/rpc2`, version 2).
    ///
    /// With version 2 an input of `()` or `None` (JavaScript's `undefined`) is sent as no body
    /// and no `content-type`, a stream ends with `close`, and an `undefined` value or return
    /// value (no data) reads as `null`: as `()` or `None` in your types.
    ///
    /// ```
    /// # #[derive(Clone, Debug)] struct R;
    /// # #[derive(Debug)] struct NoTimer;
    /// # impl outer_core::rt::Timer for NoTimer {
    /// #     fn sleep(&self, _: std::time::Duration) -> outer_core::rt::Sleep { Box::pin(std::future::pending()) }
    /// #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
    /// # }
    /// # impl outer_http::client::Transport for R {
    /// #     type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
    /// #     fn connect(&self, _: &str, _: u16) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Self::Io>> + Send>> { unimplemented!() }
    /// #     fn timer(&self) -> std::sync::Arc<dyn outer_core::rt::Timer> { std::sync::Arc::new(NoTimer) }
    /// # }
    /// use outer_http::client::{ClientBuilder, OrpcVersion};
    /// // Outer serves oRPC 2 under `rpc_v2_prefix`, `/rpc2` by default.
    /// let client = ClientBuilder::new("http://127.0.0.1:3000/rpc2", R)
    ///     .orpc_version(OrpcVersion::V2)
    ///     .build()?;
    /// assert_eq!(client.orpc_version(), OrpcVersion::V2);
    /// # Ok::<(), outer_http::client::ConfigError>(())
    /// ```
    pub fn orpc_version(mut self, version: OrpcVersion) -> Self {
        self.version = version;
        self
    }

    /// How subscriptions retry: backoff, jitter, attempts and inactivity, all at once (so it
    /// replaces what [`max_attempts`](Self::max_attempts) and
    /// [`inactivity_timeout`](Self::inactivity_timeout) set before it).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Gives up after this many reconnects in a row without an event; `None`: never.
    pub fn max_attempts(mut self, attempts: Option<u32>) -> Self {
        self.retry.max_attempts = attempts;
        self
    }

    /// Reconnects a subscription when neither an event nor a keep-alive arrived for this long;
    /// `None`: never. Keep it above the server's keep-alive interval (oRPC's is 5 s).
    pub fn inactivity_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.retry.inactivity_timeout = timeout;
        self
    }

    /// How long a unary call may take, and a subscription's connection until the answer's
    /// head arrives (then it reconnects); `None`: no limit.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest answer read whole: a unary call's, or an error answer to a subscription.
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The largest data of one event; a larger one fails the subscription.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_event = bytes;
        self
    }

    /// The longest line of an event stream; a longer one fails the subscription.
    pub fn max_line_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_line = bytes;
        self
    }

    /// Sends this header with every request (authorization, say). An invalid name or value
    /// makes [`build`](Self::build) fail.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|err| ConfigError(format!("header name {name:?}: {err}")))
            .and_then(|parsed| {
                HeaderValue::from_str(value)
                    .map(|value| (parsed, value))
                    .map_err(|err| ConfigError(format!("header {name:?} value: {err}")))
            });
        match parsed {
            Ok((name, value)) => {
                self.headers.append(name, value);
            }
            Err(err) => {
                self.error.get_or_insert(err);
            }
        }
        self
    }

    /// The client, or the first setting it cannot use.
    pub fn build(self) -> Result<Client<R>, ConfigError> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let target = Target::parse(&self.base_url)?;
        let timer = self.transport.timer();
        Ok(Client {
            shared: Arc::new(Shared {
                dial: Box::new(self.transport),
                timer,
                target,
                headers: self.headers,
                retry: self.retry,
                request_timeout: self.request_timeout,
                max_body_bytes: self.max_body_bytes,
                limits: self.limits,
                version: self.version,
            }),
            _transport: PhantomData,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls and subscriptions can be spawned on a multi-threaded runtime; a client can be
    /// shared between tasks.
    #[test]
    fn calls_and_subscriptions_are_send() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        send::<Call<Value>>();
        send::<Subscription<Value>>();
        shared::<Client<NoTransport>>();
    }

    #[derive(Clone, Debug)]
    struct NoTransport;

    impl Transport for NoTransport {
        type Io = hyper_util::rt::TokioIo<tokio::io::DuplexStream>;
        fn connect(
            &self,
            _: &str,
            _: u16,
        ) -> Pin<Box<dyn Future<Output = io::Result<Self::Io>> + Send>> {
            Box::pin(async { Err(io::Error::from(io::ErrorKind::ConnectionRefused)) })
        }
        fn timer(&self) -> Arc<dyn Timer> {
            Arc::new(NeverFires)
        }
    }

    #[derive(Debug)]
    struct NeverFires;

    impl Timer for NeverFires {
        fn sleep(&self, _: Duration) -> outer_core::rt::Sleep {
            Box::pin(std::future::pending())
        }
        fn now(&self) -> Duration {
            Duration::ZERO
        }
    }

    /// What goes on the wire: the head's content-type and the body.
    fn sent(version: OrpcVersion, input: &Value) -> (Option<String>, Bytes) {
        let client = ClientBuilder::new("http://127.0.0.1:1/rpc", NoTransport)
            .orpc_version(version)
            .build()
            .unwrap();
        assert_eq!(client.orpc_version(), version);
        let prepared = client.shared.prepare("ping", input).unwrap();
        let request = client.shared.request(&prepared, None, false).unwrap();
        assert_eq!(request.uri(), "/rpc/ping");
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        (content_type, prepared.body)
    }

    #[test]
    fn undefined_input_is_an_empty_envelope_in_v1_and_nothing_at_all_in_v2() {
        let json = Some("application/json".to_owned());
        let input = serde_json::json!({"n": 1});
        for version in [OrpcVersion::V1, OrpcVersion::V2] {
            assert_eq!(
                sent(version, &input),
                (json.clone(), Bytes::from_static(br#"{"json":{"n":1}}"#))
            );
        }
        assert_eq!(
            sent(OrpcVersion::V1, &Value::Null),
            (json, Bytes::from_static(b"{}"))
        );
        // `@orpc/client` 2 sends neither a body nor a content-type (a logging proxy's view).
        assert_eq!(sent(OrpcVersion::V2, &Value::Null), (None, Bytes::new()));
        let default = ClientBuilder::new("http://127.0.0.1:1/rpc", NoTransport).build();
        assert_eq!(default.unwrap().orpc_version(), OrpcVersion::V1);
    }

    #[test]
    fn answers_are_read_by_the_version_spoken() {
        // `orpc-v2/nothing.http`: 200, no content-type, an empty body.
        assert_eq!(decode_answer(OrpcVersion::V2, 200, b""), Ok(Value::Null));
        // Meta types are numbers in version 1 and names in version 2.
        let v2 = br#"{"json":{"n":"7"},"meta":[["bigint","n"]]}"#;
        assert_eq!(
            decode_answer(OrpcVersion::V2, 200, v2),
            Ok(serde_json::json!({"n": 7}))
        );
        let wrong = decode_answer(OrpcVersion::V1, 200, v2).unwrap_err();
        assert_eq!(wrong.code(), "BAD_GATEWAY");
        // `orpc-v2/ping-invalid-input.http`: no status in the body, the answer's stands in.
        let body = br#"{"json":{"defined":false,"inferable":false,"code":"BAD_REQUEST","message":"Input validation failed","data":{"issues":[]}}}"#;
        let error = decode_answer(OrpcVersion::V2, 400, body).unwrap_err();
        assert_eq!(
            (error.code(), error.status(), error.message()),
            ("BAD_REQUEST", 400, "Input validation failed")
        );
    }

    #[test]
    fn base_urls_are_split_into_host_port_and_prefix() {
        let t = Target::parse("http://127.0.0.1:3000/rpc/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("127.0.0.1", 3000, "/rpc")
        );
        assert_eq!(t.authority, "127.0.0.1:3000");
        let t = Target::parse("http://[::1]/").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("::1", 80, "")
        );
        for bad in ["https://x/rpc", "x/rpc", "http://x/rpc?a=1", ""] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }
}
