//! The chat's `me` and `mentions.live` sit behind a middleware that wants
//! `authorization: Bearer <name>`. Without it the subscription is refused in its setup, before
//! any stream: over raw HTTP on a real loopback socket, on tokio and on smol, tRPC's GET and
//! oRPC's POST are answered with the real status, 401, and the protocol's JSON error body, not
//! `text/event-stream`, and the server holds no stream for them. With the token the stream opens
//! and carries the posts that mention the name.

use outer_harness::conformance::{Adapter, RunningServer};
use outer_harness::loopback::{send, wait_until, End, RawResponse};
use outer_monoio::testing::IoUring as Monoio;
use outer_smol::testing::Smol;
use outer_tests::start_chat;
use outer_tokio::testing::Tokio;
use serde_json::{json, Value};

fn get(path: &str, headers: &[&str]) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

fn post(path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut request =
        format!("POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

/// A complete JSON answer with `status`, and nothing of an event stream.
fn json_refusal(mut response: RawResponse, status: u16, what: &str) -> Value {
    assert_eq!(response.status, status, "{what}: {:?}", response.headers);
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: content-type {content_type:?}"
    );
    assert!(
        !response
            .headers
            .iter()
            .any(|(_, v)| v.contains("text/event-stream")),
        "{what}: {:?}",
        response.headers
    );
    let (text, end) = response.read_to_end();
    assert_eq!(end, End::Clean, "{what}: the body was cut: {text:?}");
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: {e}: {text:?}"))
}

/// tRPC's error body for UNAUTHORIZED at `path`: JSON-RPC code -32001, the code's name and the
/// HTTP status in `data`.
fn assert_trpc_unauthorized(body: &Value, path: &str) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert_eq!(error["code"], json!(-32001), "{body}");
    assert_eq!(error["data"]["code"], json!("UNAUTHORIZED"), "{body}");
    assert_eq!(error["data"]["httpStatus"], json!(401), "{body}");
    assert_eq!(error["data"]["path"], json!(path), "{body}");
}

/// oRPC's error body for UNAUTHORIZED: `{"json":{"defined":…,"code":…,"status":401,…}}`.
/// `defined` is true where the procedure declares the code (its middleware refused), false
/// where the context refused before any procedure ran.
fn assert_orpc_unauthorized(body: &Value, defined: bool) {
    let error = &body["json"];
    assert_eq!(error["defined"], json!(defined), "{body}");
    assert_eq!(error["code"], json!("UNAUTHORIZED"), "{body}");
    assert_eq!(error["status"], json!(401), "{body}");
    assert!(error["message"].is_string(), "{body}");
}

fn refused_without_a_token<R: Adapter>() {
    let mut server = start_chat::<R>(outer_examples::chat::server_config());
    let addr = server.addr();

    let body = json_refusal(
        send(addr, &get("/trpc/mentions.live", &[])),
        401,
        "tRPC GET mentions.live",
    );
    assert_trpc_unauthorized(&body, "mentions.live");
    assert_eq!(server.active_streams(), 0, "a stream was opened");

    // A resuming EventSource is refused the same way: the token is checked before the resume.
    let body = json_refusal(
        send(addr, &get("/trpc/mentions.live", &["last-event-id: 1"])),
        401,
        "tRPC GET mentions.live with last-event-id",
    );
    assert_trpc_unauthorized(&body, "mentions.live");

    let body = json_refusal(
        send(addr, &post("/rpc/mentions/live", &[], "{}")),
        401,
        "oRPC POST mentions/live",
    );
    assert_orpc_unauthorized(&body, true);
    assert_eq!(server.active_streams(), 0, "a stream was opened");

    // A credential that is not a bearer name is refused as well, by the context, before the
    // router: the same status and body, whatever the procedure.
    let body = json_refusal(
        send(
            addr,
            &get("/trpc/mentions.live", &["authorization: Basic YW5u"]),
        ),
        401,
        "tRPC GET mentions.live with a Basic credential",
    );
    assert_trpc_unauthorized(&body, "mentions.live");
    let body = json_refusal(
        send(
            addr,
            &post("/rpc/mentions/live", &["authorization: Basic YW5u"], "{}"),
        ),
        401,
        "oRPC POST mentions/live with a Basic credential",
    );
    assert_orpc_unauthorized(&body, false);
    assert_eq!(server.active_streams(), 0, "a stream was opened");

    // The query behind the same middleware.
    let body = json_refusal(send(addr, &get("/trpc/me", &[])), 401, "tRPC GET me");
    assert_trpc_unauthorized(&body, "me");
    let body = json_refusal(send(addr, &post("/rpc/me", &[], "{}")), 401, "oRPC POST me");
    assert_orpc_unauthorized(&body, true);

    assert_eq!(server.active_streams(), 0);
    assert!(server.shutdown());
}

/// With the token, each protocol's stream opens and carries the post that mentions the name,
/// and not the one that does not.
fn streams_with_a_token<R: Adapter>() {
    let mut server = start_chat::<R>(outer_examples::chat::server_config());
    let addr = server.addr();
    let token = "authorization: Bearer ann";

    let mut trpc = send(addr, &get("/trpc/mentions.live", &[token]));
    assert_eq!(trpc.status, 200, "{:?}", trpc.headers);
    assert_eq!(trpc.header("content-type"), Some("text/event-stream"));
    trpc.read_until("event: connected");
    let mut orpc = send(addr, &post("/rpc/mentions/live", &[token], "{}"));
    assert_eq!(orpc.status, 200, "{:?}", orpc.headers);
    assert_eq!(orpc.header("content-type"), Some("text/event-stream"));
    wait_until("both streams to open", || server.active_streams() == 2);

    for title in ["hi @bob", "hi @ann"] {
        let created = send(
            addr,
            &post(
                "/rpc/post/create",
                &[],
                &json!({ "json": { "title": title } }).to_string(),
            ),
        );
        assert_eq!(created.status, 200);
    }
    // Post ids are decimal numbers, and so are the event ids.
    let trpc_text = trpc.read_until("hi @ann").to_string();
    assert!(
        trpc_text.contains("data: {\"id\":2,\"title\":\"hi @ann\"}\nid: 2\n"),
        "{trpc_text:?}"
    );
    assert!(!trpc_text.contains("@bob"), "{trpc_text:?}");
    let orpc_text = orpc.read_until("hi @ann").to_string();
    assert!(
        orpc_text.contains("id: 2\ndata: {\"json\":{\"id\":2,\"title\":\"hi @ann\"}}"),
        "{orpc_text:?}"
    );
    assert!(!orpc_text.contains("@bob"), "{orpc_text:?}");

    let me = send(addr, &get("/trpc/me", &[token]));
    assert_eq!(me.status, 200, "{:?}", me.headers);
    assert_eq!(
        me.json(),
        json!({ "result": { "data": { "name": "ann" } } })
    );
    let me = send(addr, &post("/rpc/me", &[token], "{}"));
    assert_eq!(me.status, 200, "{:?}", me.headers);
    assert_eq!(me.json(), json!({ "json": { "name": "ann" } }));

    trpc.disconnect();
    orpc.disconnect();
    wait_until("the streams to close", || server.active_streams() == 0);
    assert!(server.shutdown());
}

#[test]
fn mentions_live_without_a_token_is_refused_with_401_and_a_json_body_on_tokio() {
    refused_without_a_token::<Tokio>();
}

#[test]
fn mentions_live_without_a_token_is_refused_with_401_and_a_json_body_on_smol() {
    refused_without_a_token::<Smol>();
}

#[test]
fn mentions_live_without_a_token_is_refused_with_401_and_a_json_body_on_monoio() {
    refused_without_a_token::<Monoio>();
}

#[test]
fn mentions_live_with_a_token_streams_the_mentions_on_every_runtime() {
    streams_with_a_token::<Tokio>();
    streams_with_a_token::<Smol>();
    streams_with_a_token::<Monoio>();
}
