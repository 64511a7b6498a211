//! Mounting Outer in axum through tower: the same service, routed by axum, over real loopback
//! HTTP.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use outer_harness::conformance::{quiet_config, router, Probe};
use outer_harness::loopback::{post, wait_until};
use outer_tokio::{service, ServerConfig};

/// Serves `app` with `axum::serve` on a runtime of its own, so the blocking test client never
/// stalls it.
fn serve_axum(app: axum::Router) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, runtime)
}

#[test]
fn nest_service_mounts_the_service_under_axum_with_an_empty_prefix() {
    let probe = Arc::new(Probe::default());
    let config = ServerConfig {
        rpc_prefix: String::new(),
        ..quiet_config()
    };
    let outer = service(router(&probe), config);
    let app = axum::Router::new()
        .route("/health", axum::routing::get(|| async { "ok" }))
        .nest_service("/rpc", outer.clone());
    let (addr, _runtime) = serve_axum(app);

    let mut ping = post(addr, "/rpc/ping", r#"{"json":{"n":1}}"#);
    assert_eq!(ping.status, 200);
    assert_eq!(ping.read_to_end().0, r#"{"json":{"n":1}}"#);

    let health = outer_harness::loopback::send(addr, b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n");
    assert_eq!(health.status, 200, "axum's own routes still answer");

    let missing = post(addr, "/rpc/nope", "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["json"]["code"], "NOT_FOUND");

    // Streams go through axum unbuffered: the first event arrives while the handler waits.
    let mut stream = post(addr, "/rpc/gated", "");
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    stream.read_until("id: 1\ndata: {\"json\":{\"n\":1}}\n\n");
    assert_eq!(outer.active_streams(), 1);
    // A disconnect under axum drops the handler too.
    stream.disconnect();
    wait_until("the stream to close", || outer.active_streams() == 0);
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), 1);
}

#[test]
fn route_service_keeps_the_prefix_so_the_default_one_applies() {
    let probe = Arc::new(Probe::default());
    let outer = service(router(&probe), ServerConfig::default());
    let app = axum::Router::new().route_service("/rpc/{*path}", outer);
    let (addr, _runtime) = serve_axum(app);
    let mut ping = post(addr, "/rpc/ping", r#"{"json":"hi"}"#);
    assert_eq!(ping.status, 200);
    assert_eq!(ping.read_to_end().0, r#"{"json":"hi"}"#);
}
