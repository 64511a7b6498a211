//! The load generator against live in-process servers: it reads both protocols' streams from
//! Outer, over SSE and WebSocket, and the floor's, and counts every post it published as
//! delivered to every subscriber.
//! Small and quick: no figure is checked, only that what was sent arrived.

mod common;

use std::sync::Arc;
use std::time::Duration;

use outer_bench::load::{run, Config};
use outer_bench::protocol::Protocol;
use outer_examples::chat::{self, Chat};

fn small(url: &str, protocol: Protocol) -> Config {
    let mut config = common::small(url, protocol);
    config.server_pid = Some(std::process::id());
    config
}

async fn check(config: Config) {
    let report = run(&config).await.unwrap();
    common::assert_every_post_delivered(&report);
    assert!(report.rss_idle_kib.is_some());
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["load"]["deliveries"], 120);
    // The server's CPU per delivery, and the kernel's part of it, no more than the whole.
    let whole = json["load"]["server_cpu_us_per_delivery"].as_f64().unwrap();
    let kernel = json["load"]["server_system_cpu_us_per_delivery"]
        .as_f64()
        .unwrap();
    assert!((0.0..=whole).contains(&kernel), "{kernel} of {whole}");
}

/// The chat on tokio, on a fresh loopback port, and its base URL.
async fn serve_chat() -> (outer_tokio::Server, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = chat::app(Chat::new(), Arc::new(outer_tokio::TokioRuntime));
    let server =
        outer_tokio::serve(listener, outer_tokio::service(app, chat::server_config())).unwrap();
    let base = format!("http://{}", server.local_addr());
    (server, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_reaches_every_subscriber_over_orpc_and_trpc_from_outer() {
    let (server, base) = serve_chat().await;
    check(small(&format!("{base}/rpc"), Protocol::Orpc)).await;
    check(small(&format!("{base}/trpc"), Protocol::Trpc)).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_reaches_every_websocket_subscriber_from_outer() {
    // Subscribers on WebSocket (`ws://…/rpc`, `ws://…/trpc`), posts over HTTP, as bench/run.sh's
    // `-ws` entries run it.
    let (server, base) = serve_chat().await;
    check(small(&format!("{base}/rpc"), Protocol::OrpcWs)).await;
    check(small(&format!("{base}/trpc"), Protocol::TrpcWs)).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_reaches_every_http2_subscriber_from_outer() {
    // Subscribers on HTTP/2 with prior knowledge, posts over HTTP/1.1, as bench/run.sh's `-h2`
    // entries run it: a connection each, then two streams to a connection (the three subscribers
    // on two connections, one of them multiplexed).
    let (server, base) = serve_chat().await;
    for per_connection in [1, 2] {
        for (path, protocol) in [("rpc", Protocol::OrpcH2), ("trpc", Protocol::TrpcH2)] {
            let mut config = small(&format!("{base}/{path}"), protocol);
            config.streams_per_connection = per_connection;
            let report = run(&config).await.unwrap();
            common::assert_every_post_delivered(&report);
            assert_eq!(report.streams_per_connection, Some(per_connection));
            let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
            assert_eq!(json["protocol"], protocol.to_string());
            assert_eq!(json["streams_per_connection"], per_connection);
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn an_http2_subscriber_a_server_refuses_is_an_error_not_a_hang() {
    // The chat answers an unknown procedure 404, over HTTP/2 as over HTTP/1.1.
    let (server, base) = serve_chat().await;
    let mut config = small(&format!("{base}/nowhere"), Protocol::TrpcH2);
    config.connect_timeout = Duration::from_secs(5);
    let err = run(&config).await.unwrap_err();
    assert!(err.to_string().contains("post.live answered 404"), "{err}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_post_reaches_every_subscriber_from_the_floor() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, outer_bench::floor::router())
            .await
            .unwrap()
    });
    check(small(&format!("{base}/rpc"), Protocol::Orpc)).await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_connect_from_the_source_addresses_asked_for() {
    // As at N = 100,000, where one source address has too few ports for the subscribers: here
    // two loopback addresses besides 127.0.0.1, over HTTP/1.1 and over HTTP/2 (whose pool
    // connects on its own).
    let (server, base) = serve_chat().await;
    for protocol in [Protocol::Orpc, Protocol::OrpcH2] {
        let mut config = small(&format!("{base}/rpc"), protocol);
        config.source_addresses = "2".parse().unwrap();
        let report = run(&config).await.unwrap();
        common::assert_every_post_delivered(&report);
        assert_eq!(report.source_addresses, 2);
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["source_addresses"], 2);
    }
    // A source address not on this machine: every connect fails, and the run says so.
    let mut config = small(&format!("{base}/rpc"), Protocol::Orpc);
    config.source_addresses = "192.0.2.1".parse().unwrap();
    config.connect_timeout = Duration::from_secs(5);
    let err = run(&config).await.unwrap_err();
    assert!(err.to_string().contains("no subscriber connected"), "{err}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_is_not_there_is_an_error_not_a_hang() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/rpc", listener.local_addr().unwrap());
    drop(listener);
    let err = run(&small(&url, Protocol::Orpc)).await.unwrap_err();
    assert!(err.to_string().contains("no subscriber connected"), "{err}");
}

/// What a scripted server does to its streams, so that the generator's figures can be checked
/// against a known answer.
#[derive(Clone, Copy, Default)]
struct Script {
    /// Each frame waits this long in every stream before it is written.
    delay: Duration,
    /// The load phase's post with this number (1-based) goes to no stream.
    drop_load_post: Option<u64>,
    /// The load phase's post with this number goes to every stream twice.
    repeat_load_post: Option<u64>,
}

/// A server of `post.create` and `post.live` in oRPC's shape, like the floor, that follows a
/// script. Load-phase posts are told apart by their title (the generator stamps the phase in).
fn scripted(script: Script) -> axum::Router {
    use axum::body::{Body, Bytes};
    use axum::routing::post;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::sync::broadcast;

    struct State {
        /// The last id given out. Held while its frame is sent, so that posts made at once
        /// reach the streams in id order, as a real server's do.
        ids: std::sync::Mutex<u64>,
        load_posts: AtomicU64,
        frames: broadcast::Sender<Bytes>,
    }
    let state = Arc::new(State {
        ids: std::sync::Mutex::new(0),
        load_posts: AtomicU64::new(0),
        frames: broadcast::channel(4096).0,
    });
    let create = {
        let state = Arc::clone(&state);
        move |body: Bytes| async move {
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let title = value["json"]["title"].as_str().unwrap().to_owned();
            let mut ids = state.ids.lock().unwrap();
            *ids += 1;
            let id = *ids;
            let json = serde_json::json!({ "id": id, "title": title }).to_string();
            let frame = Bytes::from(format!(
                "event: message\nid: {id}\ndata: {{\"json\":{json}}}\n\n"
            ));
            let copies = if title.starts_with("1 ") {
                let k = state.load_posts.fetch_add(1, Ordering::SeqCst) + 1;
                if script.drop_load_post == Some(k) {
                    0
                } else if script.repeat_load_post == Some(k) {
                    2
                } else {
                    1
                }
            } else {
                1
            };
            for _ in 0..copies {
                let _ = state.frames.send(frame.clone());
            }
            drop(ids);
            format!("{{\"json\":{json}}}")
        }
    };
    let live = move || async move {
        let frames = futures::stream::unfold(state.frames.subscribe(), move |mut rx| async move {
            let frame = rx.recv().await.ok()?;
            tokio::time::sleep(script.delay).await;
            Some((Ok::<_, std::convert::Infallible>(frame), rx))
        });
        let opening = futures::stream::once(async { Ok(Bytes::from_static(b": \n\n")) });
        axum::response::Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(opening.chain(frames)))
            .unwrap()
    };
    axum::Router::new()
        .route("/rpc/post/create", post(create))
        .route("/rpc/post/live", post(live))
}

/// Serves `script` and runs the small load against it.
async fn against(script: Script, events: u64) -> outer_bench::load::Report {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, scripted(script)).await });
    let mut config = small(&format!("{base}/rpc"), Protocol::Orpc);
    config.events = Some(events);
    config.paced_duration = Duration::ZERO;
    config.stall = Duration::from_millis(300);
    let report = run(&config).await.unwrap();
    server.abort();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_measured_from_the_post_to_its_arrival() {
    // Every frame is held 30 ms: no event can arrive sooner after its post than that.
    let delay = Duration::from_millis(30);
    let report = against(
        Script {
            delay,
            ..Script::default()
        },
        12,
    )
    .await;
    assert_eq!(report.load.deliveries, 3 * 12, "{}", report.to_human());
    let [p50, p99, max] = report.load.latency_us;
    assert!(p50 >= 0.99 * 30_000.0, "p50 {p50} µs under the 30 ms delay");
    assert!(p50 <= p99 && p99 <= max, "{p50} {p99} {max}");
    assert_eq!(report.lost + report.out_of_order + report.load.stalls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_no_subscriber_gets_is_counted_lost_and_stalls_once() {
    let report = against(
        Script {
            drop_load_post: Some(10),
            ..Script::default()
        },
        40,
    )
    .await;
    assert_eq!(report.load.events, 40);
    assert_eq!(report.load.deliveries, 3 * 39, "{}", report.to_human());
    assert_eq!(report.lost, 3, "one gap in each of the 3 streams");
    assert_eq!(report.load.stalls, 1);
    assert_eq!(report.out_of_order, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_post_is_out_of_order_and_not_a_second_delivery() {
    let report = against(
        Script {
            repeat_load_post: Some(10),
            ..Script::default()
        },
        40,
    )
    .await;
    assert_eq!(report.load.deliveries, 3 * 40, "{}", report.to_human());
    assert_eq!(report.out_of_order, 3);
    assert_eq!(report.lost + report.load.stalls, 0);
}

#[tokio::test]
async fn a_server_that_never_answers_is_an_error_after_the_connect_timeout() {
    // Accepts connections (the kernel does, into the backlog) but never writes a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/rpc", listener.local_addr().unwrap());
    let mut config = small(&url, Protocol::Orpc);
    config.connect_timeout = Duration::from_millis(300);
    let err = run(&config).await.unwrap_err();
    assert!(err.to_string().contains("connect timeout"), "{err}");
    drop(listener);
}
