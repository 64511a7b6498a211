//! The service: an HTTP request in, an HTTP response out, for hyper and for tower alike.
//!
//! It maps hyper's types to the core's protocol-neutral ones and back, enforces the body and
//! stream limits, and refuses work during shutdown. The wire protocol itself is the core's
//! (`outer_core::protocol::orpc`); sockets and tasks are the runtime adapters'.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{select, Either};
use futures_util::FutureExt;
use http::header::{HeaderName, HeaderValue, CONNECTION};
use http::{Request, Response, StatusCode};
use outer_core::protocol::orpc::OrpcVersion;
use outer_core::protocol::{trpc, Answer, Answered, Body as CoreBody, HttpResponse};
use outer_core::rt::{Spawn, Timer};
use outer_core::{App, ErrorCode, RequestHead, RpcError};
use tracing::Instrument;

use crate::body::{read_capped, OuterBody, ReadError, StreamSlot};
use crate::config::{normalize_prefix, ServerConfig};
use crate::metrics::{StreamMetrics, Transport, UNKNOWN_PROCEDURE};
use crate::shutdown::Shutdown;
use crate::ws;

use crate::stack::BoxError;

/// Outer as an HTTP service: answers oRPC calls under [`ServerConfig::rpc_prefix`] and 404 to
/// anything else, with event streams written as they happen.
///
/// It is both a [`hyper::service::Service`] (the runtime adapters serve it on each connection)
/// and a [`tower_service::Service`] for any request body, so it mounts in axum in one line.
/// Clones share everything: the app, the limits, the counters and the shutdown signal.
///
/// ```
/// use std::sync::Arc;
/// use outer_core::rt::{Sleep, Timer};
/// use outer_core::{procedure, Router};
/// use outer_http::{OuterService, ServerConfig};
///
/// # #[derive(Debug)] struct MyTimer;
/// # impl Timer for MyTimer {
/// #     fn sleep(&self, _: std::time::Duration) -> Sleep { Box::pin(std::future::pending()) }
/// #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
/// # }
/// let router = Router::new()
///     .route("ping", procedure::<()>().input::<u32>().query(|req| async move { Ok(req.input) }));
/// // The runtime adapters pass their timer (`outer_tokio::TokioRuntime`, `outer_smol::SmolRuntime`).
/// let service = OuterService::new(router, ServerConfig::default(), Arc::new(MyTimer));
/// assert_eq!(service.active_streams(), 0);
/// ```
///
/// # Mounting in axum
///
/// `nest_service` strips the nesting path before the service sees the request, so serve at the
/// root of the nest with `rpc_prefix: ""` (`outer_tokio`'s crate docs have the whole example):
///
/// ```text
/// let config = ServerConfig { rpc_prefix: String::new(), ..Default::default() };
/// let app = axum::Router::new().nest_service("/rpc", outer_tokio::service(router, config));
/// ```
///
/// `route_service("/rpc/{*path}", service)` does not strip it: keep the default `"/rpc"` there.
pub struct OuterService<Ctx> {
    shared: Arc<Shared<Ctx>>,
}

pub(crate) struct Shared<Ctx> {
    pub(crate) app: App<Ctx>,
    pub(crate) config: ServerConfig,
    pub(crate) timer: Arc<dyn Timer>,
    pub(crate) shutdown: Shutdown,
    /// Fired by [`OuterService::abort_streams`], then replaced: only streams open at that
    /// moment are cut.
    abort: std::sync::Mutex<Shutdown>,
    pub(crate) streams: Arc<AtomicUsize>,
    requests: AtomicU64,
    /// Runs WebSockets upgraded under a server Outer does not own (axum): see
    /// [`OuterService::with_spawner`].
    spawn: std::sync::OnceLock<Arc<dyn Spawn>>,
}

impl<Ctx> Shared<Ctx> {
    /// Completes when the streams and sockets open now must be cut as a network failure would.
    pub(crate) fn abort_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        self.abort
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .wait()
    }
}

impl<Ctx> Clone for OuterService<Ctx> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Ctx> fmt::Debug for OuterService<Ctx> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OuterService")
            .field("config", &self.shared.config)
            .field("active_streams", &self.active_streams())
            .field("total_requests", &self.total_requests())
            .field("shutting_down", &self.shared.shutdown.is_triggered())
            .finish()
    }
}

impl<Ctx: Clone + Send + 'static> OuterService<Ctx> {
    /// Serves `app` (or a [`Router`](outer_core::Router) whose context is `Default`) with
    /// `config`, running keep-alives, stream deadlines and header timeouts on `timer`.
    pub fn new(app: impl Into<App<Ctx>>, mut config: ServerConfig, timer: Arc<dyn Timer>) -> Self {
        config.rpc_prefix = normalize_prefix(&config.rpc_prefix);
        config.rpc_v2_prefix = config.rpc_v2_prefix.as_deref().map(normalize_prefix);
        config.trpc_prefix = config.trpc_prefix.as_deref().map(normalize_prefix);
        Self {
            shared: Arc::new(Shared {
                app: app.into(),
                config,
                timer,
                shutdown: Shutdown::new(),
                abort: std::sync::Mutex::new(Shutdown::new()),
                streams: Arc::new(AtomicUsize::new(0)),
                requests: AtomicU64::new(0),
                spawn: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Gives the service a spawner for the WebSockets it accepts under a server it does not own
    /// (axum's `serve`, a hyper server of your own made `with_upgrades()`): each upgraded
    /// socket runs as a task there. Outer's own servers (`outer_tokio::serve`,
    /// `outer_smol::serve`, `outer_monoio::serve`) need none: they run a socket in its
    /// connection's task. `outer_tokio::service` and `outer_smol::service` set their runtime.
    /// Only the first spawner given is kept; clones share it.
    pub fn with_spawner(self, spawn: Arc<dyn Spawn>) -> Self {
        let _ = self.shared.spawn.set(spawn);
        self
    }

    /// Answers one request. This is what both `Service` impls call.
    pub fn respond<B>(&self, request: Request<B>) -> ResponseFuture
    where
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        ResponseFuture(Box::pin(respond(Arc::clone(&self.shared), request)))
    }
}

impl<Ctx> OuterService<Ctx> {
    /// Cuts every event stream open now, the way a network failure would: the connection closes
    /// without the response's final chunk, and each handler is dropped (its cleanup runs).
    /// Clients that retry reconnect and resume after their last id. For failure tests, and for
    /// shedding load; streams opened afterwards are not affected.
    pub fn abort_streams(&self) {
        abort_streams(&self.shared);
    }

    /// The configuration, with the prefix normalized (`"/rpc/"` reads `"/rpc"`, `"/"` reads
    /// `""`).
    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// What every clone shares.
    pub(crate) fn shared(&self) -> &Arc<Shared<Ctx>> {
        &self.shared
    }

    /// The timer the service runs on.
    pub fn timer(&self) -> &Arc<dyn Timer> {
        &self.shared.timer
    }

    /// Event streams open now. A stream stops counting as soon as it ends, or its body is
    /// dropped because the client went away.
    pub fn active_streams(&self) -> usize {
        self.shared.streams.load(Ordering::SeqCst)
    }

    /// Requests received since the service was made, answered or not.
    pub fn total_requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The service's shutdown signal. Triggering it ends every open event stream cleanly and
    /// answers new requests 503; the servers in `outer-tokio` and `outer-smol` trigger it in
    /// their `shutdown`.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shared.shutdown
    }
}

fn abort_streams<Ctx>(shared: &Shared<Ctx>) {
    let fired = {
        let mut abort = shared
            .abort
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *abort)
    };
    fired.trigger();
}

async fn respond<Ctx: Clone + Send + 'static, B>(
    shared: Arc<Shared<Ctx>>,
    request: Request<B>,
) -> Response<OuterBody>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let span = tracing::debug_span!(
        "outer.call",
        method = %parts.method,
        path = parts.uri.path(),
        protocol = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let response = dispatch(&shared, parts, body, &span)
        .instrument(span.clone())
        .await;
    span.record("status", response.status().as_u16());
    tracing::debug!(parent: &span, stream = response.body().is_stream(), "answered");
    response
}

async fn dispatch<Ctx: Clone + Send + 'static, B>(
    shared: &Arc<Shared<Ctx>>,
    parts: http::request::Parts,
    body: B,
    span: &tracing::Span,
) -> Response<OuterBody>
where
    B: http_body::Body,
    B::Error: Into<BoxError>,
{
    if shared.shutdown.is_triggered() {
        let error = RpcError::new(
            ErrorCode::SERVICE_UNAVAILABLE,
            "The server is shutting down; retry on another",
        );
        return closing(error_response(Protocol::ORPC, &error));
    }
    // The head moves into the call below; a clone of the URI (its bytes are shared, not
    // copied) keeps the path and the query at hand for routing.
    let uri = parts.uri.clone();
    let path = uri.path();
    let config = &shared.config;
    if config.websocket.enabled && ws::wants_upgrade(&parts.headers) {
        if let Some(protocol) = websocket_route(config, path) {
            span.record("protocol", protocol.name());
            return upgrade(shared, parts, protocol);
        }
    }
    let Some((protocol, route)) = route(config, path) else {
        let error = RpcError::new(
            ErrorCode::NOT_FOUND,
            format!(
                "Nothing is served at {path}: procedures are under {}/",
                config.rpc_prefix
            ),
        );
        return error_response(Protocol::ORPC, &error);
    };
    span.record("protocol", protocol.name());
    let cap = config.max_body_bytes;
    let mut read = pin!(read_capped(body, cap));
    // Most bodies have arrived whole with their headers (or are empty): arm the timer only for
    // one still coming, rather than a timer per request.
    let read = match read.as_mut().now_or_never() {
        Some(read) => read,
        None => match config.body_read_timeout {
            Some(limit) => match select(read, shared.timer.sleep(limit)).await {
                Either::Left((read, _)) => read,
                Either::Right(_) => Err(ReadError::TimedOut),
            },
            None => read.await,
        },
    };
    let refused = |error: RpcError| {
        // A call whose request could not even be read: its procedure is not known.
        crate::metrics::answered(None, protocol.name(), false, Some(&error));
        error_response(protocol, &error)
    };
    let bytes = match read {
        Ok(bytes) => bytes,
        Err(ReadError::TimedOut) => {
            let limit = config.body_read_timeout.unwrap_or_default();
            let error = RpcError::new(
                ErrorCode::TIMEOUT,
                format!("The request body did not arrive within {limit:?}"),
            );
            // What is left of the body may still come: the connection cannot carry another
            // request, and closing it frees its descriptor.
            return closing(refused(error));
        }
        Err(ReadError::TooLarge) => {
            let error = RpcError::new(
                ErrorCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than the limit of {cap} bytes"),
            );
            // The rest of the body is never read, so the connection cannot carry another
            // request: say so, and hyper closes it after this answer.
            return closing(refused(error));
        }
        Err(ReadError::Failed(err)) => {
            let error = RpcError::new(
                ErrorCode::BAD_REQUEST,
                format!("Cannot read the request body: {err}"),
            );
            return closing(refused(error));
        }
    };
    let query = uri.query().unwrap_or_default();
    let head = request_head(parts);
    let timer = Some(Arc::clone(&shared.timer));
    // Calls answered at once are counted as they are answered; a stream's procedure is kept
    // for the stream, which counts its call when it ends.
    let mut opened = None;
    let mut observe = |answered: Answered<'_>| match answered.answer {
        Answer::Stream => {
            let procedure = answered.procedure.unwrap_or(UNKNOWN_PROCEDURE);
            opened = Some((procedure.to_owned(), answered.resumed));
        }
        Answer::Value => {
            crate::metrics::answered(answered.procedure, protocol.name(), answered.resumed, None)
        }
        Answer::Error(error) => crate::metrics::answered(
            answered.procedure,
            protocol.name(),
            answered.resumed,
            Some(error),
        ),
    };
    let (app, observe) = (&shared.app, &mut observe);
    let response = match protocol {
        Protocol::Orpc(version) => {
            let options = &config.orpc;
            (version.handle_observed(app, head, route, &bytes, options, timer, observe)).await
        }
        Protocol::Trpc => {
            let options = &config.trpc;
            trpc::handle_observed(app, head, route, query, &bytes, options, timer, observe).await
        }
    };
    into_http(response, shared, protocol, span, opened)
}

/// Accepts a WebSocket upgrade: answers 101 and leaves the socket to the connection (Outer's own
/// servers) or to the spawner (another server).
fn upgrade<Ctx: Clone + Send + 'static>(
    shared: &Arc<Shared<Ctx>>,
    mut parts: http::request::Parts,
    protocol: Protocol,
) -> Response<OuterBody> {
    let response = match ws::accept(&parts.method, &parts.headers) {
        Ok(response) => response,
        Err(ws::Refusal { error, version }) => {
            let mut response = error_response(protocol, &error);
            if let Some(version) = version {
                response
                    .headers_mut()
                    .insert(http::header::SEC_WEBSOCKET_VERSION, version);
            }
            return response;
        }
    };
    let slot = parts.extensions.remove::<ws::UpgradeSlot>();
    let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
    let upgrade = ws::Upgrade {
        protocol: match protocol {
            Protocol::Orpc(_) => ws::WsProtocol::Orpc,
            Protocol::Trpc => ws::WsProtocol::Trpc,
        },
        connection_params: protocol == Protocol::Trpc
            && ws::asks_connection_params(parts.uri.query().unwrap_or_default()),
        head: request_head(parts),
    };
    if let Some(slot) = slot {
        slot.put(upgrade);
        return response;
    }
    match (on_upgrade, shared.spawn.get()) {
        (Some(on_upgrade), Some(spawn)) => {
            let shared = Arc::clone(shared);
            spawn.spawn(Box::pin(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        ws::Socket::new(shared, upgrade, ws::io::TokioIo(upgraded), Vec::new())
                            .await;
                    }
                    Err(error) => tracing::debug!(%error, "the WebSocket upgrade failed"),
                }
            }));
            response
        }
        _ => {
            let error = RpcError::new(
                ErrorCode::NOT_IMPLEMENTED,
                "WebSocket is not available here: the server carrying this service does not \
                 hand over upgraded connections, or the service has no spawner \
                 (OuterService::with_spawner)",
            );
            error_response(protocol, &error)
        }
    }
}

/// The protocol whose WebSocket is served at `path`: the prefix itself (`/trpc`, `/rpc`), with or
/// without a trailing slash. oRPC 1's only: oRPC 2's WebSocket link is not served, so an oRPC 2
/// prefix that took over oRPC 1's takes its WebSocket away too.
fn websocket_route(config: &ServerConfig, path: &str) -> Option<Protocol> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if config.trpc_prefix.as_deref() == Some(path) {
        return Some(Protocol::Trpc);
    }
    let taken_over = config.rpc_v2_prefix.as_deref() == Some(path);
    (config.rpc_prefix == path && !taken_over).then_some(Protocol::ORPC)
}

/// The head a context is built from: what the protocols read, the peer's address, and the
/// request's extensions, moved in whole (what axum or a tower layer put there stays reachable,
/// see [`HttpHead`](crate::HttpHead)).
fn request_head(parts: http::request::Parts) -> RequestHead {
    let mut head = RequestHead::new(parts.method.as_str(), parts.uri.path());
    head.query = parts.uri.query().unwrap_or_default().to_owned();
    head.headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    head.peer = parts.extensions.get::<PeerAddr>().map(|peer| peer.0);
    head.extensions.insert(parts.extensions);
    head
}

/// The address of the client at the other end of a request's connection: the servers of
/// `outer-tokio` and `outer-smol` put it in each request's extensions, and it becomes
/// [`RequestHead::peer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// The request's extensions, from a context builder: `head.extension::<T>()` finds a `T` that
/// the HTTP layer or a framework around it (axum's `Extension` layer, its `ConnectInfo`, a
/// tower layer) put in the request.
///
/// ```
/// use outer_core::RequestHead;
/// use outer_http::HttpHead;
///
/// #[derive(Clone, Debug, PartialEq)] struct Session(u32);
/// let mut extensions = http::Extensions::new();
/// extensions.insert(Session(7));
/// let mut head = RequestHead::new("GET", "/trpc/me");
/// head.extensions.insert(extensions);
/// assert_eq!(head.extension::<Session>(), Some(&Session(7)));
/// ```
pub trait HttpHead {
    /// The value of type `T` in the request's extensions.
    fn extension<T: Send + Sync + 'static>(&self) -> Option<&T>;
}

impl HttpHead for RequestHead {
    fn extension<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.extensions.get::<T>().or_else(|| {
            self.extensions
                .get::<http::Extensions>()
                .and_then(|extensions| extensions.get::<T>())
        })
    }
}

/// The wire protocol a path is served with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Orpc(OrpcVersion),
    Trpc,
}

impl Protocol {
    /// oRPC 1, what a path outside every prefix is answered in.
    const ORPC: Protocol = Protocol::Orpc(OrpcVersion::V1);

    /// The name in metrics and traces.
    fn name(self) -> &'static str {
        match self {
            Protocol::Orpc(OrpcVersion::V1) => "orpc",
            Protocol::Orpc(OrpcVersion::V2) => "orpc2",
            Protocol::Trpc => "trpc",
        }
    }
}

/// Which protocol serves `path`, and the path under its prefix. The longer prefix is tried
/// first, so `/trpc/x` stays tRPC's even when oRPC is served at the root; of two equal ones,
/// oRPC 2's wins (it took oRPC 1's over).
fn route<'p>(config: &ServerConfig, path: &'p str) -> Option<(Protocol, &'p str)> {
    let orpc = (Protocol::ORPC, config.rpc_prefix.as_str());
    let orpc2 = config.rpc_v2_prefix.as_deref();
    let mut prefixes = [
        orpc2.map(|p| (Protocol::Orpc(OrpcVersion::V2), p)),
        Some(orpc),
        config.trpc_prefix.as_deref().map(|p| (Protocol::Trpc, p)),
    ];
    prefixes.sort_by_key(|p| core::cmp::Reverse(p.map_or(0, |(_, prefix)| prefix.len() + 1)));
    prefixes
        .into_iter()
        .flatten()
        .find_map(|(protocol, prefix)| under_prefix(prefix, path).map(|route| (protocol, route)))
}

/// The path under `prefix` (`/post/live` for `/rpc/post/live`), or `None` when `path` is
/// outside it (`/rpcx` is outside `/rpc`).
fn under_prefix<'p>(prefix: &str, path: &'p str) -> Option<&'p str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

/// `opened`: for a stream, the procedure that opened it and whether it resumed.
fn into_http<Ctx>(
    response: HttpResponse,
    shared: &Shared<Ctx>,
    protocol: Protocol,
    span: &tracing::Span,
    opened: Option<(String, bool)>,
) -> Response<OuterBody> {
    let HttpResponse {
        status,
        headers,
        body,
    } = response;
    let body = match body {
        CoreBody::Full(bytes) => OuterBody::full(bytes),
        CoreBody::Events(events) => {
            let (procedure, resumed) =
                opened.unwrap_or_else(|| (UNKNOWN_PROCEDURE.to_owned(), false));
            let (max, name) = (shared.config.max_streams, protocol.name());
            let slot = match StreamSlot::take(&shared.streams, max, Transport::Sse) {
                Ok(slot) => slot,
                Err(error) => {
                    // The handler was built but never polled: dropping it now runs nothing but
                    // its cleanup.
                    drop(events);
                    crate::metrics::answered(Some(&procedure), name, resumed, Some(&error));
                    return error_response(protocol, &error);
                }
            };
            let events = events.end_on(shared.shutdown.wait());
            let abort = shared.abort_signal();
            let metrics =
                StreamMetrics::open(&procedure, name, Transport::Sse, resumed, &shared.shutdown);
            let timer = Arc::clone(&shared.timer);
            OuterBody::events(events, slot, abort, span.clone(), metrics, timer)
        }
    };
    let streaming = body.is_stream();
    let mut http = Response::new(body);
    if streaming {
        // The request was read to its end before any call: the connection may serve the
        // client's next one after this stream (see `server::hand_off`).
        http.extensions_mut().insert(crate::server::RequestRead);
    }
    *http.status_mut() = StatusCode::from_u16(status).unwrap_or_else(|_| {
        tracing::warn!(status, "a response had an invalid status; sending 500");
        StatusCode::INTERNAL_SERVER_ERROR
    });
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                http.headers_mut().append(name, value);
            }
            _ => tracing::warn!(name, "dropped a response header that HTTP cannot carry"),
        }
    }
    http
}

/// An error body in the protocol's shape, with the error's status.
fn error_response(protocol: Protocol, error: &RpcError) -> Response<OuterBody> {
    let body: bytes::Bytes = match protocol {
        Protocol::Orpc(version) => version.error_body(error).into(),
        Protocol::Trpc => match trpc::error_response(error, None).body {
            CoreBody::Full(bytes) => bytes.into(),
            CoreBody::Events(_) => bytes::Bytes::new(),
        },
    };
    let mut response = Response::new(OuterBody::full(body));
    *response.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Asks for the connection to close after this response.
fn closing(mut response: Response<OuterBody>) -> Response<OuterBody> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The future of a response. It never fails: every failure is an HTTP response with an oRPC
/// error body.
pub struct ResponseFuture(Pin<Box<dyn Future<Output = Response<OuterBody>> + Send>>);

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<OuterBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // The handler runs inside this poll: give its publisher subscriptions a budget.
        outer_core::coop::budgeted(|| self.0.as_mut().poll(cx)).map(Ok)
    }
}

impl<Ctx: Clone + Send + 'static, B> hyper::service::Service<Request<B>> for OuterService<Ctx>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<OuterBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<B>) -> ResponseFuture {
        self.respond(request)
    }
}

impl<Ctx: Clone + Send + 'static, B> tower_service::Service<Request<B>> for OuterService<Ctx>
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<OuterBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    /// Always ready: the limits are enforced per request, with an answer, not by back-pressure.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        self.respond(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use http_body_util::{BodyExt, Full};
    use outer_core::protocol::{orpc, Framing};
    use outer_core::rt::Sleep;
    use outer_core::{event_iterator, procedure, Router};
    use serde_json::{json, Value};
    use std::time::Duration;

    #[derive(Debug)]
    struct NeverTimer;
    impl Timer for NeverTimer {
        fn sleep(&self, _: Duration) -> Sleep {
            Box::pin(std::future::pending())
        }
        fn now(&self) -> Duration {
            Duration::ZERO
        }
    }

    fn service(config: ServerConfig) -> OuterService<()> {
        let os = procedure::<()>();
        let router = Router::new()
            .route(
                "ping",
                os.input::<Value>()
                    .query(|req| async move { Ok(req.input) }),
            )
            .route(
                "forever",
                os.subscription(|_| async {
                    Ok(event_iterator(|_emit: outer_core::Emitter<u32>| {
                        std::future::pending::<Result<(), RpcError>>()
                    }))
                }),
            );
        OuterService::new(router, config, Arc::new(NeverTimer))
    }

    fn post(path: &str, body: &'static str) -> Request<Full<bytes::Bytes>> {
        Request::post(path)
            .body(Full::new(bytes::Bytes::from_static(body.as_bytes())))
            .unwrap()
    }

    fn call(
        service: &OuterService<()>,
        request: Request<Full<bytes::Bytes>>,
    ) -> Response<OuterBody> {
        let mut service = service.clone();
        block_on(tower_service::Service::call(&mut service, request)).unwrap()
    }

    fn json_body(response: Response<OuterBody>) -> Value {
        let bytes = block_on(response.into_body().collect()).unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn paths_outside_the_prefix_are_not_found_and_inside_it_are_routed() {
        assert_eq!(under_prefix("/rpc", "/rpc/ping"), Some("/ping"));
        assert_eq!(under_prefix("/rpc", "/rpc"), Some(""));
        assert_eq!(under_prefix("/rpc", "/rpcx/ping"), None);
        assert_eq!(under_prefix("", "/ping"), Some("/ping"));

        let service = service(ServerConfig::default());
        let ok = call(&service, post("/rpc/ping", r#"{"json":{"n":1}}"#));
        assert_eq!(ok.status(), 200);
        assert_eq!(json_body(ok), json!({"json": {"n": 1}}));
        let missing = call(&service, post("/other", ""));
        assert_eq!(missing.status(), 404);
        assert_eq!(json_body(missing)["json"]["code"], "NOT_FOUND");
    }

    #[test]
    fn each_orpc_version_answers_under_its_own_prefix_and_v2_can_take_v1s_over() {
        let both = service(ServerConfig::default());
        // A v1 and a v2 error body for the same refusal, from the same router.
        let v1 = json_body(call(&both, post("/rpc/nope", "")));
        assert_eq!(v1["json"]["status"], 404);
        assert!(v1["json"].get("inferable").is_none(), "{v1}");
        let v2 = json_body(call(&both, post("/rpc2/nope", "")));
        assert_eq!(v2["json"]["inferable"], false);
        assert!(v2["json"].get("status").is_none(), "{v2}");
        assert_eq!(
            json_body(call(&both, post("/rpc2/ping", r#"{"json":{"n":1}}"#))),
            json!({"json": {"n": 1}})
        );

        let taken_over = service(ServerConfig {
            rpc_v2_prefix: Some("/rpc/".into()),
            ..Default::default()
        });
        let v2 = json_body(call(&taken_over, post("/rpc/nope", "")));
        assert_eq!(v2["json"]["inferable"], false, "{v2}");

        let off = service(ServerConfig {
            rpc_v2_prefix: None,
            ..Default::default()
        });
        let outside = json_body(call(&off, post("/rpc2/ping", r#"{"json":{"n":1}}"#)));
        assert_eq!(outside["json"]["code"], "NOT_FOUND");
    }

    #[test]
    fn an_empty_prefix_serves_at_the_root_as_under_a_nest() {
        let config = ServerConfig {
            rpc_prefix: "/".into(),
            ..Default::default()
        };
        let service = service(config);
        assert_eq!(service.config().rpc_prefix, "");
        let ok = call(&service, post("/ping", r#"{"json":2}"#));
        assert_eq!(json_body(ok), json!({"json": 2}));
    }

    #[test]
    fn a_body_over_the_cap_is_413_with_an_orpc_error_and_closes_the_connection() {
        let config = ServerConfig {
            max_body_bytes: 8,
            ..Default::default()
        };
        let response = call(&service(config), post("/rpc/ping", r#"{"json":{"n":1}}"#));
        assert_eq!(response.status(), 413);
        assert_eq!(response.headers()[CONNECTION], "close");
        let body = json_body(response);
        assert_eq!(body["json"]["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["json"]["status"], 413);
    }

    #[test]
    fn after_shutdown_new_requests_are_503_and_open_streams_end() {
        let service = service(ServerConfig::default());
        let stream = call(&service, post("/rpc/forever", ""));
        assert_eq!(service.active_streams(), 1);
        service.shutdown().trigger();
        let refused = call(&service, post("/rpc/ping", r#"{"json":1}"#));
        assert_eq!(refused.status(), 503);
        assert_eq!(json_body(refused)["json"]["code"], "SERVICE_UNAVAILABLE");
        let text = block_on(stream.into_body().collect()).unwrap().to_bytes();
        let text = String::from_utf8(text.to_vec()).unwrap();
        let mut interruption = outer_core::protocol::Chunk::new();
        Framing::interrupted(
            &mut orpc::OrpcFraming::new(OrpcVersion::V1),
            &mut interruption,
        );
        let interruption = interruption.into_string();
        assert!(
            interruption.contains("SERVICE_UNAVAILABLE"),
            "{interruption}"
        );
        assert_eq!(text, format!(": \n\n{interruption}"), "no done frame");
        assert_eq!(service.active_streams(), 0);
    }

    #[test]
    fn streams_past_the_limit_are_503_and_a_dropped_stream_frees_its_place() {
        let config = ServerConfig {
            max_streams: 1,
            ..Default::default()
        };
        let service = service(config);
        let first = call(&service, post("/rpc/forever", ""));
        assert!(first.body().is_stream());
        let second = call(&service, post("/rpc/forever", ""));
        assert_eq!(second.status(), 503);
        assert_eq!(json_body(second)["json"]["code"], "SERVICE_UNAVAILABLE");
        drop(first);
        assert_eq!(service.active_streams(), 0);
        let third = call(&service, post("/rpc/forever", ""));
        assert!(third.body().is_stream());
        assert_eq!(service.total_requests(), 3);
    }
}
