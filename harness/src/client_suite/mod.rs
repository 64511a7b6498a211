//! The Rust client's suite, written once for every runtime: typed calls and self-resuming
//! subscriptions over real loopback HTTP, against the chat example served in-process and
//! against the Node reference servers (the real `@orpc/server`, 1.x and 2.x).
//!
//! Most scenarios take the [`OrpcVersion`] the client speaks and run once for each: against
//! the chat at `/rpc` (oRPC 1) and `/rpc2` (oRPC 2), and against the reference server of that
//! version (a v1 client to the v1 server, a v2 client to the v2 server).
//!
//! A runtime implements [`ClientRuntime`] (its server adapter, its client transport, how to
//! block on a future, and the chat example's router) and expands
//! [`client_suite!`](macro@crate::client_suite) in a test file; every scenario below then runs as a
//! `#[test]`. Disconnects are forced from the server's side (`abort_streams`, which cuts every
//! open stream as a network failure would) or, for the Node server, by a proxy that cuts its
//! connections. Waits are deadlines to fail by instead of hanging, never claims about speed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod canned;
pub mod proxy;
pub mod reference;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{join, select, Either};
use futures::StreamExt;
use outer_core::client::RetryPolicy;
pub use outer_core::protocol::orpc::OrpcVersion;
use outer_core::rt::Timer;
use outer_core::{App, RpcError};
use outer_http::client::{Client, ClientBuilder, Transport};
use outer_http::{OuterService, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::conformance::{Adapter, RunningServer};

/// How long any scenario may take before it fails as hung.
pub const HANG: Duration = Duration::from_secs(60);

/// How long one wait for a condition may take.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A runtime, as the client suite drives it.
pub trait ClientRuntime {
    /// Its server adapter, as the conformance suite starts servers.
    type Server: Adapter;
    /// Its client transport.
    type Transport: Transport + Default;
    /// Runs `future` to its end on this runtime, from blocking test code.
    fn block_on<F: Future>(future: F) -> F::Output;
    /// The context the chat example's procedures run in (`outer_examples::chat::ChatCtx`).
    type Ctx: Clone + Send + 'static;
    /// The chat example as it is served (`outer_examples::chat::app`: its router and the
    /// context builder that reads who is calling), with a fresh chat on `timer`.
    fn chat(timer: Arc<dyn Timer>) -> App<Self::Ctx>;
}

/// A chat post, as the chat example and the Node server send it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// 1, 2, 3... in the order posted; also the event's id.
    pub id: u64,
    /// What was said.
    pub title: String,
}

/// A `counter` event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Tick {
    /// The count; also the event's id.
    pub n: u64,
}

/// The chat example served on a runtime, with its service at hand.
pub struct Chat<R: ClientRuntime> {
    server: <R::Server as Adapter>::Server,
    /// The service, to cut streams and read counters.
    pub service: OuterService<R::Ctx>,
}

impl<R: ClientRuntime> std::fmt::Debug for Chat<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("addr", &self.server.addr())
            .field("service", &self.service)
            .finish()
    }
}

impl<R: ClientRuntime> Chat<R> {
    /// Serves the chat router with `config` on a fresh loopback port.
    pub fn start(config: ServerConfig) -> Self {
        let timer = <R::Server as Adapter>::timer();
        let service = OuterService::new(R::chat(Arc::clone(&timer)), config, timer);
        let server = <R::Server as Adapter>::start(service.clone());
        Self { server, service }
    }

    /// The base URL for a client.
    pub fn base(&self) -> String {
        format!("http://{}/rpc", self.server.addr())
    }

    /// A client for it, with the suite's settings.
    pub fn client(&self) -> ClientBuilder<R::Transport> {
        client::<R>(&self.base())
    }

    /// The base URL a client of `version` uses: the service's `rpc_prefix` for oRPC 1, its
    /// `rpc_v2_prefix` for oRPC 2.
    pub fn base_for(&self, version: OrpcVersion) -> String {
        let config = self.service.config();
        let prefix = match version {
            OrpcVersion::V1 => config.rpc_prefix.as_str(),
            OrpcVersion::V2 => config
                .rpc_v2_prefix
                .as_deref()
                .expect("the server serves oRPC 2 (rpc_v2_prefix)"),
        };
        format!("http://{}{prefix}", self.server.addr())
    }

    /// A client speaking `version`, at [`base_for`](Self::base_for), with the suite's settings.
    pub fn client_for(&self, version: OrpcVersion) -> ClientBuilder<R::Transport> {
        client::<R>(&self.base_for(version)).orpc_version(version)
    }
}

/// A client builder with quick retries (20 ms doubling to 200 ms, jittered), 50 attempts in a
/// row, and a generous request timeout.
pub fn client<R: ClientRuntime>(base: &str) -> ClientBuilder<R::Transport> {
    ClientBuilder::new(base, R::Transport::default())
        .retry_policy(RetryPolicy {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            jitter: true,
            max_attempts: Some(50),
            inactivity_timeout: Some(Duration::from_secs(15)),
        })
        .request_timeout(Some(Duration::from_secs(10)))
}

/// Runs a scenario's async part on runtime `R`, failing it if it hangs.
pub fn run<R: ClientRuntime, F: Future>(what: &str, future: F) -> F::Output {
    R::block_on(async {
        let timer = R::Transport::default().timer();
        match select(pin!(future), timer.sleep(HANG)).await {
            Either::Left((output, _)) => output,
            Either::Right(_) => panic!("{what}: still running after {HANG:?}"),
        }
    })
}

/// Waits (on `R`'s timer) until `done` holds, failing after [`DEADLINE`].
pub async fn wait_until<R: ClientRuntime>(what: &str, mut done: impl FnMut() -> bool) {
    let timer = R::Transport::default().timer();
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "still waiting for {what}");
        timer.sleep(Duration::from_millis(5)).await;
    }
}

fn assert_error(error: &RpcError, code: &str, status: u16, message: &str) {
    assert_eq!(
        (error.code(), error.status(), error.message()),
        (code, status, message),
        "{error:?}"
    );
}

fn counter_input(to: u64, delay_ms: u64) -> Value {
    json!({"from": 1, "to": to, "delayMs": delay_ms})
}

/// Reads a subscription of ticks to its end, calling `on_tick` after each, and returns them.
async fn ticks_to_the_end(
    stream: &mut outer_http::client::Subscription<Tick>,
    mut on_tick: impl FnMut(u64),
) -> Vec<u64> {
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.expect("no error");
        let n = event.data().n;
        assert_eq!(event.id().map(|id| id.to_string()), Some(n.to_string()));
        let expected = seen.last().map_or(1, |last| last + 1);
        assert_eq!(n, expected, "tick {n} after {seen:?}: lost or repeated");
        seen.push(n);
        on_tick(n);
    }
    seen
}

/// The post ids a reader has seen, shared with the writer in the same task.
#[derive(Debug, Default)]
struct Seen {
    ids: RefCell<Vec<u64>>,
    /// The reader stops after this id.
    last_wanted: Cell<Option<u64>>,
}

impl Seen {
    fn last(&self) -> Option<u64> {
        self.ids.borrow().last().copied()
    }

    fn want(&self, id: u64) {
        self.last_wanted.set(Some(id));
    }

    /// Every id from the first seen to the last wanted, once each, in order.
    fn assert_contiguous_to_the_last_wanted(&self) {
        let ids = self.ids.borrow();
        let first = ids.first().copied().expect("a post arrived");
        let last = self.last_wanted.get().expect("a last post");
        assert_eq!(*ids, (first..=last).collect::<Vec<_>>());
    }
}

/// Reads posts until the last wanted one, checking each event's id is its post's.
async fn read_posts(live: &mut outer_http::client::Subscription<Post>, seen: &Seen) {
    loop {
        let event = live
            .next()
            .await
            .expect("the stream ended")
            .expect("no error");
        let id = event.data().id;
        assert_eq!(event.id().map(|id| id.to_string()), Some(id.to_string()));
        if let Some(last) = seen.last() {
            assert_eq!(id, last + 1, "post {id} after {last}: lost or repeated");
        }
        seen.ids.borrow_mut().push(id);
        if seen.last_wanted.get() == Some(id) {
            return;
        }
    }
}

/// Creates posts through the client, counting them (their ids are 1, 2, 3...).
struct Poster<'a, R> {
    client: &'a Client<R>,
    created: u64,
}

impl<'a, R: Transport> Poster<'a, R> {
    fn new(client: &'a Client<R>) -> Self {
        Self { client, created: 0 }
    }

    async fn create(&mut self) {
        self.created += 1;
        let title = format!("post {}", self.created);
        let post: Post = self
            .client
            .call("post.create", &json!({ "title": title }))
            .await
            .expect("post.create");
        assert_eq!(post.id, self.created);
    }

    /// `post.live` without a resume point sends the posts created after its handler
    /// subscribed, and the client cannot tell when that was: post until one arrives. From then
    /// on the subscription has an id to resume after, and must miss nothing.
    async fn until_one_arrives<C: ClientRuntime>(&mut self, seen: &Seen) {
        let timer = C::Transport::default().timer();
        let start = Instant::now();
        while seen.last().is_none() {
            assert!(start.elapsed() < DEADLINE, "no post arrived");
            self.create().await;
            timer.sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The scenarios against the chat example, one function per behaviour;
/// [`client_suite!`](macro@crate::client_suite) names a test after each.
#[allow(missing_docs)] // each scenario's name is its documentation
pub mod chat {
    use super::*;

    pub fn typed_calls_return_outputs_and_errors_intact<R: ClientRuntime>(version: OrpcVersion) {
        let chat = Chat::<R>::start(ServerConfig::default());
        run::<R, _>("calls", async {
            let client = chat.client_for(version).build().unwrap();
            #[derive(Serialize)]
            struct Ping {
                n: u32,
            }
            #[derive(Deserialize)]
            struct Pong {
                n: u32,
            }
            let pong: Pong = client.call("ping", &Ping { n: 7 }).await.unwrap();
            assert_eq!(pong.n, 7);
            let post: Post = client
                .call("post.create", &json!({"title": "hello"}))
                .await
                .unwrap();
            assert_eq!(
                post,
                Post {
                    id: 1,
                    title: "hello".into()
                }
            );

            let invalid = client
                .call::<Post>("post.create", &json!({"title": " "}))
                .await
                .unwrap_err();
            assert_error(&invalid, "BAD_REQUEST", 400, "Input validation failed");
            assert_eq!(
                invalid.data().unwrap()["issues"][0]["path"],
                json!(["title"])
            );

            let missing = client.call::<Value>("no.such", &()).await.unwrap_err();
            assert_eq!((missing.code(), missing.status()), ("NOT_FOUND", 404));
            // The output must be what the caller asked for.
            let mistyped = client
                .call::<Post>("ping", &Ping { n: 1 })
                .await
                .unwrap_err();
            assert_eq!(mistyped.code(), "BAD_GATEWAY");
            assert!(mistyped.message().contains("expected type"), "{mistyped}");
        });
    }

    /// Posts are created while the client reads, every stream is cut three times (posts are
    /// created right after each cut, while the client is away or coming back), and the client
    /// ends up with every post after its first exactly once, in order.
    pub fn live_posts_resume_after_forced_disconnects_with_no_loss_and_no_duplicate<
        R: ClientRuntime,
    >(
        version: OrpcVersion,
    ) {
        let chat = Chat::<R>::start(ServerConfig::default());
        let service = chat.service.clone();
        run::<R, _>("live posts", async {
            let client = chat.client_for(version).build().unwrap();
            let mut live = client.subscribe::<Post>("post.live", &());
            let seen = Seen::default();
            let writer = async {
                let mut posts = Poster::new(&client);
                posts.until_one_arrives::<R>(&seen).await;
                for _ in 0..3 {
                    for _ in 0..3 {
                        posts.create().await;
                    }
                    wait_until::<R>("the posts", || seen.last() == Some(posts.created)).await;
                    service.abort_streams();
                    posts.create().await;
                    posts.create().await;
                }
                seen.want(posts.created + 1);
                posts.create().await;
            };
            join(read_posts(&mut live, &seen), writer).await;
            seen.assert_contiguous_to_the_last_wanted();
            assert!(live.reconnects() >= 3, "{live:?}");
            assert_eq!(
                live.last_event_id().map(|id| id.to_string()),
                seen.last().map(|id| id.to_string())
            );
        });
    }

    /// `counter` sets `retry: 1000` on its events: the client waits that long, resumes after the
    /// last id, and reads the return value at the end.
    pub fn counter_resumes_after_forced_disconnects_and_returns_its_value<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let chat = Chat::<R>::start(ServerConfig::default());
        let service = chat.service.clone();
        run::<R, _>("counter", async {
            let client = chat.client_for(version).build().unwrap();
            let mut ticks = client.subscribe::<Tick>("counter", &counter_input(8, 20));
            let seen = ticks_to_the_end(&mut ticks, |n| {
                if n == 3 || n == 6 {
                    service.abort_streams();
                }
            })
            .await;
            assert_eq!(seen, (1..=8).collect::<Vec<_>>());
            assert_eq!(
                ticks.returned::<Value>().unwrap().unwrap(),
                json!({"done": true})
            );
            // Typed: read as the caller's type, and a wrong type is the client's 502.
            #[derive(Deserialize)]
            struct Finished {
                done: bool,
            }
            assert!(ticks.returned::<Finished>().unwrap().unwrap().done);
            let wrong = ticks.returned::<u64>().unwrap().unwrap_err();
            assert_eq!((wrong.code(), wrong.status()), ("BAD_GATEWAY", 502));
            assert!(ticks.reconnects() >= 2, "{ticks:?}");
        });
    }

    pub fn a_4xx_gives_up_with_code_status_message_and_data_intact<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let chat = Chat::<R>::start(ServerConfig::default());
        run::<R, _>("failing", async {
            let client = chat.client_for(version).build().unwrap();
            let mut failing = client.subscribe::<Tick>("failing", &());
            let first = failing.next().await.unwrap().unwrap();
            assert_eq!(first.data(), &Tick { n: 1 });
            let error = failing.next().await.unwrap().unwrap_err();
            assert_error(&error, "BAD_REQUEST", 400, "nope");
            assert_eq!(error.data(), Some(&json!({"why": "x"})));
            assert!(!error.is_defined());
            assert!(failing.next().await.is_none());
            assert_eq!(failing.reconnects(), 0);
        });
        assert_eq!(chat.service.total_requests(), 1, "no reconnect after a 4xx");
    }

    pub fn a_5xx_error_event_reconnects<R: ClientRuntime>(version: OrpcVersion) {
        let chat = Chat::<R>::start(ServerConfig::default());
        run::<R, _>("failing5xx", async {
            let client = chat.client_for(version).build().unwrap();
            let mut failing = client.subscribe::<Tick>("failing5xx", &());
            for _ in 0..3 {
                let event = failing.next().await.unwrap().unwrap();
                assert_eq!(event.data(), &Tick { n: 1 });
            }
            assert!(failing.reconnects() >= 2, "{failing:?}");
        });
        assert!(chat.service.total_requests() >= 3);
    }

    /// The server ends each stream after 300 ms with its interruption (a retryable 503 error
    /// event, never `done`): the client resumes after its last id each time until `done`.
    pub fn a_stream_interrupted_with_503_resumes_where_it_stopped<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let mut config = ServerConfig::default();
        config.orpc.timing.max_duration = Some(Duration::from_millis(300));
        let chat = Chat::<R>::start(config);
        run::<R, _>("interrupted counter", async {
            let client = chat.client_for(version).build().unwrap();
            let mut ticks = client.subscribe::<Tick>("counter", &counter_input(4, 200));
            let seen = ticks_to_the_end(&mut ticks, |_| {}).await;
            assert_eq!(seen, [1, 2, 3, 4]);
            assert_eq!(
                ticks.returned::<Value>().unwrap().unwrap(),
                json!({"done": true})
            );
            // Four 200 ms pauses cannot fit in one 300 ms stream.
            assert!(ticks.reconnects() >= 1, "{ticks:?}");
        });
    }

    /// Every stream is refused with a 503 answer: the client retries, and gives up with the
    /// server's error after `max_attempts` reconnects in a row.
    pub fn a_503_answer_is_retried_up_to_max_attempts<R: ClientRuntime>(version: OrpcVersion) {
        let chat = Chat::<R>::start(ServerConfig {
            max_streams: 0,
            ..ServerConfig::default()
        });
        run::<R, _>("refused", async {
            let client = chat
                .client_for(version)
                .max_attempts(Some(2))
                .build()
                .unwrap();
            let mut refused = client.subscribe::<Post>("post.live", &());
            let error = refused.next().await.unwrap().unwrap_err();
            assert_eq!((error.code(), error.status()), ("SERVICE_UNAVAILABLE", 503));
            assert!(refused.next().await.is_none());
            assert_eq!(refused.reconnects(), 2);
        });
        assert_eq!(chat.service.total_requests(), 3);
    }

    /// Keep-alives are off and `post.live` is silent: the client reconnects each time the
    /// inactivity timeout passes, resumes after the post it saw, and misses nothing.
    pub fn inactivity_timeout_reconnects_a_silent_stream_and_resumes<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let mut config = ServerConfig::default();
        config.orpc.timing.keep_alive = None;
        let chat = Chat::<R>::start(config);
        let service = chat.service.clone();
        run::<R, _>("inactivity", async {
            let client = chat
                .client_for(version)
                .inactivity_timeout(Some(Duration::from_millis(200)))
                .build()
                .unwrap();
            let mut live = client.subscribe::<Post>("post.live", &());
            let seen = Seen::default();
            let writer = async {
                let mut posts = Poster::new(&client);
                posts.until_one_arrives::<R>(&seen).await;
                wait_until::<R>("the posts", || seen.last() == Some(posts.created)).await;
                let before = service.total_requests();
                wait_until::<R>("two reconnects", || service.total_requests() >= before + 2).await;
                seen.want(posts.created + 1);
                posts.create().await;
            };
            join(read_posts(&mut live, &seen), writer).await;
            seen.assert_contiguous_to_the_last_wanted();
            assert!(live.reconnects() >= 2, "{live:?}");
            drop(live);
            // The connections the client gave up on were closed: the server kept no stream.
            wait_until::<R>("every stream to close", || service.active_streams() == 0).await;
        });
    }

    /// Dropping the stream closes its connection: the server drops the handler (its Drop guard
    /// runs and the stream's place is freed), for a stream in full flow and a silent one.
    pub fn dropping_the_stream_ends_the_handler_on_the_server<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let chat = Chat::<R>::start(ServerConfig::default());
        let service = chat.service.clone();
        run::<R, _>("drop", async {
            let client = chat.client_for(version).build().unwrap();
            let mut ticks = client.subscribe::<Tick>("counter", &counter_input(1_000_000, 20));
            assert_eq!(ticks.next().await.unwrap().unwrap().data(), &Tick { n: 1 });
            assert_eq!(service.active_streams(), 1);
            drop(ticks);
            wait_until::<R>("the counter's handler to go", || {
                service.active_streams() == 0
            })
            .await;

            let mut live = client.subscribe::<Post>("post.live", &());
            {
                let opened = wait_until::<R>("the subscription", || service.active_streams() == 1);
                match select(pin!(opened), live.next()).await {
                    Either::Left(((), _)) => {}
                    Either::Right((item, _)) => panic!("a silent stream yielded {item:?}"),
                }
            }
            drop(live);
            wait_until::<R>("the live handler to go", || service.active_streams() == 0).await;
        });
    }

    /// Input no server should send ends in a clear `BAD_GATEWAY` (or, for a server that never
    /// answers, `GATEWAY_TIMEOUT`), without a panic, unbounded memory or a retry loop.
    pub fn bad_server_input_is_a_clear_error<R: ClientRuntime>() {
        use canned::{Answer, Canned};
        let sse = |body: String| Answer::until_close("200 OK", "text/event-stream", body);
        let server = Canned::start(vec![
            ("/rpc/bad/json", sse(": \n\nevent: message\ndata: {oops\n\n".into())),
            ("/rpc/bad/line", sse(format!("data: {}\n\n", "x".repeat(5000)))),
            (
                "/rpc/bad/event",
                sse(format!("{}\n", "data: xxxxxxxxxxxxxxxx\n".repeat(200))),
            ),
            (
                "/rpc/bad/type",
                sse("event: message\nid: 1\ndata: {\"json\":{\"n\":\"one\"}}\n\n".into()),
            ),
            (
                "/rpc/not/stream",
                Answer::until_close("200 OK", "application/json", "{\"json\":1}"),
            ),
            (
                "/rpc/big/declared",
                Answer::Bytes(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{"
                        .to_vec(),
                ),
            ),
            (
                "/rpc/big/streamed",
                Answer::until_close("200 OK", "application/json", "[".repeat(5000)),
            ),
            (
                "/rpc/garbage",
                Answer::until_close("200 OK", "application/json", "not json"),
            ),
            (
                "/rpc/proxy/error",
                Answer::until_close("502 Bad Gateway", "text/html", "<html>bad gateway</html>"),
            ),
            ("/rpc/hang", Answer::Hang),
        ]);
        run::<R, _>("bad input", async {
            let client = client::<R>(&server.base())
                .max_line_bytes(1024)
                .max_event_bytes(2048)
                .max_body_bytes(1024)
                .request_timeout(Some(Duration::from_millis(300)))
                .build()
                .unwrap();
            for (path, says) in [
                ("bad.json", "not oRPC's JSON"),
                ("bad.line", "limit of 1024 bytes"),
                ("bad.event", "limit of 2048 bytes"),
                ("bad.type", "expected type"),
                ("not.stream", "without an event stream"),
            ] {
                let mut stream = client.subscribe::<Tick>(path, &());
                let error = stream.next().await.unwrap().unwrap_err();
                assert_eq!(error.code(), "BAD_GATEWAY", "{path}: {error}");
                assert!(error.message().contains(says), "{path}: {error}");
                assert!(stream.next().await.is_none(), "{path}");
            }
            for (path, code, says) in [
                ("big.declared", "BAD_GATEWAY", "limit of 1024 bytes"),
                ("big.streamed", "BAD_GATEWAY", "limit of 1024 bytes"),
                ("garbage", "BAD_GATEWAY", "not oRPC's JSON"),
                ("proxy.error", "BAD_GATEWAY", "without an oRPC error body"),
                ("hang", "GATEWAY_TIMEOUT", "request timeout"),
            ] {
                let error = client.call::<Value>(path, &()).await.unwrap_err();
                assert_eq!(error.code(), code, "{path}: {error}");
                assert!(error.message().contains(says), "{path}: {error}");
            }
        });
        for path in [
            "/rpc/bad/json",
            "/rpc/bad/line",
            "/rpc/bad/type",
            "/rpc/not/stream",
        ] {
            assert_eq!(server.requests(path), 1, "{path} is not retried");
        }
    }
}

/// What each version puts on the wire for JavaScript's `undefined`, and reads back, against the
/// bytes the v2 reference server sends (`tests/fixtures/reference/orpc-v2/nothing.http`,
/// `finite.http`) served by a canned server that keeps the requests.
#[allow(missing_docs)] // each scenario's name is its documentation
pub mod wire {
    use super::*;

    pub fn undefined_is_no_body_in_v2_and_an_empty_envelope_in_v1<R: ClientRuntime>() {
        use canned::{Answer, Canned};
        let server = Canned::start(vec![
            (
                "/rpc/nothing",
                Answer::Bytes(
                    b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec(),
                ),
            ),
            (
                "/rpc/finite",
                Answer::until_close(
                    "200 OK",
                    "text/event-stream",
                    ": \n\nevent: message\ndata: {\"json\":{\"n\":1}}\n\nevent: close\n\n",
                ),
            ),
        ]);
        let sent = |path: &str| {
            let request = server.last_request(path).expect("a request");
            let text = String::from_utf8(request).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let head = head.to_ascii_lowercase();
            (head.contains("\r\ncontent-type:"), body.to_owned())
        };
        run::<R, _>("undefined on the wire", async {
            let v1 = client::<R>(&server.base()).build().unwrap();
            let v2 = client::<R>(&server.base())
                .orpc_version(OrpcVersion::V2)
                .build()
                .unwrap();

            let nothing: Value = v1.call("nothing", &()).await.unwrap();
            assert_eq!(nothing, Value::Null);
            assert_eq!(sent("/rpc/nothing"), (true, "{}".to_owned()));
            // `@orpc/client` 2 sends neither a body nor a content-type; the answer's empty
            // body is `undefined`, read as `()`, `None` or `null`.
            let () = v2.call("nothing", &()).await.unwrap();
            assert_eq!(sent("/rpc/nothing"), (false, String::new()));
            let none: Option<Post> = v2.call("nothing", &None::<u8>).await.unwrap();
            assert_eq!(none, None);
            assert_eq!(sent("/rpc/nothing"), (false, String::new()));
            // An input is the same envelope in both.
            let _: Value = v2.call("nothing", &json!({"n": 1})).await.unwrap();
            assert_eq!(
                sent("/rpc/nothing"),
                (true, r#"{"json":{"n":1}}"#.to_owned())
            );

            // `close` without data: the stream is over with `undefined`, not dropped.
            let mut finite = v2.subscribe::<Tick>("finite", &());
            assert_eq!(finite.next().await.unwrap().unwrap().data(), &Tick { n: 1 });
            assert!(finite.next().await.is_none(), "close ends the stream");
            let () = finite.returned().unwrap().unwrap();
            assert_eq!(finite.returned::<Value>().unwrap().unwrap(), Value::Null);
            assert_eq!(finite.reconnects(), 0);
            assert_eq!(sent("/rpc/finite"), (false, String::new()));
        });
        assert_eq!(
            server.requests("/rpc/finite"),
            1,
            "no reconnect after close"
        );
    }
}

/// The scenarios against the Node reference servers (the real `@orpc/server`), one function per
/// behaviour.
#[allow(missing_docs)] // each scenario's name is its documentation
pub mod node {
    use super::proxy::Proxy;
    use super::reference::ReferenceServer;
    use super::*;

    fn base(addr: std::net::SocketAddr) -> String {
        format!("http://{addr}/rpc")
    }

    pub fn reference_calls_return_outputs_and_errors_intact<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let node = ReferenceServer::start(version);
        run::<R, _>("reference calls", async {
            let client = client::<R>(&base(node.addr()))
                .orpc_version(version)
                .build()
                .unwrap();
            let pong: Value = client.call("ping", &json!({"n": 2})).await.unwrap();
            assert_eq!(pong, json!({"n": 2}));
            let post: Post = client
                .call("post.create", &json!({"title": "t"}))
                .await
                .unwrap();
            assert_eq!(
                post,
                Post {
                    id: 1,
                    title: "t".into()
                }
            );
            let invalid = client
                .call::<Value>("ping", &json!({"n": "x"}))
                .await
                .unwrap_err();
            assert_error(&invalid, "BAD_REQUEST", 400, "Input validation failed");
            assert_eq!(invalid.data().unwrap()["issues"][0]["path"], json!(["n"]));
        });
    }

    /// The proxy cuts the connection twice mid-stream; the client resumes with
    /// `last-event-id` and the reference `counter` continues after it, to its return value.
    pub fn reference_counter_resumes_after_cuts_with_no_loss_and_no_duplicate<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let node = ReferenceServer::start(version);
        let proxy = Proxy::start(node.addr());
        run::<R, _>("reference counter", async {
            let client = client::<R>(&base(proxy.addr()))
                .orpc_version(version)
                .build()
                .unwrap();
            let mut ticks = client.subscribe::<Tick>("counter", &counter_input(8, 30));
            let seen = ticks_to_the_end(&mut ticks, |n| {
                if n == 3 || n == 6 {
                    proxy.cut();
                }
            })
            .await;
            assert_eq!(seen, (1..=8).collect::<Vec<_>>());
            assert_eq!(
                ticks.returned::<Value>().unwrap().unwrap(),
                json!({"done": true})
            );
            assert!(ticks.reconnects() >= 2, "{ticks:?}");
        });
    }

    pub fn reference_4xx_gives_up_with_code_status_message_and_data_intact<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let node = ReferenceServer::start(version);
        run::<R, _>("reference failing", async {
            let client = client::<R>(&base(node.addr()))
                .orpc_version(version)
                .build()
                .unwrap();
            let mut failing = client.subscribe::<Tick>("failing", &());
            assert_eq!(
                failing.next().await.unwrap().unwrap().data(),
                &Tick { n: 1 }
            );
            let error = failing.next().await.unwrap().unwrap_err();
            assert_error(&error, "BAD_REQUEST", 400, "nope");
            assert_eq!(error.data(), Some(&json!({"why": "x"})));
            assert!(failing.next().await.is_none());
            assert_eq!(failing.reconnects(), 0);
        });
    }

    pub fn reference_5xx_reconnects<R: ClientRuntime>(version: OrpcVersion) {
        let node = ReferenceServer::start(version);
        run::<R, _>("reference failing5xx", async {
            let client = client::<R>(&base(node.addr()))
                .orpc_version(version)
                .build()
                .unwrap();
            let mut failing = client.subscribe::<Tick>("failing5xx", &());
            for _ in 0..3 {
                assert_eq!(
                    failing.next().await.unwrap().unwrap().data(),
                    &Tick { n: 1 }
                );
            }
            assert!(failing.reconnects() >= 2, "{failing:?}");
        });
    }

    /// Dropping the stream closes the connection, and the reference server closes its side in
    /// turn (it aborts the handler's signal): seen through the proxy.
    pub fn reference_server_closes_its_side_when_the_stream_is_dropped<R: ClientRuntime>(
        version: OrpcVersion,
    ) {
        let node = ReferenceServer::start(version);
        let proxy = Proxy::start(node.addr());
        run::<R, _>("reference drop", async {
            let client = client::<R>(&base(proxy.addr()))
                .orpc_version(version)
                .build()
                .unwrap();
            let mut ticks = client.subscribe::<Tick>("counter", &counter_input(1_000_000, 20));
            assert_eq!(ticks.next().await.unwrap().unwrap().data(), &Tick { n: 1 });
            assert_eq!(proxy.open_upstream(), 1);
            drop(ticks);
            wait_until::<R>("the server to close its side", || {
                proxy.open_upstream() == 0
            })
            .await;
        });
    }

    /// oRPC 2 writes `undefined` as no data: `nothing` (a unary call that returns it) answers
    /// an empty body without a content-type, and `finite` (a stream that returns it) ends with
    /// `close` and no data line. The client reads both as `null`, and the stream as over.
    pub fn reference_v2_undefined_comes_back_as_null<R: ClientRuntime>() {
        let node = ReferenceServer::start(OrpcVersion::V2);
        let proxy = Proxy::start(node.addr());
        run::<R, _>("reference undefined", async {
            let client = client::<R>(&base(proxy.addr()))
                .orpc_version(OrpcVersion::V2)
                .build()
                .unwrap();
            let () = client.call("nothing", &()).await.unwrap();
            let nothing: Value = client.call("nothing", &()).await.unwrap();
            assert_eq!(nothing, Value::Null);
            let none: Option<Post> = client.call("nothing", &()).await.unwrap();
            assert_eq!(none, None);

            let mut finite = client.subscribe::<Tick>("finite", &());
            assert_eq!(finite.next().await.unwrap().unwrap().data(), &Tick { n: 1 });
            assert!(finite.next().await.is_none(), "close ends the stream");
            let () = finite.returned().unwrap().unwrap();
            assert_eq!(finite.returned::<Value>().unwrap().unwrap(), Value::Null);
            assert_eq!(finite.returned::<Option<u64>>().unwrap().unwrap(), None);
            assert_eq!(finite.reconnects(), 0);
            // `counter` returns a value on v2 too.
            let mut ticks = client.subscribe::<Tick>("counter", &counter_input(2, 0));
            assert_eq!(ticks_to_the_end(&mut ticks, |_| {}).await, [1, 2]);
            assert_eq!(
                ticks.returned::<Value>().unwrap().unwrap(),
                json!({"done": true})
            );
        });
    }
}

/// Expands the client suite into `#[test]`s for a [`ClientRuntime`]: one per scenario, and for
/// the scenarios that take an [`OrpcVersion`] a module of two, `v1` and `v2`. It defines the type
/// alias `ClientSuiteRuntime` where it is expanded, so expand it once per module.
///
/// ```ignore
/// outer_harness::client_suite!(MyRuntime);
/// ```
#[macro_export]
macro_rules! client_suite {
    ($runtime:ty) => {
        /// The runtime under test, named so that the per-version modules below can reach it.
        type ClientSuiteRuntime = $runtime;
        $crate::client_suite!(@versions chat;
            typed_calls_return_outputs_and_errors_intact,
            live_posts_resume_after_forced_disconnects_with_no_loss_and_no_duplicate,
            counter_resumes_after_forced_disconnects_and_returns_its_value,
            a_4xx_gives_up_with_code_status_message_and_data_intact,
            a_5xx_error_event_reconnects,
            a_stream_interrupted_with_503_resumes_where_it_stopped,
            a_503_answer_is_retried_up_to_max_attempts,
            inactivity_timeout_reconnects_a_silent_stream_and_resumes,
            dropping_the_stream_ends_the_handler_on_the_server,
        );
        $crate::client_suite!(@tests chat;
            bad_server_input_is_a_clear_error,
        );
        $crate::client_suite!(@tests wire;
            undefined_is_no_body_in_v2_and_an_empty_envelope_in_v1,
        );
        $crate::client_suite!(@versions node;
            reference_calls_return_outputs_and_errors_intact,
            reference_counter_resumes_after_cuts_with_no_loss_and_no_duplicate,
            reference_4xx_gives_up_with_code_status_message_and_data_intact,
            reference_5xx_reconnects,
            reference_server_closes_its_side_when_the_stream_is_dropped,
        );
        $crate::client_suite!(@tests node;
            reference_v2_undefined_comes_back_as_null,
        );
    };
    (@tests $module:ident; $($name:ident,)*) => {
        $(
            #[test]
            fn $name() {
                $crate::client_suite::$module::$name::<ClientSuiteRuntime>();
            }
        )*
    };
    // A module per scenario with a test per version: `name::v1` and `name::v2`.
    (@versions $module:ident; $($name:ident,)*) => {
        $(
            mod $name {
                #[test]
                fn v1() {
                    $crate::client_suite::$module::$name::<super::ClientSuiteRuntime>(
                        $crate::client_suite::OrpcVersion::V1,
                    );
                }

                #[test]
                fn v2() {
                    $crate::client_suite::$module::$name::<super::ClientSuiteRuntime>(
                        $crate::client_suite::OrpcVersion::V2,
                    );
                }
            }
        )*
    };
}
