//! The real `@orpc/client` (1.x and 2.x) and `@trpc/client` (pinned in
//! tests/interop/package-lock.json) against the chat example on tokio, on smol and on monoio:
//! unary calls, errors with code, status, message and data intact, streams with ids and retry,
//! the done value, resume after the server drops the connection, 5xx reconnects (oRPC: retried by
//! the retry plugin), no reconnect after a 4xx, abort or unsubscribe observed as cleanup on the
//! server, and the chat's `mentions.live` refused with 401 without a bearer token (what each
//! client makes of it) and streaming with one (the scripts check all of it; see
//! tests/interop/README.md).
//!
//! The same clients over WebSocket (`trpc-ws.mjs`: `createWSClient` + `wsLink`; `orpc-ws.mjs`:
//! the websocket `RPCLink` behind a reconnecting socket, with `ClientRetryPlugin`), on the `ws`
//! package: calls and batches over one socket, tracked subscriptions, errors that end a
//! subscription, stop and cancel seen as cleanup on the server, `connectionParams` signing a tRPC
//! socket in, lazy sockets, and resume after the server cuts every socket, each post exactly once.
//!
//! oRPC 2 beside oRPC 1: the real `@orpc/client` 2.x (`orpc-v2.mjs`, the npm alias
//! `@orpc-v2/client` for `@orpc/client@2.0.0-beta.16`, `RPCLink` + `RetryLinkPlugin`) at the
//! chat's `rpc_v2_prefix` (`/rpc2`), on tokio, smol and monoio: every step of `orpc.mjs` (the two
//! scripts share them, `orpcHttpSteps` in `lib.mjs`), with errors as 2.x shows them (`defined`
//! and `inferable`, no `status`), and what only 2.x does: `undefined` input sent as no body and no
//! content-type, `safe()` and inferable errors, a bigint as the meta name `bigint`, `GET` with
//! `?data=` for calls and streams, the CSRF guard (403 for `sec-fetch-mode: navigate`), and
//! `undefined` returned (an empty answer without content-type; a `close` event without data).
//! For the last, the chat is served with two more procedures, the v2 reference server's
//! `nothing` and `finite` ([`chat_v2`]).
//!
//! All of it again over TLS, on tokio and smol (the runtimes that serve it): the scripts get an
//! `https://` or `wss://` URL (the hooks `https://` too) and Node trusts the test's certificate
//! authority (`NODE_EXTRA_CA_CERTS`). Node's fetch and `ws` offer no HTTP/2, so these prove the
//! clients' whole protocols over TLS with ALPN's `http/1.1`, the WebSocket upgrades included.

use outer_core::App;
use outer_examples::chat::{self, Chat, ChatCtx, ChatService};
use outer_harness::conformance::{Adapter, RunningServer};
use outer_http::{OuterService, Stack};
use outer_monoio::testing::IoUring as Monoio;
use outer_smol::testing::Smol;
use outer_tests::{
    run_node, start_chat, start_chat_tls, with_undefined_procedures, Certificates, TlsAdapter,
};
use outer_tokio::testing::Tokio;

fn run<R: Adapter>(script: &str, prefix: &str) {
    let server = start_chat::<R>(outer_examples::chat::server_config());
    check(server, script, "http", "http", prefix, &[]);
}

/// The chat as `orpc-v2.mjs` is run against it: its procedures, and the two of the v2 reference
/// server (`tests/reference/orpc-v2`) that return nothing, `nothing` (a unary `()`) and `finite`
/// (a stream of `{"n":1}` that returns `()`): what oRPC 2 writes as JavaScript's `undefined`.
/// The chat's own configuration, so v2 is served where the chat serves it (`/rpc2`).
fn chat_v2<R: Adapter>() -> Stack<ChatCtx, ChatService> {
    let router = with_undefined_procedures(chat::router(Chat::new(), R::timer()));
    let app = App::new(router, chat::context);
    chat::stack(
        OuterService::new(app, chat::server_config(), R::timer()),
        true,
    )
}

/// The real `@orpc/client` 2.x (`orpc-v2.mjs`) against [`chat_v2`] at the chat's v2 prefix.
fn run_v2<R: Adapter>() {
    let server = R::start(chat_v2::<R>());
    check(
        server,
        "orpc-v2.mjs",
        "http",
        "http",
        &v2_prefix(),
        &v2_env(),
    );
}

/// As [`run_v2`], over TLS.
fn run_v2_tls<R: TlsAdapter>() {
    let certificates = Certificates::generate();
    let server = R::start_tls(chat_v2::<R>(), certificates.server(&chat::server_config()));
    let mut env = v2_env();
    env.push((
        "NODE_EXTRA_CA_CERTS",
        certificates.ca.to_str().unwrap().to_string(),
    ));
    check(server, "orpc-v2.mjs", "https", "https", &v2_prefix(), &env);
}

/// Where the chat serves oRPC 2: `ServerConfig`'s default `rpc_v2_prefix`, `/rpc2`, which the
/// chat keeps.
fn v2_prefix() -> String {
    let prefix = chat::server_config().rpc_v2_prefix;
    assert_eq!(
        prefix.as_deref(),
        Some("/rpc2"),
        "the chat serves oRPC 2 at /rpc2"
    );
    prefix.unwrap()
}

/// [`chat_v2`] serves `nothing` and `finite`: `orpc-v2.mjs` runs its steps for them.
fn v2_env() -> Vec<(&'static str, String)> {
    vec![("UNDEFINED_PROCEDURES", "1".to_string())]
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
fn orpc2_client_works_against_outer_on_tokio() {
    run_v2::<Tokio>();
}

#[test]
fn orpc2_client_works_against_outer_on_smol() {
    run_v2::<Smol>();
}

#[test]
fn orpc2_client_works_against_outer_on_monoio() {
    run_v2::<Monoio>();
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
fn orpc2_client_works_against_outer_over_tls_on_tokio() {
    run_v2_tls::<Tokio>();
}

#[test]
fn orpc2_client_works_against_outer_over_tls_on_smol() {
    run_v2_tls::<Smol>();
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
