//! The real `@orpc/client` and `@trpc/client` (pinned in tests/interop/package-lock.json)
//! against the chat example on tokio, on smol and on monoio: unary calls, errors with code, status,
//! message and data intact, streams with ids and retry, the done value, resume after the server
//! drops the connection, 5xx reconnects, no reconnect after a 4xx, abort or unsubscribe
//! observed as cleanup on the server, and the chat's `mentions.live` refused with 401 without a
//! bearer token (what each client makes of it) and streaming with one (the scripts check all of
//! it; see tests/interop/README.md).
//!
//! The same clients over WebSocket (`trpc-ws.mjs`: `createWSClient` + `wsLink`; `orpc-ws.mjs`:
//! the websocket `RPCLink` behind a reconnecting socket, with `ClientRetryPlugin`), on the `ws`
//! package: calls and batches over one socket, tracked subscriptions, errors that end a
//! subscription, stop and cancel seen as cleanup on the server, `connectionParams` signing a tRPC
//! socket in, lazy sockets, and resume after the server cuts every socket, each post exactly once.
//!
//! All four again over TLS, on tokio and smol (the runtimes that serve it): the scripts get an
//! `https://` or `wss://` URL (the hooks `https://` too) and Node trusts the test's certificate
//! authority (`NODE_EXTRA_CA_CERTS`). Node's fetch and `ws` offer no HTTP/2, so these prove the
//! clients' whole protocols over TLS with ALPN's `http/1.1`, the WebSocket upgrades included.

use outer_harness::conformance::{Adapter, RunningServer};
use outer_monoio::testing::IoUring as Monoio;
use outer_smol::testing::Smol;
use outer_tests::{run_node, start_chat, start_chat_tls, Certificates, TlsAdapter};
use outer_tokio::testing::Tokio;

fn run<R: Adapter>(script: &str, prefix: &str) {
    let server = start_chat::<R>(outer_examples::chat::server_config());
    check(server, script, "http", "http", prefix, &[]);
}

/// As [`run`], for the WebSocket scripts: they get the socket's URL (`ws://ADDR/trpc`), the hooks
/// stay plain HTTP.
fn run_ws<R: Adapter>(script: &str, prefix: &str) {
    let server = start_chat::<R>(outer_examples::chat::server_config());
    check(server, script, "ws", "http", prefix, &[]);
}

/// As [`run`] or [`run_ws`] (`scheme` `https` or `wss`), the chat served over TLS.
fn run_tls<R: TlsAdapter>(script: &str, scheme: &str, prefix: &str) {
    let certificates = Certificates::generate();
    let server = start_chat_tls::<R>(outer_examples::chat::server_config(), &certificates);
    let ca = certificates.ca.to_str().unwrap().to_string();
    check(
        server,
        script,
        scheme,
        "https",
        prefix,
        &[("NODE_EXTRA_CA_CERTS", ca)],
    );
}

/// Runs `script` against `server` at `scheme://ADDR/prefix`, its hooks at `hooks://ADDR/__test`,
/// with every optional step on, and checks that none was skipped and every stream was cleaned up.
fn check(
    mut server: impl RunningServer,
    script: &str,
    scheme: &str,
    hooks: &str,
    prefix: &str,
    env: &[(&str, String)],
) {
    let addr = server.addr();
    let root = format!("{hooks}://{addr}");
    let mut env = env.to_vec();
    env.extend([
        ("DROP_URL", format!("{root}/__test/drop")),
        ("CLEANUP_URL", format!("{root}/__test/streams")),
        // The chat has `me` and `mentions.live` behind a bearer token.
        ("AUTH_PROCEDURES", "1".to_string()),
    ]);
    let output = run_node(script, &format!("{scheme}://{addr}{prefix}"), &env);
    // The optional steps must have run, not been skipped.
    assert!(!output.contains("skip"), "a step was skipped:\n{output}");
    assert!(output.contains("all checks passed"), "{output}");
    assert_eq!(server.active_streams(), 0, "every stream was cleaned up");
    assert!(server.shutdown());
}

#[test]
fn orpc_client_works_against_outer_on_tokio() {
    run::<Tokio>("orpc.mjs", "/rpc");
}

#[test]
fn orpc_client_works_against_outer_on_smol() {
    run::<Smol>("orpc.mjs", "/rpc");
}

#[test]
fn orpc_client_works_against_outer_on_monoio() {
    run::<Monoio>("orpc.mjs", "/rpc");
}

#[test]
fn trpc_client_works_against_outer_on_tokio() {
    run::<Tokio>("trpc.mjs", "/trpc");
}

#[test]
fn trpc_client_works_against_outer_on_smol() {
    run::<Smol>("trpc.mjs", "/trpc");
}

#[test]
fn trpc_client_works_against_outer_on_monoio() {
    run::<Monoio>("trpc.mjs", "/trpc");
}

#[test]
fn trpc_ws_client_works_against_outer_on_tokio() {
    run_ws::<Tokio>("trpc-ws.mjs", "/trpc");
}

#[test]
fn trpc_ws_client_works_against_outer_on_smol() {
    run_ws::<Smol>("trpc-ws.mjs", "/trpc");
}

#[test]
fn trpc_ws_client_works_against_outer_on_monoio() {
    run_ws::<Monoio>("trpc-ws.mjs", "/trpc");
}

#[test]
fn orpc_ws_client_works_against_outer_on_tokio() {
    run_ws::<Tokio>("orpc-ws.mjs", "/rpc");
}

#[test]
fn orpc_ws_client_works_against_outer_on_smol() {
    run_ws::<Smol>("orpc-ws.mjs", "/rpc");
}

#[test]
fn orpc_ws_client_works_against_outer_on_monoio() {
    run_ws::<Monoio>("orpc-ws.mjs", "/rpc");
}

#[test]
fn orpc_client_works_against_outer_over_tls_on_tokio() {
    run_tls::<Tokio>("orpc.mjs", "https", "/rpc");
}

#[test]
fn orpc_client_works_against_outer_over_tls_on_smol() {
    run_tls::<Smol>("orpc.mjs", "https", "/rpc");
}

#[test]
fn trpc_client_works_against_outer_over_tls_on_tokio() {
    run_tls::<Tokio>("trpc.mjs", "https", "/trpc");
}

#[test]
fn trpc_client_works_against_outer_over_tls_on_smol() {
    run_tls::<Smol>("trpc.mjs", "https", "/trpc");
}

#[test]
fn trpc_ws_client_works_against_outer_over_tls_on_tokio() {
    run_tls::<Tokio>("trpc-ws.mjs", "wss", "/trpc");
}

#[test]
fn trpc_ws_client_works_against_outer_over_tls_on_smol() {
    run_tls::<Smol>("trpc-ws.mjs", "wss", "/trpc");
}

#[test]
fn orpc_ws_client_works_against_outer_over_tls_on_tokio() {
    run_tls::<Tokio>("orpc-ws.mjs", "wss", "/rpc");
}

#[test]
fn orpc_ws_client_works_against_outer_over_tls_on_smol() {
    run_tls::<Smol>("orpc-ws.mjs", "wss", "/rpc");
}
