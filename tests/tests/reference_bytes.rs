//! Outer's bytes beside the reference servers': the same requests the captures in
//! tests/fixtures/reference were made with (capture.sh), sent to the chat example over real
//! loopback HTTP on tokio and on smol, must give the same status and the same body, byte for
//! byte. Where the reference's text comes from zod (validation issue lists) only the code,
//! status and message are compared; the note beside each case says why.

use std::time::Duration;

use outer_core::protocol::trpc::TrpcOptions;
use outer_harness::conformance::{Adapter, RunningServer};
use outer_harness::loopback::{send, End};
use outer_http::ServerConfig;
use outer_monoio::testing::IoUring as Monoio;
use outer_smol::testing::Smol;
use outer_tests::{start_chat, workspace};
use outer_tokio::testing::Tokio;
use serde_json::Value;

/// A capture: status, lower-case headers, body.
struct Capture {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Capture {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn capture(name: &str) -> Capture {
    let path = workspace().join(format!("tests/fixtures/reference/{name}.http"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Capture {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The reference tRPC server's options (shared/reference/trpc/server.mjs), so that streams
/// compare byte for byte: a ping every second, clients told to reconnect after 3 s.
fn reference_config() -> ServerConfig {
    ServerConfig {
        trpc: TrpcOptions {
            ping: Some(Duration::from_secs(1)),
            max_duration: None,
            reconnect_after_inactivity: Some(Duration::from_millis(3000)),
        },
        ..ServerConfig::default()
    }
}

fn post(path: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut request = format!("POST {path} HTTP/1.1\r\nhost: test\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    request.into_bytes()
}

fn get(path: &str, headers: &[&str]) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n");
    for header in headers {
        request.push_str(header);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// `input=` as curl's `--data-urlencode` writes it.
fn q(name: &str, value: &str) -> String {
    let mut out = format!("{name}=");
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

const JSON: &str = "content-type: application/json";

enum Compare {
    /// Status and body, byte for byte.
    Exact,
    /// Status, and the error's code, status and message (oRPC) or code and data (tRPC); the
    /// rest is zod's wording.
    ErrorFields,
    /// Status and the first `n` bytes of a stream that does not end by itself.
    StreamStart(usize),
}

struct Case {
    fixture: &'static str,
    request: Vec<u8>,
    compare: Compare,
    /// Headers that must be equal too.
    headers: &'static [&'static str],
}

fn case(fixture: &'static str, request: Vec<u8>, compare: Compare) -> Case {
    Case {
        fixture,
        request,
        compare,
        headers: &["content-type"],
    }
}

fn cases() -> Vec<Case> {
    let counter = r#"{"from":1,"to":3,"delayMs":10}"#;
    let sse = &["content-type", "cache-control", "x-accel-buffering", "vary"][..];
    vec![
        case(
            "orpc/ping",
            post("/rpc/ping", &[JSON], r#"{"json":{"n":1}}"#),
            Compare::Exact,
        ),
        // Ours adds `data.reason`: what exactly could not be read.
        case(
            "orpc/ping-malformed-json",
            post("/rpc/ping", &[JSON], "not json"),
            Compare::ErrorFields,
        ),
        case(
            "orpc/ping-get",
            get(
                &format!("/rpc/ping?{}", q("data", r#"{"json":{"n":1}}"#)),
                &[],
            ),
            Compare::Exact,
        ),
        case(
            "orpc/unknown-path",
            post("/rpc/nope", &[JSON], r#"{"json":{}}"#),
            Compare::Exact,
        ),
        case(
            "orpc/ping-meta-date-extra-key",
            post(
                "/rpc/ping",
                &[JSON],
                r#"{"json":{"n":1,"at":"2024-01-01T00:00:00.000Z"},"meta":[[1,"at"]]}"#,
            ),
            Compare::Exact,
        ),
        // Ours adds `data.reason` saying which path was missing.
        case(
            "orpc/ping-meta-bad-path",
            post(
                "/rpc/ping",
                &[JSON],
                r#"{"json":{"n":1},"meta":[[0,"zzz"]]}"#,
            ),
            Compare::ErrorFields,
        ),
        case(
            "orpc/ping-empty-body",
            post("/rpc/ping", &[], ""),
            Compare::ErrorFields,
        ),
        case(
            "orpc/ping-invalid-input",
            post("/rpc/ping", &[JSON], r#"{"json":{"n":"x"}}"#),
            Compare::ErrorFields,
        ),
        case(
            "orpc/counter",
            post("/rpc/counter", &[JSON], &format!(r#"{{"json":{counter}}}"#)),
            Compare::Exact,
        ),
        case(
            "orpc/counter-last-event-id-2",
            post(
                "/rpc/counter",
                &[JSON, "last-event-id: 2"],
                &format!(r#"{{"json":{counter}}}"#),
            ),
            Compare::Exact,
        ),
        case(
            "orpc/counter-invalid-input",
            post("/rpc/counter", &[JSON], r#"{"json":{"from":"x"}}"#),
            Compare::ErrorFields,
        ),
        case(
            "orpc/failing",
            post("/rpc/failing", &[JSON], "{}"),
            Compare::Exact,
        ),
        case(
            "orpc/failing5xx",
            post("/rpc/failing5xx", &[JSON], "{}"),
            Compare::Exact,
        ),
        case(
            "orpc/post.live-2s",
            post("/rpc/post/live", &[JSON], "{}"),
            Compare::StreamStart(4),
        ),
        case(
            "trpc/ping",
            get(&format!("/trpc/ping?{}", q("input", r#"{"n":1}"#)), &[]),
            Compare::Exact,
        ),
        case(
            "trpc/ping-batch-single",
            get(
                &format!("/trpc/ping?batch=1&{}", q("input", r#"{"0":{"n":1}}"#)),
                &[],
            ),
            Compare::Exact,
        ),
        case(
            "trpc/ping-batch",
            get(
                &format!(
                    "/trpc/ping,ping?batch=1&{}",
                    q("input", r#"{"0":{"n":1},"1":{"n":2}}"#)
                ),
                &[],
            ),
            Compare::Exact,
        ),
        case(
            "trpc/ping-batch-unknown",
            get(
                &format!(
                    "/trpc/ping,nope?batch=1&{}",
                    q("input", r#"{"0":{"n":1},"1":{}}"#)
                ),
                &[],
            ),
            Compare::Exact,
        ),
        Case {
            headers: &["content-type", "allow", "vary"],
            ..case(
                "trpc/ping-via-post",
                post("/trpc/ping", &[JSON], r#"{"n":1}"#),
                Compare::Exact,
            )
        },
        // The reference labels this JSON body text/plain; ours says application/json.
        Case {
            headers: &[],
            ..case(
                "trpc/ping-via-post-no-content-type",
                post(&format!("/trpc/ping?{}", q("input", r#"{"n":1}"#)), &[], ""),
                Compare::Exact,
            )
        },
        Case {
            headers: &["content-type", "allow"],
            ..case(
                "trpc/post.create-via-get",
                get(
                    &format!("/trpc/post.create?{}", q("input", r#"{"title":"x"}"#)),
                    &[],
                ),
                Compare::Exact,
            )
        },
        case(
            "trpc/unknown-path",
            get(&format!("/trpc/nope?{}", q("input", r#"{"n":1}"#)), &[]),
            Compare::Exact,
        ),
        case(
            "trpc/ping-invalid-input",
            get(&format!("/trpc/ping?{}", q("input", r#"{"n":"x"}"#)), &[]),
            Compare::ErrorFields,
        ),
        Case {
            headers: sse,
            ..case(
                "trpc/counter",
                get(&format!("/trpc/counter?{}", q("input", counter)), &[]),
                Compare::Exact,
            )
        },
        case(
            "trpc/counter-last-event-id-header",
            get(
                &format!("/trpc/counter?{}", q("input", counter)),
                &["Last-Event-ID: 2"],
            ),
            Compare::Exact,
        ),
        case(
            "trpc/counter-last-event-id-input",
            get(
                &format!(
                    "/trpc/counter?{}",
                    q(
                        "input",
                        r#"{"from":1,"to":3,"delayMs":10,"lastEventId":"2"}"#
                    )
                ),
                &[],
            ),
            Compare::Exact,
        ),
        case(
            "trpc/counter-last-event-id-query",
            get(
                &format!("/trpc/counter?{}&lastEventId=2", q("input", counter)),
                &[],
            ),
            Compare::Exact,
        ),
        case(
            "trpc/counter-header-overrides-input",
            get(
                &format!(
                    "/trpc/counter?{}",
                    q(
                        "input",
                        r#"{"from":1,"to":3,"delayMs":10,"lastEventId":"2"}"#
                    )
                ),
                &["Last-Event-ID: 1"],
            ),
            Compare::Exact,
        ),
        Case {
            headers: &["content-type", "allow"],
            ..case(
                "trpc/counter-via-post",
                post("/trpc/counter", &[JSON], counter),
                Compare::Exact,
            )
        },
        Case {
            headers: sse,
            ..case("trpc/failing", get("/trpc/failing", &[]), Compare::Exact)
        },
        case(
            "trpc/failing5xx",
            get("/trpc/failing5xx", &[]),
            Compare::Exact,
        ),
        // Two pings a second apart after `connected`.
        case(
            "trpc/post.live-2.5s",
            get("/trpc/post.live", &[]),
            Compare::StreamStart(usize::MAX),
        ),
    ]
}

fn error_fields(body: &str) -> Value {
    let value: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    if let Some(json) = value.get("json") {
        serde_json::json!([json["code"], json["status"], json["message"]])
    } else {
        serde_json::json!([value["error"]["code"], value["error"]["data"]])
    }
}

fn compare_all<R: Adapter>() {
    let mut server = start_chat::<R>(reference_config());
    let mut failures = Vec::new();
    for case in cases() {
        let want = capture(case.fixture);
        let mut got = send(server.addr(), &case.request);
        let body = match case.compare {
            Compare::StreamStart(n) => {
                let len = n.min(want.body.len());
                while got.text.len() < len {
                    if got.read_chunk().is_none() {
                        break;
                    }
                }
                got.text.clone()
            }
            _ => {
                let (text, end) = got.read_to_end();
                assert!(
                    matches!(end, End::Clean),
                    "{}: the body was cut",
                    case.fixture
                );
                text.to_string()
            }
        };
        let mut differs = |what: &str, ours: String, theirs: String| {
            if ours != theirs {
                failures.push(format!(
                    "{} {what}:\n  ours:      {ours:?}\n  reference: {theirs:?}",
                    case.fixture
                ));
            }
        };
        differs("status", got.status.to_string(), want.status.to_string());
        for name in case.headers {
            differs(
                &format!("header {name}"),
                format!("{:?}", got.header(name)),
                format!("{:?}", want.header(name)),
            );
        }
        match case.compare {
            Compare::Exact => differs("body", body, want.body.clone()),
            Compare::ErrorFields => differs(
                "error",
                error_fields(&body).to_string(),
                error_fields(&want.body).to_string(),
            ),
            Compare::StreamStart(n) => {
                let len = n.min(want.body.len());
                differs(
                    "stream start",
                    body[..len.min(body.len())].to_string(),
                    want.body[..len].to_string(),
                )
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(server.shutdown());
}

/// post.create answers the new post; on a fresh server that is post 1, as in the captures.
fn compare_post_create<R: Adapter>() {
    for (fixture, request) in [
        (
            "orpc/post.create",
            post("/rpc/post/create", &[JSON], r#"{"json":{"title":"hello"}}"#),
        ),
        (
            "trpc/post.create",
            post("/trpc/post.create", &[JSON], r#"{"title":"hello"}"#),
        ),
    ] {
        let mut server = start_chat::<R>(reference_config());
        let want = capture(fixture);
        let mut got = send(server.addr(), &request);
        assert_eq!(got.status, want.status, "{fixture}");
        assert_eq!(got.read_to_end().0, want.body, "{fixture}");
        assert!(server.shutdown());
    }
}

#[test]
fn outer_on_tokio_answers_as_the_reference_servers_do() {
    compare_all::<Tokio>();
}

#[test]
fn outer_on_smol_answers_as_the_reference_servers_do() {
    compare_all::<Smol>();
}

#[test]
fn outer_on_monoio_answers_as_the_reference_servers_do() {
    compare_all::<Monoio>();
}

#[test]
fn post_create_answers_as_the_reference_servers_do_on_every_runtime() {
    compare_post_create::<Tokio>();
    compare_post_create::<Smol>();
    compare_post_create::<Monoio>();
}
