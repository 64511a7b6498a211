//! The loopback HTTP suite both runtime adapters run, written once: a test router whose
//! handlers the test controls, a small blocking HTTP/1.1 client that reads bodies chunk by
//! chunk (so tests see raw bytes as they arrive), and the scenarios. Each adapter implements
//! [`TestRuntime`] and expands [`http_suite!`](crate::http_suite) in its `tests/`.
//!
//! Not part of the public API: behind the `testing` feature, for this workspace's tests.
//! Waits here are deadlines for liveness (a hung server fails the test instead of hanging it),
//! never assertions about how long something took.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use outer_core::protocol::orpc::OrpcFraming;
use outer_core::protocol::Framing as _;
use outer_core::rt::Timer;
use outer_core::{event_iterator, query, subscription, tracked, Request, Router, RpcError};
use serde_json::{json, Value};

use crate::{OuterService, ServerConfig, Shutdown};

/// How long any one wait may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// A runtime the suite runs on.
pub trait TestRuntime {
    /// A running server.
    type Server: TestServer;
    /// The runtime's timer, for the service.
    fn timer() -> Arc<dyn Timer>;
    /// Serves `service` on a fresh loopback port.
    fn start(service: OuterService<()>) -> Self::Server;
}

/// A running server, driven from blocking test code.
pub trait TestServer {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
    /// Its open event streams.
    fn active_streams(&self) -> usize;
    /// Shuts it down gracefully, blocking until done; true when it finished within the grace.
    fn shutdown(self) -> bool;
}

/// What the test router's handlers report, and the gate the test opens.
#[derive(Debug, Default)]
pub struct Probe {
    /// Opened by the test to let `gated` yield its second event.
    pub gate: Shutdown,
    /// Stream handlers that have started running.
    pub started: AtomicUsize,
    /// Stream handlers dropped: their `finally`.
    pub cleanups: AtomicUsize,
}

struct Cleanup(Arc<Probe>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.cleanups.fetch_add(1, Ordering::SeqCst);
    }
}

/// The test router:
/// - `ping`: answers its input.
/// - `gated`: yields `{"n":1}` (id 1), waits for the probe's gate, yields `{"n":2}` (id 2),
///   returns `"end"`.
/// - `silent`: never yields and never ends.
/// - `hang`: a query that never answers.
///
/// Each but `ping` counts in `started` when it first runs and in `cleanups` when dropped.
pub fn router(probe: &Arc<Probe>) -> Router<()> {
    let gated = Arc::clone(probe);
    let silent = Arc::clone(probe);
    let hang = Arc::clone(probe);
    Router::new()
        .route(
            "ping",
            query(|req: Request<(), Value>| async move { Ok::<_, RpcError>(req.input) }),
        )
        .route(
            "hang",
            query(move |_: Request<(), ()>| {
                let probe = Arc::clone(&hang);
                let cleanup = Cleanup(Arc::clone(&probe));
                async move {
                    let _cleanup = cleanup;
                    probe.started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok::<_, RpcError>(())
                }
            }),
        )
        .route(
            "gated",
            subscription(move |_: Request<(), ()>| {
                let probe = Arc::clone(&gated);
                let cleanup = Cleanup(Arc::clone(&probe));
                event_iterator(move |mut emit| async move {
                    let _cleanup = cleanup;
                    probe.started.fetch_add(1, Ordering::SeqCst);
                    emit.send(tracked(1, json!({"n": 1}))?).await?;
                    probe.gate.wait().await;
                    emit.send(tracked(2, json!({"n": 2}))?).await?;
                    Ok::<_, RpcError>("end")
                })
            }),
        )
        .route(
            "silent",
            subscription(move |_: Request<(), ()>| {
                let probe = Arc::clone(&silent);
                let cleanup = Cleanup(Arc::clone(&probe));
                event_iterator(move |_emit: outer_core::Emitter<Value>| async move {
                    let _cleanup = cleanup;
                    probe.started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok::<_, RpcError>(())
                })
            }),
        )
}

/// Starts a server on runtime `R` with the test router and `config`.
pub fn start<R: TestRuntime>(config: ServerConfig) -> (R::Server, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let service = OuterService::new(router(&probe), config, R::timer());
    (R::start(service), probe)
}

/// A config without keep-alives, so bodies can be compared byte for byte.
pub fn quiet_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.orpc.timing.keep_alive = None;
    config
}

/// What the oRPC framing writes when a stream is cut short (deadline or shutdown) instead of
/// `done`: a retryable error, so clients reconnect and resume.
pub fn interruption() -> String {
    let mut out = String::new();
    OrpcFraming.interrupted(&mut out);
    out
}

/// Polls `done` until it holds, failing the test after [`DEADLINE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How a response body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Its framing said it was complete (the last chunk, or all of its content-length).
    Clean,
    /// The connection closed before that.
    Cut,
}

/// A response read off the wire: the status and headers at once, the body as it comes.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    /// Everything of the body read so far, decoded from its framing.
    pub text: String,
    framing: Framing,
    end: Option<End>,
}

#[derive(Debug)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

/// Opens a connection and sends `request` as is, without waiting for an answer.
pub fn open(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).expect("write the request");
    stream
}

/// Opens a connection, sends `request` as is, and reads the answer's head.
pub fn send(addr: SocketAddr, request: &[u8]) -> RawResponse {
    read_head(open(addr, request))
}

/// Whether the server closed `stream` (rather than answering on it), within [`DEADLINE`].
pub fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => bytes.is_empty(),
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// `POST {path}` with a JSON body.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> RawResponse {
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    send(addr, request.as_bytes())
}

fn read_head(stream: TcpStream) -> RawResponse {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read a header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let framing = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else if let Some(length) = find("content-length") {
        Framing::Length(length.parse().expect("a content-length"))
    } else {
        Framing::UntilClose
    };
    RawResponse {
        status,
        headers,
        reader,
        text: String::new(),
        framing,
        end: None,
    }
}

impl RawResponse {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads the next piece of the body (one chunk when chunked), or `None` at its end.
    pub fn read_chunk(&mut self) -> Option<String> {
        if self.end.is_some() {
            return None;
        }
        let bytes = match self.framing {
            Framing::Chunked => {
                let mut size = String::new();
                if self.reader.read_line(&mut size).expect("read a chunk size") == 0 {
                    self.end = Some(End::Cut);
                    return None;
                }
                let hex = size.trim_end().split(';').next().unwrap_or_default();
                let len = usize::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
                let mut bytes = vec![0; len + 2];
                self.reader.read_exact(&mut bytes).expect("read a chunk");
                assert_eq!(&bytes[len..], b"\r\n", "a chunk ends with CRLF");
                bytes.truncate(len);
                if len == 0 {
                    self.end = Some(End::Clean);
                    return None;
                }
                bytes
            }
            Framing::Length(len) => {
                let mut bytes = vec![0; len];
                self.reader.read_exact(&mut bytes).expect("read the body");
                self.end = Some(End::Clean);
                bytes
            }
            Framing::UntilClose => {
                let mut bytes = Vec::new();
                self.reader.read_to_end(&mut bytes).expect("read the body");
                self.end = Some(End::Cut);
                bytes
            }
        };
        let text = String::from_utf8(bytes).expect("a UTF-8 body");
        self.text.push_str(&text);
        Some(text)
    }

    /// Reads until the body so far contains `needle`; fails if the body ends first.
    pub fn read_until(&mut self, needle: &str) -> &str {
        while !self.text.contains(needle) {
            if self.read_chunk().is_none() {
                panic!("the body ended without {needle:?}: {:?}", self.text);
            }
        }
        &self.text
    }

    /// Reads the rest of the body and says how it ended.
    pub fn read_to_end(&mut self) -> (&str, End) {
        while self.read_chunk().is_some() {}
        (&self.text, self.end.unwrap_or(End::Cut))
    }

    /// The whole body as JSON.
    pub fn json(mut self) -> Value {
        let (text, _) = self.read_to_end();
        serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text:?}"))
    }

    /// Closes the connection, as a client that goes away does.
    pub fn disconnect(self) {
        drop(self.reader);
    }

    /// The connection, to read what comes after this response.
    pub fn into_stream(self) -> TcpStream {
        assert!(
            self.reader.buffer().is_empty(),
            "bytes after the response: {:?}",
            self.reader.buffer()
        );
        self.reader.into_inner()
    }
}

/// The scenarios, one function per behaviour; [`http_suite!`](crate::http_suite) names a test
/// after each.
pub mod suite {
    use super::*;

    pub fn unary_call_answers_its_output_as_json<R: TestRuntime>() {
        let (server, _) = start::<R>(ServerConfig::default());
        let mut response = post(server.addr(), "/rpc/ping", r#"{"json":{"n":1}}"#);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.read_to_end(), (r#"{"json":{"n":1}}"#, End::Clean));
    }

    pub fn stream_events_arrive_one_by_one_as_they_are_yielded<R: TestRuntime>() {
        let (server, probe) = start::<R>(quiet_config());
        let mut response = post(server.addr(), "/rpc/gated", "");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        // The handler cannot yield the second event before the gate opens, so receiving the
        // first one now proves it was flushed on its own.
        let first = response.read_until("\n\n").to_owned();
        assert_eq!(first, ": \n\n", "the opening comment comes at once");
        let first = response
            .read_until("data: {\"json\":{\"n\":1}}\n\n")
            .to_owned();
        assert!(!first.contains("id: 2"), "{first:?}");
        probe.gate.trigger();
        let (text, end) = response.read_to_end();
        assert_eq!(
            text,
            ": \n\n\
             event: message\nid: 1\ndata: {\"json\":{\"n\":1}}\n\n\
             event: message\nid: 2\ndata: {\"json\":{\"n\":2}}\n\n\
             event: done\ndata: {\"json\":\"end\"}\n\n"
        );
        assert_eq!(end, End::Clean);
        wait_until("the handler's cleanup", || {
            probe.cleanups.load(Ordering::SeqCst) == 1
        });
        wait_until("the stream to close", || server.active_streams() == 0);
    }

    /// Keep-alives are off: the server learns of the disconnect while the stream is silent.
    pub fn client_disconnect_runs_handler_cleanup<R: TestRuntime>() {
        let (server, probe) = start::<R>(quiet_config());
        let mut response = post(server.addr(), "/rpc/silent", "");
        response.read_until(": \n\n");
        wait_until("the handler to start", || {
            probe.started.load(Ordering::SeqCst) == 1
        });
        assert_eq!(server.active_streams(), 1);
        assert_eq!(probe.cleanups.load(Ordering::SeqCst), 0);
        response.disconnect();
        wait_until("the stream to close", || server.active_streams() == 0);
        assert_eq!(probe.cleanups.load(Ordering::SeqCst), 1);
    }

    pub fn a_body_over_the_cap_is_refused_with_413<R: TestRuntime>() {
        let config = ServerConfig {
            max_body_bytes: 64,
            ..Default::default()
        };
        let (server, _) = start::<R>(config);
        // Declared too large: refused from the headers, before the body is sent.
        let declared = send(
            server.addr(),
            b"POST /rpc/ping HTTP/1.1\r\nhost: test\r\ncontent-length: 1000000\r\n\r\n",
        );
        assert_eq!(declared.status, 413);
        assert_eq!(declared.header("connection"), Some("close"));
        let body = declared.json();
        assert_eq!(body["json"]["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["json"]["status"], 413);
        assert_eq!(body["json"]["defined"], false);
        // Of unknown length: refused once the bytes read pass the cap.
        let mut chunked =
            b"POST /rpc/ping HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..4 {
            chunked.extend_from_slice(b"20\r\n");
            chunked.extend_from_slice(&[b' '; 32]);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let streamed = send(server.addr(), &chunked);
        assert_eq!(streamed.status, 413);
        assert_eq!(streamed.json()["json"]["code"], "PAYLOAD_TOO_LARGE");
        // At the cap exactly is fine.
        let body = format!(r#"{{"json":"{}"}}"#, "x".repeat(64 - 11));
        assert_eq!(body.len(), 64);
        assert_eq!(post(server.addr(), "/rpc/ping", &body).status, 200);
    }

    pub fn streams_past_max_streams_are_refused_with_503<R: TestRuntime>() {
        let mut config = quiet_config();
        config.max_streams = 2;
        let (server, probe) = start::<R>(config);
        let mut open: Vec<RawResponse> = (0..2)
            .map(|_| {
                let mut stream = post(server.addr(), "/rpc/silent", "");
                assert_eq!(stream.status, 200);
                stream.read_until(": \n\n");
                stream
            })
            .collect();
        assert_eq!(server.active_streams(), 2);
        let refused = post(server.addr(), "/rpc/silent", "");
        assert_eq!(refused.status, 503);
        let body = refused.json();
        assert_eq!(body["json"]["code"], "SERVICE_UNAVAILABLE");
        assert_eq!(body["json"]["status"], 503);
        // The refused handler was dropped without running; unary calls are not limited.
        wait_until("the refused handler's cleanup", || {
            probe.cleanups.load(Ordering::SeqCst) == 1
        });
        assert_eq!(
            post(server.addr(), "/rpc/ping", r#"{"json":1}"#).status,
            200
        );
        open.pop().unwrap().disconnect();
        wait_until("a place to free up", || server.active_streams() == 1);
        let mut again = post(server.addr(), "/rpc/silent", "");
        assert_eq!(again.status, 200);
        again.read_until(": \n\n");
    }

    pub fn unknown_paths_are_404_with_an_orpc_error<R: TestRuntime>() {
        let (server, _) = start::<R>(ServerConfig::default());
        for path in ["/nope", "/rpc/nope", "/rpcx/ping", "/rpc"] {
            let response = post(server.addr(), path, "");
            assert_eq!(response.status, 404, "{path}");
            assert_eq!(response.header("content-type"), Some("application/json"));
            let body = response.json();
            assert_eq!(body["json"]["code"], "NOT_FOUND", "{path}");
            assert_eq!(body["json"]["status"], 404, "{path}");
        }
    }

    pub fn a_malformed_body_is_400<R: TestRuntime>() {
        let (server, _) = start::<R>(ServerConfig::default());
        let response = post(server.addr(), "/rpc/ping", "{not json");
        assert_eq!(response.status, 400);
        assert_eq!(response.json()["json"]["code"], "BAD_REQUEST");
    }

    pub fn a_silent_stream_gets_keep_alive_comments<R: TestRuntime>() {
        let mut config = ServerConfig::default();
        config.orpc.timing.keep_alive = Some(Duration::from_millis(100));
        let (server, _) = start::<R>(config);
        let mut response = post(server.addr(), "/rpc/silent", "");
        let text = response.read_until(": \n\n: \n\n").to_owned();
        assert!(text.starts_with(": \n\n: \n\n"), "{text:?}");
        assert!(text.bytes().all(|b| b == b':' || b == b' ' || b == b'\n'));
    }

    pub fn max_stream_duration_ends_the_stream_without_done<R: TestRuntime>() {
        let mut config = quiet_config();
        config.orpc.timing.max_duration = Some(Duration::from_millis(200));
        let (server, probe) = start::<R>(config);
        let mut response = post(server.addr(), "/rpc/silent", "");
        let expected = format!(": \n\n{}", interruption());
        assert_eq!(response.read_to_end(), (expected.as_str(), End::Clean));
        assert!(!expected.contains("event: done"));
        wait_until("the handler's cleanup", || {
            probe.cleanups.load(Ordering::SeqCst) == 1
        });
        wait_until("the stream to close", || server.active_streams() == 0);
    }

    pub fn graceful_shutdown_ends_open_streams_cleanly<R: TestRuntime>() {
        let (server, probe) = start::<R>(quiet_config());
        let addr = server.addr();
        // An idle keep-alive connection must not hold shutdown up.
        let mut idle = post(addr, "/rpc/ping", r#"{"json":1}"#);
        assert_eq!(idle.read_to_end(), ("{\"json\":1}", End::Clean));
        let mut silent = post(addr, "/rpc/silent", "");
        silent.read_until(": \n\n");
        let mut gated = post(addr, "/rpc/gated", "");
        gated.read_until("id: 1\n");
        wait_until("both handlers to start", || {
            probe.started.load(Ordering::SeqCst) == 2
        });
        assert!(
            server.shutdown(),
            "every connection finished within the grace"
        );
        let interruption = interruption();
        let expected = format!(": \n\n{interruption}");
        assert_eq!(silent.read_to_end(), (expected.as_str(), End::Clean));
        let (text, end) = gated.read_to_end();
        assert!(!text.contains("event: done"), "{text:?}");
        assert!(text.ends_with(&interruption), "{text:?}");
        assert_eq!(end, End::Clean);
        assert_eq!(probe.cleanups.load(Ordering::SeqCst), 2);
        assert!(closed_by_server(idle.into_stream()));
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    pub fn shutdown_closes_connections_still_busy_after_the_grace<R: TestRuntime>() {
        let config = ServerConfig {
            shutdown_grace: Duration::from_millis(200),
            ..ServerConfig::default()
        };
        let (server, probe) = start::<R>(config);
        let busy = open(
            server.addr(),
            b"POST /rpc/hang HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n",
        );
        wait_until("the handler to start", || {
            probe.started.load(Ordering::SeqCst) == 1
        });
        assert!(
            !server.shutdown(),
            "a call that never ends outlives the grace"
        );
        assert!(closed_by_server(busy));
        assert_eq!(probe.cleanups.load(Ordering::SeqCst), 1);
    }

    pub fn slow_headers_are_cut_off_after_the_header_read_timeout<R: TestRuntime>() {
        let config = ServerConfig {
            header_read_timeout: Some(Duration::from_millis(100)),
            ..ServerConfig::default()
        };
        let (server, _) = start::<R>(config);
        let slow = open(server.addr(), b"POST /rpc/ping HTTP/1.1\r\nhost: te");
        assert!(closed_by_server(slow));
        // A prompt client on the same server is unaffected.
        assert_eq!(
            post(server.addr(), "/rpc/ping", r#"{"json":1}"#).status,
            200
        );
    }
}

/// Expands to one `#[test]` per scenario of [`suite`], run on `$runtime`.
#[macro_export]
#[doc(hidden)]
macro_rules! http_suite {
    ($runtime:ty) => {
        $crate::http_suite!(@tests $runtime;
            unary_call_answers_its_output_as_json,
            stream_events_arrive_one_by_one_as_they_are_yielded,
            client_disconnect_runs_handler_cleanup,
            a_body_over_the_cap_is_refused_with_413,
            streams_past_max_streams_are_refused_with_503,
            unknown_paths_are_404_with_an_orpc_error,
            a_malformed_body_is_400,
            a_silent_stream_gets_keep_alive_comments,
            max_stream_duration_ends_the_stream_without_done,
            graceful_shutdown_ends_open_streams_cleanly,
            shutdown_closes_connections_still_busy_after_the_grace,
            slow_headers_are_cut_off_after_the_header_read_timeout,
        );
    };
    (@tests $runtime:ty; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::suite::$name::<$runtime>();
            }
        )*
    };
}
