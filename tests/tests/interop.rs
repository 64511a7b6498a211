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

use outer_harness::conformance::{Adapter, RunningServer};
use outer_monoio::testing::IoUring as Monoio;
use outer_smol::testing::Smol;
use outer_tests::{run_node, start_chat};
use outer_tokio::testing::Tokio;

fn run<R: Adapter>(script: &str, prefix: &str) {
    run_at::<R>(script, "http", prefix);
}

/// As [`run`], for the WebSocket scripts: they get the socket's URL (`ws://ADDR/trpc`), the hooks
/// stay plain HTTP.
fn run_ws<R: Adapter>(script: &str, prefix: &str) {
    run_at::<R>(script, "ws", prefix);
}

fn run_at<R: Adapter>(script: &str, scheme: &str, prefix: &str) {
    let mut server = start_chat::<R>(outer_examples::chat::server_config());
    let addr = server.addr();
    let root = format!("http://{addr}");
    let output = run_node(
        script,
        &format!("{scheme}://{addr}{prefix}"),
        &[
            ("DROP_URL", format!("{root}/__test/drop")),
            ("CLEANUP_URL", format!("{root}/__test/streams")),
            // The chat has `me` and `mentions.live` behind a bearer token.
            ("AUTH_PROCEDURES", "1".to_string()),
        ],
    );
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
