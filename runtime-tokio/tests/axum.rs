//! Mounting Outer in axum through tower: the same service, routed by axum, over real loopback
//! HTTP; and what axum puts in a request (its layers' extensions, its `ConnectInfo`) reaching
//! the context builder.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::ConnectInfo;
use outer_core::{procedure, App, Router};
use outer_harness::conformance::context::{open_request, request};
use outer_harness::conformance::{quiet_config, router, Probe};
use outer_harness::loopback::{post, read_response, wait_until};
use outer_http::HttpHead;
use outer_tokio::{service, ServerConfig};
use serde_json::json;

/// A runtime of its own, so the blocking test client never stalls the server, and a listener.
fn runtime_and_listener() -> (tokio::runtime::Runtime, tokio::net::TcpListener) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    (runtime, listener)
}

/// Serves `app` with `axum::serve`.
fn serve_axum(app: axum::Router) -> (SocketAddr, tokio::runtime::Runtime) {
    let (runtime, listener) = runtime_and_listener();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, runtime)
}

/// Serves `app` with `axum::serve`, each request carrying its peer as axum's `ConnectInfo`.
fn serve_axum_with_connect_info(app: axum::Router) -> (SocketAddr, tokio::runtime::Runtime) {
    let (runtime, listener) = runtime_and_listener();
    let addr = listener.local_addr().unwrap();
    let make = app.into_make_service_with_connect_info::<SocketAddr>();
    runtime.spawn(async move { axum::serve(listener, make).await.unwrap() });
    (addr, runtime)
}

/// An oRPC service at the root of an axum nest.
fn nested_config() -> ServerConfig {
    ServerConfig {
        rpc_prefix: String::new(),
        ..quiet_config()
    }
}

#[test]
fn nest_service_mounts_the_service_under_axum_with_an_empty_prefix() {
    let probe = Arc::new(Probe::default());
    let outer = service(router(&probe), nested_config());
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
fn orpc_1_and_2_nest_side_by_side_from_one_router() {
    let probe = Arc::new(Probe::default());
    let v1 = ServerConfig {
        rpc_v2_prefix: None,
        ..nested_config()
    };
    // A v2 prefix equal to the (empty) oRPC prefix takes it over: this service speaks v2 only.
    let v2 = ServerConfig {
        rpc_v2_prefix: Some(String::new()),
        ..nested_config()
    };
    let app = axum::Router::new()
        .nest_service("/rpc", service(router(&probe), v1))
        .nest_service("/rpc2", service(router(&probe), v2));
    let (addr, _runtime) = serve_axum(app);

    for path in ["/rpc/ping", "/rpc2/ping"] {
        let mut ping = post(addr, path, r#"{"json":{"n":1}}"#);
        assert_eq!(ping.read_to_end().0, r#"{"json":{"n":1}}"#, "{path}");
    }
    let v1 = post(addr, "/rpc/nope", "").json();
    assert_eq!(
        (&v1["json"]["status"], v1["json"].get("inferable")),
        (&json!(404), None)
    );
    let v2 = post(addr, "/rpc2/nope", "").json();
    assert_eq!(
        (v2["json"].get("status"), &v2["json"]["inferable"]),
        (None, &json!(false))
    );
    // Nested at the root of its nest, the v1 service has no /rpc2 of its own.
    assert_eq!(
        post(addr, "/rpc/rpc2/ping", r#"{"json":{"n":1}}"#).status,
        404
    );
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

#[derive(Clone, Debug)]
struct Region(&'static str);

#[derive(Clone, Debug)]
struct Tenant(String);

/// What the context builder found in a request's extensions, answered by `whoami`.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct Found {
    region: Option<&'static str>,
    tenant: Option<String>,
    connect_info: Option<String>,
    peer: Option<String>,
}

fn whoami() -> App<Found> {
    let router = Router::new().route(
        "whoami",
        procedure::<Found>().query(|req| async move { Ok(req.ctx) }),
    );
    App::new(router, |head| async move {
        Ok(Found {
            region: head.extension::<Region>().map(|region| region.0),
            tenant: head.extension::<Tenant>().map(|tenant| tenant.0.clone()),
            connect_info: head
                .extension::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.to_string()),
            peer: head.peer.map(|peer| peer.to_string()),
        })
    })
}

/// An `Extension` layer and a `map_request` middleware (a tenant from a header, as an auth
/// layer would put its user) each put a value in the request; the context builder finds both.
#[test]
fn the_context_builder_reaches_what_axum_layers_put_in_the_extensions() {
    let app = axum::Router::new()
        .nest_service("/rpc", service(whoami(), nested_config()))
        .layer(axum::middleware::map_request(
            |mut request: axum::extract::Request| async move {
                let tenant = request.headers().get("x-tenant").cloned();
                if let Some(tenant) = tenant.and_then(|t| t.to_str().ok().map(str::to_owned)) {
                    request.extensions_mut().insert(Tenant(tenant));
                }
                request
            },
        ))
        .layer(axum::Extension(Region("eu")));
    let (addr, _runtime) = serve_axum(app);

    let found = request(addr, "POST", "/rpc/whoami", &[("x-tenant", "acme")], "");
    assert_eq!(found.status, 200);
    assert_eq!(
        found.json()["json"],
        json!({"region": "eu", "tenant": "acme", "connect_info": null, "peer": null})
    );
    let found = post(addr, "/rpc/whoami", "");
    assert_eq!(
        found.json()["json"]["tenant"],
        json!(null),
        "no header, no tenant"
    );
}

/// Served with `into_make_service_with_connect_info`, the client's address reaches the context
/// builder as axum's `ConnectInfo`. axum owns the connection there, so `head.peer` (what
/// Outer's own servers fill) stays empty.
#[test]
fn the_context_builder_reaches_axums_connect_info() {
    let app = axum::Router::new().nest_service("/rpc", service(whoami(), nested_config()));
    let (addr, _runtime) = serve_axum_with_connect_info(app);
    let stream = open_request(addr, "POST", "/rpc/whoami", &[], "");
    let client = stream.local_addr().unwrap().to_string();
    let found = read_response(stream);
    assert_eq!(found.status, 200);
    let found = found.json();
    assert_eq!(found["json"]["connect_info"], json!(client));
    assert_eq!(found["json"]["peer"], json!(null));
}

/// Under axum, axum owns the connection: the upgraded socket reaches the service through hyper's
/// upgrade, and runs on the spawner `outer_tokio::service` gave it. Both protocols, and a closed
/// socket dropping its handler.
#[test]
fn websockets_work_under_axum() {
    use outer_harness::websocket::WsClient;

    let probe = Arc::new(Probe::default());
    let config = ServerConfig {
        trpc_prefix: Some("/trpc".into()),
        ..nested_config()
    };
    let outer = service(router(&probe), config);
    let app = axum::Router::new()
        .nest_service("/rpc", outer.clone())
        .route_service("/trpc", outer.clone());
    let (addr, _runtime) = serve_axum(app);

    let mut orpc = WsClient::connect(addr, "/rpc");
    orpc.send(r#"{"i":"1","p":{"u":"/ping","b":{"json":{"n":1}}}}"#);
    assert_eq!(orpc.recv_text(), r#"{"i":"1","p":{"b":{"json":{"n":1}}}}"#);

    let mut trpc = WsClient::connect(addr, "/trpc");
    trpc.send(r#"{"id":1,"method":"subscription","params":{"path":"gated"}}"#);
    assert_eq!(trpc.recv_text(), r#"{"id":1,"result":{"type":"started"}}"#);
    assert_eq!(
        trpc.recv_text(),
        r#"{"id":1,"result":{"type":"data","data":{"id":"1","data":{"n":1}},"id":"1"}}"#
    );
    assert_eq!(outer.active_streams(), 1);
    trpc.close();
    wait_until("the handler's cleanup", || {
        probe.cleanups.load(Ordering::SeqCst) == 1
    });
    // The handler's cleanup runs as it is dropped, on the socket's thread, just before the
    // stream's place is given back: wait for that too rather than race it.
    wait_until("the stream's place given back", || {
        outer.active_streams() == 0
    });
}
