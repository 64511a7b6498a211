//! The `-h2` protocols' subscribers: `post.live` over HTTP/2 with prior knowledge (cleartext,
//! the connection opening with HTTP/2's preface, as `curl --http2-prior-knowledge` does), on the
//! `h2` crate's client, on the generator's runtime. The request and the SSE body are those of
//! the protocol over HTTP/1.1 ([`Protocol::subscribe_parts`]); only the framing differs: no
//! chunked coding, the body arrives as DATA frames, and each frame's bytes are handed back to
//! the flow-control window as soon as they are read.
//!
//! Subscribers share connections in groups of `per_connection` ([`Pool`]): 1 gives each its own
//! connection (the per-stream cost of HTTP/2 against HTTP/1.1's), more multiplexes a group's
//! streams on one connection, as a browser's page or a gateway does.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use tokio::sync::OnceCell;

use crate::http::{HttpError, Url};
use crate::protocol::Protocol;

/// Each stream's receive window: hyper's HTTP/2 client's default (2 MiB), far above what the
/// server buffers for a stream (Outer's `max_send_buffer_bytes`, 64 KiB), so the window never
/// holds a stream back while the generator keeps up.
pub const STREAM_WINDOW: u32 = 2 * 1024 * 1024;

/// The connection's receive window, shared by its streams: hyper's client's default (5 MiB).
pub const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

fn h2_error(what: &str, err: h2::Error) -> HttpError {
    HttpError(format!("HTTP/2 {what}: {err}"))
}

/// The `post.live` request of a protocol, as HTTP/2 sends it.
#[derive(Clone, Debug)]
pub struct Subscription {
    method: http::Method,
    uri: http::Uri,
    body: Bytes,
}

impl Subscription {
    /// `protocol`'s `post.live` request at `url`.
    ///
    /// ```
    /// use outer_bench::{http::Url, http2::Subscription, protocol::Protocol};
    /// let url = Url::parse("http://127.0.0.1:3000/trpc").unwrap();
    /// let request = Subscription::new(Protocol::TrpcH2, &url).unwrap();
    /// assert_eq!(request.uri().to_string(), "http://127.0.0.1:3000/trpc/post.live");
    /// ```
    pub fn new(protocol: Protocol, url: &Url) -> Result<Self, HttpError> {
        let (method, path, body) = protocol.subscribe_parts(url);
        let uri = format!("http://{}{path}", url.authority)
            .parse()
            .map_err(|err| HttpError(format!("{path}: {err}")))?;
        Ok(Self {
            method: method
                .parse()
                .map_err(|err| HttpError(format!("{method}: {err}")))?,
            uri,
            body: Bytes::from_static(body),
        })
    }

    /// The request's URI (scheme and authority included, as HTTP/2's pseudo-headers carry them).
    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    fn request(&self) -> Result<http::Request<()>, HttpError> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone())
            .header("accept", "text/event-stream");
        if !self.body.is_empty() {
            builder = builder
                .header("content-type", "application/json")
                .header("content-length", self.body.len());
        }
        builder
            .body(())
            .map_err(|err| HttpError(format!("a request the generator cannot build: {err}")))
    }
}

/// The connections a run's HTTP/2 subscribers share: subscriber `i` opens its stream on
/// connection `i / per_connection`, which the first of them to get there opens.
#[derive(Debug)]
pub struct Pool {
    addr: SocketAddr,
    per_connection: usize,
    connections: Box<[OnceCell<SendRequest<Bytes>>]>,
    /// Connection `c` comes from `sources[c % len]`; none: the kernel's choice.
    sources: Vec<IpAddr>,
}

impl Pool {
    /// Connections for `subscribers` at `addr`, `per_connection` streams on each (at least 1).
    pub fn new(addr: SocketAddr, subscribers: usize, per_connection: usize) -> Self {
        let per_connection = per_connection.max(1);
        Self {
            addr,
            per_connection,
            connections: (0..subscribers.div_ceil(per_connection))
                .map(|_| OnceCell::new())
                .collect(),
            sources: Vec::new(),
        }
    }

    /// The same, its connections coming from these local addresses in turn (see
    /// [`crate::http::connect`]); none: the kernel's choice.
    pub fn with_sources(mut self, sources: Vec<IpAddr>) -> Self {
        self.sources = sources;
        self
    }

    /// How many connections the subscribers use.
    ///
    /// ```
    /// use outer_bench::http2::Pool;
    /// let addr = "127.0.0.1:1".parse().unwrap();
    /// assert_eq!(Pool::new(addr, 10_000, 100).connections(), 100);
    /// assert_eq!(Pool::new(addr, 3, 2).connections(), 2);
    /// assert_eq!(Pool::new(addr, 5, 1).connections(), 5);
    /// ```
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// Subscriber `index`'s connection, opened if it is the first of its group to ask (if that
    /// failed, the next to ask tries again).
    async fn connection(&self, index: usize) -> Result<SendRequest<Bytes>, HttpError> {
        let which = index / self.per_connection;
        let cell = self
            .connections
            .get(which)
            .ok_or_else(|| HttpError(format!("no subscriber {index} in this run")))?;
        let source = (!self.sources.is_empty()).then(|| self.sources[which % self.sources.len()]);
        let send = cell
            .get_or_try_init(|| async {
                let stream = crate::http::connect(self.addr, source).await?;
                stream.set_nodelay(true)?;
                let (send, connection) = h2::client::Builder::new()
                    .initial_window_size(STREAM_WINDOW)
                    .initial_connection_window_size(CONNECTION_WINDOW)
                    .enable_push(false)
                    .handshake::<_, Bytes>(stream)
                    .await
                    .map_err(|err| h2_error("handshake", err))?;
                // The connection's reads and writes, for every stream on it. It ends once every
                // stream and every `SendRequest` is gone (the run aborts its subscribers) or the
                // server closes it (each stream then reads an error).
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok::<_, HttpError>(send)
            })
            .await?;
        Ok(send.clone())
    }

    /// Opens subscriber `index`'s `post.live` stream, up to its response head.
    pub async fn subscribe(
        &self,
        index: usize,
        subscription: &Subscription,
    ) -> Result<RecvStream, HttpError> {
        let send = self.connection(index).await?;
        // Waits while the connection has as many streams open as the server allows.
        let mut send = send
            .ready()
            .await
            .map_err(|err| h2_error("connection", err))?;
        let no_body = subscription.body.is_empty();
        let (response, mut body) = send
            .send_request(subscription.request()?, no_body)
            .map_err(|err| h2_error("request", err))?;
        if !no_body {
            body.send_data(subscription.body.clone(), true)
                .map_err(|err| h2_error("request body", err))?;
        }
        let response = response.await.map_err(|err| h2_error("response", err))?;
        let (head, mut stream) = response.into_parts();
        if head.status != http::StatusCode::OK {
            let mut text = Vec::new();
            while let Some(Ok(data)) = stream.data().await {
                text.extend_from_slice(&data);
            }
            return Err(HttpError(format!(
                "post.live answered {}: {}",
                head.status.as_u16(),
                String::from_utf8_lossy(&text)
            )));
        }
        Ok(stream)
    }
}

/// The next piece of a stream's body, its bytes given back to the flow-control windows at once;
/// `Ok(None)` when the stream ends.
pub async fn next(stream: &mut RecvStream) -> Result<Option<Bytes>, HttpError> {
    match stream.data().await {
        None => Ok(None),
        Some(Err(err)) => Err(h2_error("stream", err)),
        Some(Ok(data)) => {
            stream
                .flow_control()
                .release_capacity(data.len())
                .map_err(|err| h2_error("flow control", err))?;
            Ok(Some(data))
        }
    }
}
