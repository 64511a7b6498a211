//! tRPC v11's wire format, byte for byte as captured from the reference server
//! (tests/fixtures/reference/trpc): queries, batches, mutations, method and content-type
//! checks, and the subscription stream.

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::protocol::trpc::{decode_request, handle, merge_last_event_id, TrpcOptions};
use outer_core::protocol::{Body, HttpResponse};
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, Event, EventId, RequestHead, Router,
    RpcError,
};
use serde::Deserialize;
use serde_json::json;
use std::time::Duration;

#[derive(Deserialize)]
struct Ping {
    n: i64,
}

#[derive(Deserialize)]
struct Range {
    from: u64,
    to: u64,
}

fn app() -> App<()> {
    let os = procedure::<()>();
    Router::new()
        .route(
            "ping",
            os.input::<Ping>()
                .query(|req| async move { Ok(json!({ "n": req.input.n })) }),
        )
        .route(
            "post.create",
            os.input::<serde_json::Value>()
                .mutation(|req| async move { Ok(json!({"id": 1, "title": req.input["title"]})) }),
        )
        .route(
            "counter",
            os.input::<Range>().subscription(|req| async move {
                let start = req
                    .last_event_id
                    .and_then(|id| id.as_str().parse::<u64>().ok())
                    .map_or(req.input.from, |n| n.saturating_add(1));
                let to = req.input.to;
                Ok(event_iterator(move |mut emit| async move {
                    for n in start..=to {
                        emit.send(tracked(n, json!({ "n": n }))?).await?;
                    }
                    Ok(json!({"done": true}))
                }))
            }),
        )
        .route(
            "mixed",
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(json!(1)).await?;
                    emit.send(tracked("a", json!(2))?).await?;
                    emit.send(Event::new(json!(3))).await?;
                    Ok(())
                }))
            }),
        )
        .route(
            "failing5xx",
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(json!({"n": 1})).await?;
                    Err::<(), _>(RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, "boom"))
                }))
            }),
        )
        .route(
            "room",
            // The setup refuses before any stream opens.
            os.input::<String>().subscription(|req| async move {
                if req.input != "lobby" {
                    return Err(RpcError::new(ErrorCode::FORBIDDEN, "not your room"));
                }
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(json!("hi")).await?;
                    Ok(())
                }))
            }),
        )
        .into()
}

fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
    headers
        .iter()
        .fold(RequestHead::new(method, ""), |head, (n, v)| {
            head.with_header(*n, *v)
        })
}

fn enc(json: &str) -> String {
    url_escape(json)
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn call(
    method: &str,
    headers: &[(&str, &str)],
    route: &str,
    query: &str,
    body: &[u8],
) -> HttpResponse {
    let options = TrpcOptions {
        ping: None,
        ..TrpcOptions::default()
    };
    block_on(handle(
        &app(),
        head(method, headers),
        route,
        query,
        body,
        &options,
        None,
    ))
}

fn text(response: HttpResponse) -> String {
    match response.body {
        Body::Full(bytes) => String::from_utf8(bytes).unwrap(),
        Body::Events(events) => {
            String::from_utf8(block_on(events.collect::<Vec<_>>()).concat()).unwrap()
        }
    }
}

#[test]
fn a_query_answers_result_data() {
    let r = call(
        "GET",
        &[],
        "/ping",
        &format!("input={}", enc(r#"{"n":1}"#)),
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("vary"), Some("trpc-accept, accept"));
    assert_eq!(text(r), r#"{"result":{"data":{"n":1}}}"#);
}

#[test]
fn a_batch_answers_in_order_with_207_when_results_differ() {
    let all_ok = call(
        "GET",
        &[],
        "/ping,ping",
        &format!("batch=1&input={}", enc(r#"{"0":{"n":1},"1":{"n":2}}"#)),
        b"",
    );
    assert_eq!(all_ok.status, 200);
    assert_eq!(
        text(all_ok),
        r#"[{"result":{"data":{"n":1}}},{"result":{"data":{"n":2}}}]"#
    );
    let unknown = call(
        "GET",
        &[],
        "/ping,nope",
        &format!("batch=1&input={}", enc(r#"{"0":{"n":1}}"#)),
        b"",
    );
    assert_eq!(unknown.status, 207);
    assert_eq!(
        text(unknown),
        r#"[{"result":{"data":{"n":1}}},{"error":{"message":"No procedure found on path \"nope\"","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404,"path":"nope"}}}]"#
    );
    let all_bad = call(
        "GET",
        &[],
        "/ping,ping",
        &format!("batch=1&input={}", enc(r#"{"0":{"n":"x"},"1":{"n":"y"}}"#)),
        b"",
    );
    assert_eq!(all_bad.status, 400, "all failing alike share the status");
}

#[test]
fn a_post_batch_reads_its_inputs_from_the_body() {
    let r = call(
        "POST",
        &[("content-type", "application/json")],
        "/post.create,post.create",
        "batch=1",
        br#"{"0":{"title":"a"},"1":{"title":"b"}}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        text(r),
        r#"[{"result":{"data":{"id":1,"title":"a"}}},{"result":{"data":{"id":1,"title":"b"}}}]"#
    );
}

#[test]
fn input_validation_errors_carry_the_issues_as_indented_json() {
    let r = call(
        "GET",
        &[],
        "/ping",
        &format!("input={}", enc(r#"{"n":"x"}"#)),
        b"",
    );
    assert_eq!(r.status, 400);
    let body: serde_json::Value = serde_json::from_str(&text(r)).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("[\n  {\n"), "{message}");
    let issues: serde_json::Value = serde_json::from_str(message).unwrap();
    assert_eq!(issues[0]["path"], json!(["n"]));
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(
        body["error"]["data"],
        json!({"code": "BAD_REQUEST", "httpStatus": 400, "path": "ping"})
    );
}

#[test]
fn the_wrong_method_is_405_with_allow_and_the_wrong_content_type_415() {
    let r = call(
        "POST",
        &[("content-type", "application/json")],
        "/ping",
        "",
        br#"{"n":1}"#,
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(
        text(r),
        r#"{"error":{"message":"Unsupported POST-request to query procedure at path \"ping\"","code":-32005,"data":{"code":"METHOD_NOT_SUPPORTED","httpStatus":405,"path":"ping"}}}"#
    );
    let r = call(
        "GET",
        &[],
        "/post.create",
        &format!("input={}", enc(r#"{"title":"t"}"#)),
        b"",
    );
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));

    let r = call("POST", &[], "/post.create", "", br#"{"title":"t"}"#);
    assert_eq!(r.status, 415);
    assert_eq!(
        text(r),
        r#"{"error":{"message":"Missing content-type header","code":-32015,"data":{"code":"UNSUPPORTED_MEDIA_TYPE","httpStatus":415}}}"#
    );
    let r = call(
        "POST",
        &[("content-type", "text/plain")],
        "/post.create",
        "",
        b"{}",
    );
    assert_eq!(r.status, 415);
    let r = call(
        "POST",
        &[("content-type", "application/json; charset=utf-8")],
        "/post.create",
        "",
        br#"{"title":"t"}"#,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn malformed_json_and_unknown_paths_are_answered_as_trpc_does() {
    let r = call("GET", &[], "/ping", "input=not%20json", b"");
    assert_eq!(r.status, 400);
    let body: serde_json::Value = serde_json::from_str(&text(r)).unwrap();
    assert_eq!(body["error"]["code"], -32600);
    let r = call("GET", &[], "/nope", "", b"");
    assert_eq!(r.status, 404);
    assert_eq!(
        text(r),
        r#"{"error":{"message":"No procedure found on path \"nope\"","code":-32004,"data":{"code":"NOT_FOUND","httpStatus":404,"path":"nope"}}}"#
    );
}

#[test]
fn a_subscription_streams_connected_tracked_data_and_return_byte_for_byte() {
    let r = call(
        "GET",
        &[],
        "/counter",
        &format!("input={}", enc(r#"{"from":1,"to":3}"#)),
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("cache-control"), Some("no-cache, no-transform"));
    assert_eq!(r.header("x-accel-buffering"), Some("no"));
    assert_eq!(
        text(r),
        "event: connected\ndata: {}\n\n\n\
         data: {\"n\":1}\nid: 1\n\n\n\
         data: {\"n\":2}\nid: 2\n\n\n\
         data: {\"n\":3}\nid: 3\n\n\n\
         event: return\ndata: \n\n\n"
    );
}

#[test]
fn the_resume_id_comes_from_the_header_then_the_query_then_the_input() {
    let input = enc(r#"{"from":1,"to":4,"lastEventId":"1"}"#);
    let ids = |r: HttpResponse| -> Vec<String> {
        text(r)
            .lines()
            .filter_map(|l| l.strip_prefix("id: ").map(String::from))
            .collect()
    };
    let from_input = call("GET", &[], "/counter", &format!("input={input}"), b"");
    assert_eq!(ids(from_input), ["2", "3", "4"]);
    let from_query = call(
        "GET",
        &[],
        "/counter",
        &format!("input={input}&lastEventId=2"),
        b"",
    );
    assert_eq!(ids(from_query), ["3", "4"]);
    let from_header = call(
        "GET",
        &[("Last-Event-ID", "3")],
        "/counter",
        &format!("input={input}&lastEventId=2"),
        b"",
    );
    assert_eq!(ids(from_header), ["4"]);
}

#[test]
fn the_handler_sees_the_input_without_last_event_id() {
    let id = |text: &str| EventId::new(text).unwrap();
    let (input, resume) = merge_last_event_id(Some(json!({"lastEventId": "5"})), None).unwrap();
    assert_eq!((input, resume), (None, Some(id("5"))));
    let (input, resume) =
        merge_last_event_id(Some(json!({"a": 1, "lastEventId": "5"})), Some(id("6"))).unwrap();
    assert_eq!((input, resume), (Some(json!({"a": 1})), Some(id("6"))));
    // Empty and null are no id, as a missing one is.
    for none in [json!(""), json!(null)] {
        let merged = merge_last_event_id(Some(json!({"lastEventId": none})), None).unwrap();
        assert_eq!(merged, (None, None));
    }
}

#[test]
fn an_empty_resume_id_is_no_id_wherever_it_comes_from() {
    let ids = |r: HttpResponse| -> Vec<String> {
        text(r)
            .lines()
            .filter_map(|l| l.strip_prefix("id: ").map(String::from))
            .collect()
    };
    let input = enc(r#"{"from":1,"to":3}"#);
    for (headers, query) in [
        (&[("Last-Event-ID", "")][..], format!("input={input}")),
        (&[][..], format!("input={input}&lastEventId=")),
        (
            &[][..],
            format!("input={}", enc(r#"{"from":1,"to":3,"lastEventId":""}"#)),
        ),
    ] {
        let r = call("GET", headers, "/counter", &query, b"");
        assert_eq!(r.status, 200);
        assert_eq!(ids(r), ["1", "2", "3"], "{headers:?} {query}");
    }
    let decoded = decode_request(&head("GET", &[("Last-Event-ID", "")]), "/counter", "", b"");
    assert_eq!(decoded.unwrap().last_event_id, None);
    // An empty header does not hide the query's id.
    let r = call(
        "GET",
        &[("Last-Event-ID", "")],
        "/counter",
        &format!("input={input}&lastEventId=1"),
        b"",
    );
    assert_eq!(ids(r), ["2", "3"]);
}

#[test]
fn an_invalid_resume_id_is_a_400_in_trpc_shape_and_runs_no_stream() {
    let input = enc(r#"{"from":1,"to":3}"#);
    for (headers, query) in [
        (&[][..], format!("input={input}&lastEventId=2%0a")),
        (&[][..], format!("input={input}&lastEventId=2%0d")),
        (&[][..], format!("input={input}&Last-Event-Id=2%00")),
        (
            &[][..],
            format!(
                "input={}",
                enc("{\"from\":1,\"to\":3,\"lastEventId\":\"2\\n\"}")
            ),
        ),
        (
            &[][..],
            format!("input={}", enc(r#"{"from":1,"to":3,"lastEventId":2}"#)),
        ),
        (&[("Last-Event-ID", "2\u{0}")][..], format!("input={input}")),
    ] {
        let r = call("GET", headers, "/counter", &query, b"");
        assert_eq!(r.status, 400, "{headers:?} {query}");
        assert!(matches!(r.body, Body::Full(_)), "no stream: {query}");
        let body: serde_json::Value = serde_json::from_str(&text(r)).unwrap();
        assert_eq!(body["error"]["data"]["code"], "BAD_REQUEST", "{body}");
        assert_eq!(body["error"]["data"]["httpStatus"], 400);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("lastEventId"),
            "{body}"
        );
    }
}

#[test]
fn subscriptions_in_a_batch_are_refused_with_a_message_that_says_so() {
    let r = call("GET", &[], "/counter,counter", "batch=1", b"");
    assert_eq!(r.status, 400);
    let body: serde_json::Value = serde_json::from_str(&text(r)).unwrap();
    for answer in body.as_array().unwrap() {
        assert_eq!(answer["error"]["data"]["code"], "BAD_REQUEST");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Subscriptions cannot be batched"),
            "{message}"
        );
        assert!(message.contains("\"counter\""), "{message}");
    }
}

#[test]
fn an_untracked_value_after_an_id_restores_the_id() {
    let r = call("GET", &[], "/mixed", "", b"");
    assert_eq!(
        text(r),
        "event: connected\ndata: {}\n\n\n\
         data: 1\n\n\n\
         data: 2\nid: a\n\n\n\
         data: 3\nid: \n\n\n\
         event: restore-id\ndata: \nid: a\n\n\n\
         event: return\ndata: \n\n\n"
    );
}

#[test]
fn errors_during_a_subscription_and_a_post_to_one_travel_in_the_stream() {
    let r = call("GET", &[], "/failing5xx", "", b"");
    assert_eq!(
        text(r),
        "event: connected\ndata: {}\n\n\n\
         data: {\"n\":1}\n\n\n\
         event: serialized-error\ndata: {\"message\":\"boom\",\"code\":-32603,\"data\":{\"code\":\"INTERNAL_SERVER_ERROR\",\"httpStatus\":500,\"path\":\"failing5xx\"}}\n\n\n"
    );
    let r = call(
        "POST",
        &[("content-type", "application/json")],
        "/counter",
        "",
        b"{}",
    );
    assert_eq!((r.status, r.header("allow")), (200, Some("GET")));
    assert!(text(r)
        .contains("Unsupported POST-request to subscription procedure at path \\\"counter\\\""));
}

#[test]
fn a_subscription_refused_before_its_stream_answers_the_status_with_trpc_s_error_body() {
    // Where tRPC's server answers 200 and a serialized-error, we answer the status: an
    // EventSource gives up on a non-200 instead of reconnecting into the same refusal.
    let r = call(
        "GET",
        &[],
        "/counter",
        &format!("input={}", enc(r#"{"from":"x"}"#)),
        b"",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&text(r)).unwrap();
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(
        body["error"]["data"],
        json!({"code": "BAD_REQUEST", "httpStatus": 400, "path": "counter"})
    );
    let issues: serde_json::Value =
        serde_json::from_str(body["error"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(issues[0]["path"], json!(["from"]));

    let r = call(
        "GET",
        &[],
        "/room",
        &format!("input={}", enc(r#""attic""#)),
        b"",
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        text(r),
        r#"{"error":{"message":"not your room","code":-32003,"data":{"code":"FORBIDDEN","httpStatus":403,"path":"room"}}}"#
    );
    let r = call(
        "GET",
        &[],
        "/room",
        &format!("input={}", enc(r#""lobby""#)),
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        text(r),
        "event: connected\ndata: {}\n\n\n\
         data: \"hi\"\n\n\n\
         event: return\ndata: \n\n\n"
    );
}

#[test]
fn the_connected_event_carries_the_client_options() {
    let options = TrpcOptions {
        reconnect_after_inactivity: Some(Duration::from_millis(3000)),
        ping: None,
        max_duration: None,
    };
    let r = block_on(handle(
        &app(),
        head("GET", &[]),
        "/counter",
        &format!("input={}", enc(r#"{"from":1,"to":0}"#)),
        b"",
        &options,
        None,
    ));
    assert!(
        text(r).starts_with("event: connected\ndata: {\"reconnectAfterInactivityMs\":3000}\n\n\n")
    );
}

#[test]
fn an_oversized_batch_is_refused() {
    let route = format!("/{}", vec!["ping"; 65].join(","));
    let err = decode_request(&head("GET", &[]), &route, "batch=1", b"").unwrap_err();
    assert_eq!(err.error.status(), 413);
}

#[test]
fn a_batch_builds_its_context_once_and_every_call_shares_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let built = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&built);
    let router = Router::new().route(
        "context",
        procedure::<usize>().query(|req| async move { Ok(req.ctx) }),
    );
    let app = App::new(router.clone(), move |_| {
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        async move { Ok(n) }
    });
    let options = TrpcOptions::default();
    let batch = |app: &App<usize>, route: &str| {
        block_on(handle(
            app,
            head("GET", &[]),
            route,
            "batch=1",
            b"",
            &options,
            None,
        ))
    };
    let r = batch(&app, "/context,context,context");
    assert_eq!(r.status, 200);
    assert_eq!(
        text(r),
        r#"[{"result":{"data":1}},{"result":{"data":1}},{"result":{"data":1}}]"#
    );
    assert_eq!(built.load(Ordering::SeqCst), 1, "one context for the batch");
    // An unknown path is a 404 without a context.
    let r = batch(&app, "/nope");
    assert_eq!(r.status, 404);
    assert_eq!(built.load(Ordering::SeqCst), 1);
    // A context that fails answers each call that reached a procedure with its error.
    let tries = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&tries);
    let refusing = App::new(router, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err(RpcError::from_code(ErrorCode::UNAUTHORIZED)) }
    });
    let r = batch(&refusing, "/context,context,context");
    assert_eq!(r.status, 401);
    let body: serde_json::Value = serde_json::from_str(&text(r)).unwrap();
    for answer in body.as_array().unwrap() {
        assert_eq!(answer["error"]["data"]["code"], "UNAUTHORIZED");
    }
    assert_eq!(tries.load(Ordering::SeqCst), 1);
}
