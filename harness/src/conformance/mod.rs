//! The conformance suite: what every runtime adapter must do over real loopback HTTP, written
//! once. An adapter implements [`Adapter`] (start a server for a service on a loopback port,
//! read its counters, shut it down) and expands [`conformance_suite!`](crate::conformance_suite)
//! in one of its test files; it then runs every scenario below, and the loopback property runs
//! of [`properties`], as ordinary `#[test]`s. See harness/README.md for a walkthrough.
//!
//! The scenarios drive the server with the blocking clients of [`crate::loopback`] (HTTP/1.1),
//! [`crate::websocket`] and [`crate::http2`] (HTTP/2, scenarios in [`http2`]), so they need
//! nothing from the adapter's runtime but the server itself. Waits are deadlines for liveness
//! (a hung server fails the test instead of hanging it), never claims about how long something
//! took.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use outer_core::protocol::orpc::OrpcFraming;
use outer_core::protocol::Framing as _;
use outer_core::publisher::{MemoryPublisher, Publisher, SeqId, SubscribeOptions};
use outer_core::rt::Timer;
use outer_core::{event_iterator, procedure, tracked, Router};
use outer_http::{HttpService, OuterService, ServerConfig, Shutdown, Stack};
use serde_json::{json, Value};

use crate::loopback::{
    closed_by_server, open, post, read_response, send, wait_until, End, FlatOutReader, RawResponse,
};

pub mod context;
pub mod hand_off;
pub mod http2;
pub mod properties;
pub mod websocket;

/// A runtime adapter, as the suite drives it: the few things only the adapter knows how to do.
///
/// The suite calls these from plain blocking test code, so an adapter runs its server on
/// threads of its own (a runtime it builds, or its global executor).
pub trait Adapter {
    /// A running server.
    type Server: RunningServer;
    /// The adapter's timer, for the service's keep-alives and deadlines.
    fn timer() -> Arc<dyn Timer>;
    /// Serves `stack` (an [`OuterService`], or tower layers around one) on a fresh loopback
    /// port (`127.0.0.1:0`) and returns once it listens. Any context: the scenarios of
    /// [`context`] build one from each request's head.
    fn start<Ctx, S>(stack: impl Into<Stack<Ctx, S>>) -> Self::Server
    where
        Ctx: Clone + Send + 'static,
        S: HttpService;
}

/// A server an [`Adapter`] started, driven from blocking test code.
pub trait RunningServer {
    /// Where it listens.
    fn addr(&self) -> SocketAddr;
    /// Its open event streams: the server-side counter the suite checks cleanup with.
    fn active_streams(&self) -> usize;
    /// Its open connections.
    fn open_connections(&self) -> usize;
    /// Shuts it down gracefully, blocking until done; true when every connection finished
    /// within the grace. The runtime keeps running until the server is dropped: the suite
    /// checks that the listener refuses connections as soon as this returns, while nothing is
    /// torn down yet that would close it anyway.
    fn shutdown(&mut self) -> bool;
}

/// How a [`Served`] server is shut down from blocking test code, on the runtime that runs it;
/// it also keeps that runtime alive until dropped.
pub trait ShutDown {
    /// Shuts `server` down gracefully and blocks until it has; true when every connection
    /// finished within the grace. The runtime must keep running after this returns.
    fn shut_down(&mut self, server: outer_http::server::Server) -> bool;
}

/// Any blocking closure that shuts a server down is a [`ShutDown`] (`smol::block_on` of
/// `Server::shutdown`, for a runtime with a global executor).
impl<F: FnMut(outer_http::server::Server) -> bool> ShutDown for F {
    fn shut_down(&mut self, server: outer_http::server::Server) -> bool {
        self(server)
    }
}

/// A running server as most adapters hand it to the suite: the adapter's
/// [`Server`](outer_http::server::Server) and what shuts it down on its runtime, which it
/// keeps alive. Only [`ShutDown`] differs between adapters.
pub struct Served<K: ShutDown> {
    addr: SocketAddr,
    server: Option<outer_http::server::Server>,
    keeper: K,
}

impl<K: ShutDown> std::fmt::Debug for Served<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<K: ShutDown> Served<K> {
    /// `server`, to be shut down by `keeper`.
    pub fn new(server: outer_http::server::Server, keeper: K) -> Self {
        Self {
            addr: server.local_addr(),
            server: Some(server),
            keeper,
        }
    }

    fn server(&self) -> &outer_http::server::Server {
        self.server.as_ref().expect("not shut down yet")
    }
}

impl<K: ShutDown> RunningServer for Served<K> {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn active_streams(&self) -> usize {
        self.server().active_streams()
    }

    fn open_connections(&self) -> usize {
        self.server().open_connections()
    }

    fn shutdown(&mut self) -> bool {
        let server = self.server.take().expect("shut down once");
        self.keeper.shut_down(server)
    }
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
    /// What `posts` streams: the suite publishes from threads the runtime does not own.
    pub posts: MemoryPublisher<Value>,
    /// Values `flood` has yielded, over all its streams.
    pub flooded: AtomicUsize,
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
/// - `spin`: a stream whose handler loops on a publisher subscription that answers at once
///   every time (a resume id the publisher never gave out, subscribed again on each gap), as a
///   careless handler does: it never waits for anything.
/// - `flood`: a stream that yields `0, 1, 2...` as fast as it is read, for ever.
/// - `posts`: what is published on the probe's `posts` publisher (topic `posts`), live.
///
/// Each but `ping`, `spin` and `flood` counts in `started` when it first runs and in `cleanups`
/// when dropped.
pub fn router(probe: &Arc<Probe>) -> Router<()> {
    let gated = Arc::clone(probe);
    let silent = Arc::clone(probe);
    let hang = Arc::clone(probe);
    let posts = probe.posts.clone();
    let flood = Arc::clone(probe);
    let publisher = MemoryPublisher::<Value>::builder().build();
    let os = procedure::<()>();
    Router::new()
        .route(
            "spin",
            os.subscription(move |_| {
                let publisher = publisher.clone();
                async move {
                    Ok(event_iterator(move |mut emit| async move {
                        loop {
                            let never_given = SeqId::new(5);
                            let options = SubscribeOptions::new().resume_after(never_given);
                            let mut live = publisher.subscribe("posts", options).await?;
                            if let Some(Ok(post)) = live.next().await {
                                emit.send_value(post.data().clone()).await?;
                            }
                        }
                        #[allow(unreachable_code)]
                        Ok(())
                    }))
                }
            }),
        )
        .route(
            "posts",
            os.subscription(move |_| {
                let subscribed = posts.subscribe_now("posts", SubscribeOptions::new());
                async move { Ok(subscribed?) }
            }),
        )
        .route(
            "flood",
            os.subscription(move |_| {
                let probe = Arc::clone(&flood);
                async move {
                    Ok(event_iterator(|mut emit| async move {
                        for n in 0u64.. {
                            emit.send_value(n).await?;
                            probe.flooded.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(())
                    }))
                }
            }),
        )
        .route(
            "ping",
            os.input::<Value>()
                .query(|req| async move { Ok(req.input) }),
        )
        .route(
            "hang",
            os.query(move |_| {
                let probe = Arc::clone(&hang);
                let cleanup = Cleanup(Arc::clone(&probe));
                async move {
                    let _cleanup = cleanup;
                    probe.started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                    Ok(())
                }
            }),
        )
        .route(
            "gated",
            os.subscription(move |_| {
                let probe = Arc::clone(&gated);
                let cleanup = Cleanup(Arc::clone(&probe));
                async move {
                    Ok(event_iterator(move |mut emit| async move {
                        let _cleanup = cleanup;
                        probe.started.fetch_add(1, Ordering::SeqCst);
                        emit.send(tracked(1, json!({"n": 1}))?).await?;
                        probe.gate.wait().await;
                        emit.send(tracked(2, json!({"n": 2}))?).await?;
                        Ok("end")
                    }))
                }
            }),
        )
        .route(
            "silent",
            os.subscription(move |_| {
                let probe = Arc::clone(&silent);
                let cleanup = Cleanup(Arc::clone(&probe));
                async move {
                    Ok(event_iterator(
                        move |_emit: outer_core::Emitter<Value>| async move {
                            let _cleanup = cleanup;
                            probe.started.fetch_add(1, Ordering::SeqCst);
                            std::future::pending::<()>().await;
                            Ok(())
                        },
                    ))
                }
            }),
        )
}

/// Starts a server on adapter `R` with the test router and `config`.
pub fn start<R: Adapter>(config: ServerConfig) -> (R::Server, Arc<Probe>) {
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
    let mut out = outer_core::protocol::Chunk::new();
    let mut framing = OrpcFraming::V1;
    framing.interrupted(&mut out);
    out.into_string()
}

/// The scenarios, one function per behaviour; [`conformance_suite!`](crate::conformance_suite)
/// names a test after each.
#[allow(missing_docs)] // each scenario's name is its documentation
pub mod suite {
    use super::context::{self, ContextProbe};
    pub use super::hand_off::*;
    pub use super::http2::*;
    pub use super::websocket::*;
    use super::*;

    pub fn unary_call_answers_its_output_as_json<R: Adapter>() {
        let (server, _) = start::<R>(ServerConfig::default());
        let mut response = post(server.addr(), "/rpc/ping", r#"{"json":{"n":1}}"#);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.read_to_end(), (r#"{"json":{"n":1}}"#, End::Clean));
    }

    pub fn stream_events_arrive_one_by_one_as_they_are_yielded<R: Adapter>() {
        let (server, probe) = start::<R>(quiet_config());
        let mut response = post(server.addr(), "/rpc/gated", "");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("content-type"), Some("text/event-stream"));
        // The handler cannot yield the second event before the gate opens, so receiving the
        // first one now proves it was flushed on its own. The opening comment comes first, with
        // it: the stream opens once the handler has run up to its first wait.
        let first = response
            .read_until("data: {\"json\":{\"n\":1}}\n\n")
            .to_owned();
        assert!(
            first.starts_with(": \n\n"),
            "the opening comment first: {first:?}"
        );
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
    pub fn client_disconnect_runs_handler_cleanup<R: Adapter>() {
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

    pub fn a_body_over_the_cap_is_refused_with_413<R: Adapter>() {
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

    pub fn streams_past_max_streams_are_refused_with_503<R: Adapter>() {
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

    pub fn unknown_paths_are_404_with_an_orpc_error<R: Adapter>() {
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

    pub fn a_malformed_body_is_400<R: Adapter>() {
        let (server, _) = start::<R>(ServerConfig::default());
        let response = post(server.addr(), "/rpc/ping", "{not json");
        assert_eq!(response.status, 400);
        assert_eq!(response.json()["json"]["code"], "BAD_REQUEST");
    }

    pub fn a_silent_stream_gets_keep_alive_comments<R: Adapter>() {
        let mut config = ServerConfig::default();
        config.orpc.timing.keep_alive = Some(Duration::from_millis(100));
        let (server, _) = start::<R>(config);
        let mut response = post(server.addr(), "/rpc/silent", "");
        let text = response.read_until(": \n\n: \n\n").to_owned();
        assert!(text.starts_with(": \n\n: \n\n"), "{text:?}");
        assert!(text.bytes().all(|b| b == b':' || b == b' ' || b == b'\n'));
    }

    pub fn max_stream_duration_ends_the_stream_without_done<R: Adapter>() {
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

    pub fn graceful_shutdown_ends_open_streams_cleanly<R: Adapter>() {
        let (mut server, probe) = start::<R>(quiet_config());
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
        // The runtime still runs: a listener whose close is only queued (io_uring closes
        // through the ring) would still accept here.
        assert!(
            TcpStream::connect(addr).is_err(),
            "the listener is closed once shutdown returns"
        );
        drop(server);
    }

    /// Wakes that come from threads the runtime does not own reach the streams they wake: a
    /// publish from a plain thread, and a gate opened from one. Publishers, shutdown signals
    /// and other runtimes' tasks all wake this way, so a runtime must accept wakes from any
    /// thread (monoio, for one, only with its `sync` feature).
    pub fn wakes_from_threads_the_runtime_does_not_own_reach_the_streams<R: Adapter>() {
        let (server, probe) = start::<R>(quiet_config());
        let mut posts = post(server.addr(), "/rpc/posts", "");
        assert_eq!(posts.status, 200);
        wait_until("the subscription", || {
            probe.posts.subscriber_count("posts") == 1
        });
        let publisher = probe.posts.clone();
        std::thread::spawn(move || publisher.publish_now("posts", json!({"title": "hi"})))
            .join()
            .unwrap();
        posts.read_until("data: {\"json\":{\"title\":\"hi\"}}\n");

        let mut gated = post(server.addr(), "/rpc/gated", "");
        gated.read_until("id: 1\n");
        let gate = Arc::clone(&probe);
        std::thread::spawn(move || gate.gate.trigger())
            .join()
            .unwrap();
        gated.read_until("id: 2\n");
    }

    pub fn shutdown_closes_connections_still_busy_after_the_grace<R: Adapter>() {
        let config = ServerConfig {
            shutdown_grace: Duration::from_millis(200),
            ..ServerConfig::default()
        };
        let (mut server, probe) = start::<R>(config);
        let addr = server.addr();
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
        assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
    }

    /// Three such handlers: more than the test servers have threads (tokio's two workers,
    /// smol's one), so a handler that kept its thread would leave none for the ping.
    pub fn handlers_looping_on_always_ready_subscriptions_leave_the_server_answering<R: Adapter>() {
        let (mut server, _) = start::<R>(quiet_config());
        let spinning: Vec<RawResponse> = (0..3)
            .map(|_| {
                let mut stream = post(server.addr(), "/rpc/spin", "");
                assert_eq!(stream.status, 200);
                stream.read_until(": \n\n");
                stream
            })
            .collect();
        for n in 0..5 {
            let body = format!(r#"{{"json":{n}}}"#);
            let mut pong = post(server.addr(), "/rpc/ping", &body);
            assert_eq!(pong.status, 200);
            assert_eq!(pong.read_to_end().0, body);
        }
        assert_eq!(server.active_streams(), 3);
        // Shutdown reaches the spinning handlers too, and ends their streams.
        let addr = server.addr();
        assert!(
            server.shutdown(),
            "every connection finished within the grace"
        );
        for mut stream in spinning {
            let (text, end) = stream.read_to_end();
            assert!(text.ends_with(&interruption()), "{text:?}");
            assert_eq!(end, End::Clean);
        }
        assert!(TcpStream::connect(addr).is_err(), "no longer listening");
    }

    /// Readers that take every byte at once: the streams are never held back by the socket.
    pub fn always_ready_streams_do_not_starve_other_connections<R: Adapter>() {
        let (server, _) = start::<R>(quiet_config());
        let readers: Vec<FlatOutReader> = (0..3)
            .map(|_| {
                FlatOutReader::start(
                    server.addr(),
                    b"POST /rpc/flood HTTP/1.1\r\nhost: test\r\ncontent-length: 0\r\n\r\n",
                )
            })
            .collect();
        let read = || readers.iter().map(FlatOutReader::bytes).sum::<usize>();
        wait_until("the streams to flow", || read() > 1024 * 1024);
        // Each ping waits at most the client's deadline: a server that serves the streams only
        // would fail here.
        for n in 0..10 {
            let body = format!(r#"{{"json":{n}}}"#);
            let mut pong = post(server.addr(), "/rpc/ping", &body);
            assert_eq!(pong.status, 200);
            assert_eq!(pong.read_to_end().0, body);
        }
        let before = read();
        wait_until("the streams to go on flowing", || read() > before);
        drop(readers);
        wait_until("the streams to close", || server.active_streams() == 0);
    }

    pub fn a_body_that_never_arrives_is_answered_408_and_its_connection_closed<R: Adapter>() {
        let config = ServerConfig {
            body_read_timeout: Some(Duration::from_millis(300)),
            ..ServerConfig::default()
        };
        let (server, _) = start::<R>(config);
        // Headers that announce a body that never comes.
        let stalled = send(
            server.addr(),
            b"POST /rpc/ping HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n",
        );
        // A chunked body that trickles: a byte every 50 ms, never its end.
        let trickle = open(
            server.addr(),
            b"POST /rpc/ping HTTP/1.1\r\nhost: test\r\ntransfer-encoding: chunked\r\n\r\n",
        );
        let writer = {
            let mut trickle = trickle.try_clone().unwrap();
            std::thread::spawn(move || {
                use std::io::Write;
                for _ in 0..40 {
                    if trickle.write_all(b"1\r\n \r\n").is_err() {
                        return true; // the server closed it
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                false
            })
        };
        let trickled = read_response(trickle.try_clone().unwrap());
        for response in [stalled, trickled] {
            assert_eq!(response.status, 408);
            assert_eq!(response.header("connection"), Some("close"));
            let body = response.json();
            assert_eq!(body["json"]["code"], "TIMEOUT");
            assert_eq!(body["json"]["status"], 408);
        }
        assert!(closed_by_server(trickle));
        assert!(
            writer.join().unwrap(),
            "the trickling connection was closed"
        );
        wait_until("the connections to close", || {
            server.open_connections() == 0
        });
        assert_eq!(
            post(server.addr(), "/rpc/ping", r#"{"json":1}"#).status,
            200
        );
    }

    pub fn the_connection_limit_holds_and_later_clients_are_served<R: Adapter>() {
        let config = ServerConfig {
            max_connections: 4,
            body_read_timeout: Some(Duration::from_millis(500)),
            ..ServerConfig::default()
        };
        let (server, _) = start::<R>(config);
        // Ten connections that send headers and then nothing: the first four are accepted,
        // the rest wait in the listen queue.
        let stalled: Vec<TcpStream> = (0..10)
            .map(|_| {
                open(
                    server.addr(),
                    b"POST /rpc/ping HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\n",
                )
            })
            .collect();
        wait_until("four connections", || server.open_connections() == 4);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(server.open_connections(), 4, "no more accepted meanwhile");
        // A ping waits its turn: served once the body timeout has closed stalled connections.
        let mut pong = post(server.addr(), "/rpc/ping", r#"{"json":"late"}"#);
        assert_eq!(pong.status, 200);
        assert_eq!(pong.read_to_end().0, r#"{"json":"late"}"#);
        for stream in stalled {
            let response = read_response(stream);
            assert_eq!(response.status, 408);
            assert_eq!(response.json()["json"]["code"], "TIMEOUT");
        }
        assert!(server.open_connections() <= 4);
    }

    /// The context builder runs on the server with the request's head: the peer it sees is
    /// the client's socket, and the query and headers are the request's, in both protocols.
    pub fn the_context_builder_sees_the_peer_address_query_and_headers<R: Adapter>() {
        let (server, _) = context::start::<R>();
        let stream = context::open_request(
            server.addr(),
            "POST",
            "/rpc/whoami?from=orpc",
            &[("x-tag", "blue"), ("authorization", "Bearer a")],
            r#"{"json":null}"#,
        );
        let client = stream.local_addr().unwrap().to_string();
        let response = read_response(stream);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["json"],
            json!({
                "method": "POST",
                "path": "/rpc/whoami",
                "query": "from=orpc",
                "peer": client,
                "authorization": "Bearer a",
                "tag": "blue",
            })
        );

        let query = context::trpc_input(&json!({"a": 1}));
        let stream = context::open_request(
            server.addr(),
            "GET",
            &format!("/trpc/whoami?{query}"),
            &[("X-Tag", "green")],
            "",
        );
        let client = stream.local_addr().unwrap().to_string();
        let response = read_response(stream);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.json()["result"]["data"],
            json!({
                "method": "GET",
                "path": "/trpc/whoami",
                "query": query,
                "peer": client,
                "authorization": null,
                "tag": "green",
            })
        );
    }

    /// A `refine` middleware refuses a subscription without an `authorization` header: the
    /// answer is 401 with the protocol's JSON error body, not an event stream, and neither the
    /// setup nor the stream runs. With the header, the same subscription streams.
    pub fn a_subscription_refused_by_middleware_answers_401_and_never_streams<R: Adapter>() {
        let (server, probe) = context::start::<R>();
        let addr = server.addr();

        let refused = post(addr, "/rpc/secret", "");
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("content-type"), Some("application/json"));
        let body = refused.json();
        assert_eq!(body["json"]["code"], "UNAUTHORIZED");
        assert_eq!(body["json"]["status"], 401);
        assert_eq!(body["json"]["message"], "Sign in first");

        let refused = context::request(addr, "GET", "/trpc/secret", &[], "");
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("content-type"), Some("application/json"));
        let body = refused.json();
        assert_eq!(body["error"]["message"], "Sign in first");
        assert_eq!(body["error"]["data"]["code"], "UNAUTHORIZED");
        assert_eq!(body["error"]["data"]["httpStatus"], 401);
        assert_eq!(body["error"]["data"]["path"], "secret");

        // The one exception, as tRPC answers it: a POST to a subscription is 200 and its
        // error in the stream; the middleware is never asked.
        let mut posted = context::request(addr, "POST", "/trpc/secret", &[], "");
        assert_eq!(posted.status, 200);
        assert_eq!(posted.header("content-type"), Some("text/event-stream"));
        let (text, end) = posted.read_to_end();
        assert!(text.contains("event: serialized-error\n"), "{text:?}");
        assert!(text.contains("METHOD_NOT_SUPPORTED"), "{text:?}");
        assert_eq!(end, End::Clean);

        assert_eq!(ContextProbe::count(&probe.setups), 0, "no setup ran");
        assert_eq!(ContextProbe::count(&probe.streams), 0, "no stream ran");
        assert_eq!(server.active_streams(), 0);

        let bearer = [("authorization", "Bearer t")];
        let mut orpc = context::request(addr, "POST", "/rpc/secret", &bearer, "");
        assert_eq!(orpc.status, 200);
        assert_eq!(orpc.header("content-type"), Some("text/event-stream"));
        assert_eq!(
            orpc.read_to_end(),
            (
                ": \n\n\
                 event: message\nid: 1\ndata: {\"json\":{\"token\":\"Bearer t\"}}\n\n\
                 event: done\ndata: {\"json\":\"end\"}\n\n",
                End::Clean
            )
        );
        let mut trpc = context::request(addr, "GET", "/trpc/secret", &bearer, "");
        assert_eq!(trpc.status, 200);
        assert_eq!(trpc.header("content-type"), Some("text/event-stream"));
        // tRPC follows every event with an extra blank line.
        assert_eq!(
            trpc.read_to_end(),
            (
                "event: connected\ndata: {}\n\n\n\
                 data: {\"token\":\"Bearer t\"}\nid: 1\n\n\n\
                 event: return\ndata: \n\n\n",
                End::Clean
            )
        );
        assert_eq!(ContextProbe::count(&probe.setups), 2);
        assert_eq!(ContextProbe::count(&probe.streams), 2);
        wait_until("the streams to close", || server.active_streams() == 0);
    }

    /// A subscription's async setup (here, after a wait on the adapter's timer) refuses the
    /// call: its status and error body are the answer, and its stream never runs.
    pub fn a_subscription_refused_in_its_setup_answers_its_error_and_never_streams<R: Adapter>() {
        let (server, probe) = context::start::<R>();
        let addr = server.addr();

        let refused = post(addr, "/rpc/room", r#"{"json":{"name":"attic"}}"#);
        assert_eq!(refused.status, 403);
        assert_eq!(refused.header("content-type"), Some("application/json"));
        let body = refused.json();
        assert_eq!(body["json"]["code"], "FORBIDDEN");
        assert_eq!(body["json"]["message"], "The room attic is closed");

        let query = context::trpc_input(&json!({"name": "attic"}));
        let refused = context::request(addr, "GET", &format!("/trpc/room?{query}"), &[], "");
        assert_eq!(refused.status, 403);
        assert_eq!(refused.header("content-type"), Some("application/json"));
        let body = refused.json();
        assert_eq!(body["error"]["data"]["code"], "FORBIDDEN");
        assert_eq!(body["error"]["data"]["httpStatus"], 403);
        assert_eq!(body["error"]["message"], "The room attic is closed");

        assert_eq!(ContextProbe::count(&probe.setups), 2, "both setups ran");
        assert_eq!(ContextProbe::count(&probe.streams), 0, "no stream ran");
        assert_eq!(server.active_streams(), 0);

        let mut open = post(addr, "/rpc/room", r#"{"json":{"name":"open"}}"#);
        assert_eq!(open.status, 200);
        let (text, end) = open.read_to_end();
        assert!(
            text.contains("id: 1\ndata: {\"json\":\"open\"}\n\n"),
            "{text:?}"
        );
        assert_eq!(end, End::Clean);
        let query = context::trpc_input(&json!({"name": "open"}));
        let mut open = context::request(addr, "GET", &format!("/trpc/room?{query}"), &[], "");
        assert_eq!(open.status, 200);
        let (text, end) = open.read_to_end();
        assert!(text.contains("data: \"open\"\nid: 1\n"), "{text:?}");
        assert_eq!(end, End::Clean);
        assert_eq!(ContextProbe::count(&probe.streams), 2);
    }

    /// A `wrap` middleware runs once around each call of a stream, not per event; the context
    /// it changes is the one the stream runs in; and it sees a call refused before its stream
    /// opens (a bad input, decoded after the middleware) as an error.
    pub fn middleware_wrap_runs_once_around_each_stream<R: Adapter>() {
        let (server, probe) = context::start::<R>();
        let addr = server.addr();
        let tick = |n: u64| json!({"n": n, "tag": "wrapped"});

        let mut orpc = post(addr, "/rpc/ticks", r#"{"json":{"count":3}}"#);
        assert_eq!(orpc.status, 200);
        let (text, end) = orpc.read_to_end();
        for n in 1..=3 {
            let event = format!("id: {n}\ndata: {}\n\n", json!({ "json": tick(n) }));
            assert!(text.contains(&event), "{event:?} in {text:?}");
        }
        assert!(text.ends_with("event: done\ndata: {\"json\":\"end\"}\n\n"));
        assert_eq!(end, End::Clean);
        assert_eq!(ContextProbe::count(&probe.wrapped), 1);

        let query = context::trpc_input(&json!({"count": 3}));
        let mut trpc = context::request(addr, "GET", &format!("/trpc/ticks?{query}"), &[], "");
        assert_eq!(trpc.status, 200);
        let (text, end) = trpc.read_to_end();
        for n in 1..=3 {
            let event = format!("data: {}\nid: {n}\n\n", tick(n));
            assert!(text.contains(&event), "{event:?} in {text:?}");
        }
        assert_eq!(end, End::Clean);
        assert_eq!(ContextProbe::count(&probe.wrapped), 2);
        assert_eq!(ContextProbe::count(&probe.wrapped_refused), 0);

        let refused = post(addr, "/rpc/ticks", r#"{"json":{"count":"three"}}"#);
        assert_eq!(refused.status, 400);
        assert_eq!(refused.json()["json"]["code"], "BAD_REQUEST");
        assert_eq!(ContextProbe::count(&probe.wrapped), 3);
        assert_eq!(ContextProbe::count(&probe.wrapped_refused), 1);
        assert_eq!(ContextProbe::count(&probe.streams), 2);
        assert_eq!(
            *probe.wrapped_calls.lock().unwrap(),
            ["Subscription ticks"; 3]
        );
        wait_until("the streams to close", || server.active_streams() == 0);
    }

    pub fn slow_headers_are_cut_off_after_the_header_read_timeout<R: Adapter>() {
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

/// Expands to one `#[test]` per scenario of [`suite`] and per property of [`properties`], run
/// on the adapter `$adapter`:
///
/// ```ignore
/// struct MyRuntime;
/// impl outer_harness::conformance::Adapter for MyRuntime { /* ... */ }
/// outer_harness::conformance_suite!(MyRuntime);
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($runtime:ty) => {
        $crate::conformance_suite!(@tests $runtime;
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
            wakes_from_threads_the_runtime_does_not_own_reach_the_streams,
            shutdown_closes_connections_still_busy_after_the_grace,
            slow_headers_are_cut_off_after_the_header_read_timeout,
            handlers_looping_on_always_ready_subscriptions_leave_the_server_answering,
            always_ready_streams_do_not_starve_other_connections,
            a_body_that_never_arrives_is_answered_408_and_its_connection_closed,
            the_connection_limit_holds_and_later_clients_are_served,
            the_context_builder_sees_the_peer_address_query_and_headers,
            a_subscription_refused_by_middleware_answers_401_and_never_streams,
            a_subscription_refused_in_its_setup_answers_its_error_and_never_streams,
            middleware_wrap_runs_once_around_each_stream,
            a_connection_serves_the_next_request_after_its_stream_ends,
            responses_pipelined_before_a_stream_arrive_whole_and_first,
            a_request_pipelined_behind_a_stream_closes_the_connection_after_it,
            a_stream_asked_to_close_closes_its_connection_after_it,
            abort_streams_cuts_http1_streams_without_their_last_chunk,
            bytes_sent_after_a_stream_request_are_ignored,
            trpc_over_websocket_speaks_wslink,
            orpc_over_websocket_speaks_rpclink,
            bad_websocket_input_gets_clear_errors_and_the_socket_stays_usable,
            a_websocket_message_over_the_cap_closes_with_1009,
            a_closed_or_cut_websocket_drops_its_handlers_at_once,
            abort_streams_cuts_websockets_as_a_network_failure_would,
            a_quiet_websocket_client_is_pinged_and_dropped_if_it_never_answers,
            graceful_shutdown_moves_websocket_clients_elsewhere,
            a_websocket_client_that_does_not_read_stalls_only_its_own_streams,
            websocket_upgrades_are_checked_and_served_only_at_the_prefixes,
            trpc_connection_params_reach_the_context_builder,
            orpc_call_headers_reach_the_context_builder,
            unary_calls_over_http2_answer_as_over_http1,
            http2_stream_events_arrive_one_by_one_as_they_are_yielded,
            many_http2_streams_on_one_connection_all_receive_their_events,
            resetting_an_http2_stream_runs_its_cleanup_and_spares_the_others,
            http2_bodies_over_the_cap_are_413_and_the_connection_goes_on,
            an_http2_body_that_never_ends_is_408_and_the_connection_goes_on,
            http2_streams_past_max_streams_are_refused_with_503,
            http2_streams_past_max_concurrent_streams_wait_or_are_refused,
            a_silent_http2_stream_gets_keep_alive_comments,
            max_stream_duration_ends_an_http2_stream_without_done,
            graceful_shutdown_ends_http2_streams_with_the_interruption_and_goaway,
            an_http2_reader_that_stops_stalls_only_its_own_stream,
            abort_streams_resets_http2_streams_and_the_connection_goes_on,
            shutdown_closes_http2_connections_still_busy_after_the_grace,
            an_http2_client_that_never_answers_pings_is_dropped_with_its_streams,
            a_partial_http2_preface_is_cut_off_after_the_header_read_timeout,
            with_http2_off_a_prior_knowledge_connection_is_not_served_as_http2,
        );
        $crate::conformance_suite!(@properties $runtime;
            resume_over_loopback_misses_nothing,
            cancellation_over_loopback_leaves_nothing,
            errors_over_loopback_propagate,
        );
    };
    (@properties $runtime:ty; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::properties::$name::<$runtime>();
            }
        )*
    };
    (@tests $runtime:ty; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::suite::$name::<$runtime>();
            }
        )*
    };
}
