//! oRPC's wire format, byte for byte, as `shared/protocols/orpc.md` records it from the
//! reference server: requests decoded, answers and streams encoded.

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::procedure::{Frame, SharedEvent};
use outer_core::protocol::orpc::{
    decode_body, decode_request, encode_frames, handle, ClientFrame, OrpcOptions, OrpcVersion,
    CSRF_BLOCKED, MALFORMED,
};
use outer_core::protocol::{Body, HttpResponse};
use outer_core::sse::{SseDecoder, SseEvent};
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, Event, EventId, RequestHead, Router,
    RpcError,
};
use serde::Deserialize;
use serde_json::json;

fn post(headers: &[(&str, &str)]) -> RequestHead {
    headers
        .iter()
        .fold(RequestHead::new("POST", ""), |head, (n, v)| {
            head.with_header(*n, *v)
        })
}

fn raw(v: serde_json::Value) -> Box<serde_json::value::RawValue> {
    serde_json::value::to_raw_value(&v).unwrap()
}

#[test]
fn a_stream_is_framed_byte_for_byte_as_the_reference_server_frames_it() {
    let text = encode_frames([
        Frame::Event(tracked(3, raw(json!({"n": 3}))).unwrap().with_retry(1000)),
        Frame::Event(Event::new(raw(json!({"n": 4})))),
        Frame::Done(raw(json!({"done": true}))),
    ]);
    assert_eq!(
        text,
        ": \n\n\
         event: message\nretry: 1000\nid: 3\ndata: {\"json\":{\"n\":3}}\n\n\
         event: message\ndata: {\"json\":{\"n\":4}}\n\n\
         event: done\ndata: {\"json\":{\"done\":true}}\n\n"
    );
}

#[test]
fn comments_come_first_and_errors_carry_code_status_message_and_data() {
    let text = encode_frames([
        Frame::Event(Event::new(raw(json!(1))).with_comment("hello").unwrap()),
        Frame::Error(RpcError::new(ErrorCode::BAD_REQUEST, "nope").with_data(json!({"why": "x"}))),
    ]);
    assert_eq!(
        text,
        ": \n\n\
         : hello\nevent: message\ndata: {\"json\":1}\n\n\
         event: error\ndata: {\"json\":{\"defined\":false,\"code\":\"BAD_REQUEST\",\"status\":400,\"message\":\"nope\",\"data\":{\"why\":\"x\"}}}\n\n"
    );
}

#[test]
fn requests_decode_path_input_and_last_event_id() {
    let call = decode_request(
        &post(&[("Last-Event-ID", "7")]),
        "/post/live",
        br#"{"json":{"a":1}}"#,
    )
    .unwrap();
    assert_eq!(call.path, "post.live");
    assert_eq!(call.input, Some(json!({"a": 1})));
    assert_eq!(call.last_event_id.unwrap().as_str(), "7");
    let empty = decode_request(&post(&[]), "/ping", b"").unwrap();
    assert_eq!(empty.input, None, "an empty body is undefined input");
    // A browser sends no header rather than an empty one: an empty one is no id either.
    let no_id = decode_request(&post(&[("Last-Event-ID", "")]), "/post/live", b"").unwrap();
    assert_eq!(no_id.last_event_id, None);
    let bad = decode_request(&post(&[("Last-Event-ID", "2\n")]), "/post/live", b"").unwrap_err();
    assert_eq!((bad.code(), bad.status()), ("BAD_REQUEST", 400));
}

#[test]
fn bad_requests_get_the_right_status_and_code() {
    let err = decode_request(&post(&[]), "/ping", b"{not json").unwrap_err();
    assert_eq!((err.code(), err.status()), ("BAD_REQUEST", 400));
    assert_eq!(err.message(), outer_core::protocol::orpc::MALFORMED);
    let err = decode_request(&post(&[]), "/ping", b"[1]").unwrap_err();
    assert_eq!(err.status(), 400);
    let get = RequestHead::new("GET", "");
    let err = decode_request(&get, "/ping", b"").unwrap_err();
    assert_eq!((err.code(), err.status()), ("METHOD_NOT_SUPPORTED", 405));
    assert_eq!(err.message(), "Method Not Supported");
    for route in ["/", "/a//b", "/a.b", "/%20"] {
        let err = decode_request(&post(&[]), route, b"").unwrap_err();
        assert_eq!(err.status(), 404, "{route}");
    }
}

#[test]
fn meta_entries_we_support_are_applied_and_the_rest_refused() {
    let input = decode_body(
        br#"{"json":{"big":"9007199254740993","when":"2024-01-01T00:00:00.000Z","gone":null,"list":[1,null]},
             "meta":[[0,"big"],[1,"when"],[3,"gone"],[3,"list",1]]}"#,
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        input,
        json!({"big": 9007199254740993u64, "when": "2024-01-01T00:00:00.000Z", "list": [1, null]})
    );
    for (meta, why) in [
        (r#"[[2,"x"]]"#, "NaN"),
        (r#"[[99,"x"]]"#, "Unknown meta type 99"),
        (r#"[[0,"missing"]]"#, "path not found"),
        (r#"[[0,"x"]]"#, "bigint must be a string"),
        (r#""nope""#, "meta must be an array"),
    ] {
        let body = format!(r#"{{"json":{{"x":1}},"meta":{meta}}}"#);
        let err = decode_body(body.as_bytes()).unwrap_err();
        assert_eq!(err.status(), 400, "{meta}");
        let said = format!(
            "{} {}",
            err.message(),
            err.data().map(|d| d.to_string()).unwrap_or_default()
        );
        assert!(said.contains(why), "{meta}: {said}");
    }
}

#[derive(Deserialize)]
struct Ping {
    n: i64,
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
            "failing",
            os.subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(json!({"n": 1})).await?;
                    Err::<(), _>(RpcError::new(ErrorCode::BAD_REQUEST, "nope"))
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

fn body_text(response: HttpResponse) -> String {
    match response.body {
        Body::Full(bytes) => String::from_utf8(bytes).unwrap(),
        Body::Events(events) => {
            String::from_utf8(block_on(events.collect::<Vec<_>>()).concat()).unwrap()
        }
    }
}

#[test]
fn handle_answers_unary_calls_errors_and_streams() {
    let options = OrpcOptions::default();
    let ok = block_on(handle(
        &app(),
        post(&[]),
        "/ping",
        br#"{"json":{"n":2}}"#,
        &options,
        None,
    ));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(body_text(ok), r#"{"json":{"n":2}}"#);

    let invalid = block_on(handle(
        &app(),
        post(&[]),
        "/ping",
        br#"{"json":{"n":"x"}}"#,
        &options,
        None,
    ));
    assert_eq!(invalid.status, 400);
    let body: serde_json::Value = serde_json::from_str(&body_text(invalid)).unwrap();
    assert_eq!(body["json"]["message"], "Input validation failed");
    assert_eq!(body["json"]["data"]["issues"][0]["path"], json!(["n"]));

    let missing = block_on(handle(&app(), post(&[]), "/nope", b"", &options, None));
    assert_eq!(missing.status, 404);
    let body: serde_json::Value = serde_json::from_str(&body_text(missing)).unwrap();
    assert_eq!(body["json"]["code"], "NOT_FOUND");

    let stream = block_on(handle(&app(), post(&[]), "/failing", b"", &options, None));
    assert_eq!(stream.status, 200, "stream errors travel inside the stream");
    assert_eq!(stream.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        body_text(stream),
        ": \n\nevent: message\ndata: {\"json\":{\"n\":1}}\n\n\
         event: error\ndata: {\"json\":{\"defined\":false,\"code\":\"BAD_REQUEST\",\"status\":400,\"message\":\"nope\"}}\n\n"
    );

    // A setup that refuses answers with its status and oRPC's error body: no stream at all.
    let refused = block_on(handle(
        &app(),
        post(&[]),
        "/room",
        br#"{"json":"attic"}"#,
        &options,
        None,
    ));
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("content-type"), Some("application/json"));
    assert_eq!(
        body_text(refused),
        r#"{"json":{"defined":false,"code":"FORBIDDEN","status":403,"message":"not your room"}}"#
    );
    let admitted = block_on(handle(
        &app(),
        post(&[]),
        "/room",
        br#"{"json":"lobby"}"#,
        &options,
        None,
    ));
    assert_eq!(admitted.status, 200);
    assert_eq!(
        body_text(admitted),
        ": \n\nevent: message\ndata: {\"json\":\"hi\"}\n\nevent: done\ndata: {}\n\n"
    );
}

#[test]
fn a_client_reads_back_what_the_server_writes() {
    use outer_core::protocol::orpc::{decode_answer, decode_event};
    let text = encode_frames([
        Frame::Event(tracked(3, raw(json!({"n": 3}))).unwrap().with_retry(1000)),
        Frame::Error(RpcError::new(ErrorCode::BAD_REQUEST, "nope").with_data(json!({"why": "x"}))),
    ]);
    let mut decoder = SseDecoder::new();
    let mut input = text.as_bytes();
    let mut frames = Vec::new();
    while let Some(event) = decoder.next_event(&mut input).unwrap() {
        if let Some(frame) = decode_event(&event).unwrap() {
            frames.push(frame);
        }
    }
    let ClientFrame::Message(message) = &frames[0] else {
        panic!()
    };
    assert_eq!(message.data(), &json!({"n": 3}));
    assert_eq!(message.id().unwrap().as_str(), "3");
    assert_eq!(message.meta().retry(), Some(1000));
    let ClientFrame::Error(err) = &frames[1] else {
        panic!()
    };
    assert_eq!(
        (err.code(), err.status(), err.message()),
        ("BAD_REQUEST", 400, "nope")
    );
    assert_eq!(err.data(), Some(&json!({"why": "x"})));

    assert_eq!(
        decode_answer(200, br#"{"json":{"n":2}}"#).unwrap(),
        json!({"n": 2})
    );
    let err = decode_answer(
        409,
        br#"{"json":{"defined":true,"code":"CONFLICT","status":409,"message":"taken"}}"#,
    )
    .unwrap_err();
    assert_eq!(
        (err.code(), err.status(), err.is_defined()),
        ("CONFLICT", 409, true)
    );
    let err = decode_answer(502, b"<html>bad gateway</html>").unwrap_err();
    assert_eq!((err.status(), err.is_retryable()), (502, true));
}

#[test]
fn unit_answers_and_returns_are_written_as_undefined() {
    let text = encode_frames([Frame::Done(raw(json!(null)))]);
    assert_eq!(text, ": \n\nevent: done\ndata: {}\n\n");
    let app: App<()> = Router::new()
        .route("nothing", procedure::<()>().query(|_| async { Ok(()) }))
        .into();
    let answer = block_on(handle(
        &app,
        post(&[]),
        "/nothing",
        b"{}",
        &OrpcOptions::default(),
        None,
    ));
    assert_eq!(body_text(answer), "{}");
}

#[test]
fn an_interrupted_stream_tells_the_client_to_reconnect() {
    use outer_core::protocol::Framing;
    let mut framing = outer_core::protocol::orpc::OrpcFraming::default();
    let mut out = outer_core::protocol::Chunk::new();
    framing.interrupted(&mut out);
    assert!(out.into_string().starts_with("event: error\ndata: {\"json\":{\"defined\":false,\"code\":\"SERVICE_UNAVAILABLE\",\"status\":503,"));
}

#[test]
fn the_real_clients_meta_for_every_supported_type_decodes() {
    // Bytes @orpc/client 1.16.1 sent for a Date, a bigint, an undefined array item, a Set, a Map
    // holding a bigint, a URL and a RegExp.
    let body = br#"{"json":{"d":"1970-01-01T00:00:00.000Z","b":"10","arr":[1,null],"s":[1],"m":[["k","1"]],"url":"http://x/","re":"/a/g"},"meta":[[1,"d"],[0,"b"],[3,"arr",1],[6,"s"],[0,"m",0,1],[7,"m"],[4,"url"],[5,"re"]]}"#;
    assert_eq!(
        decode_body(body).unwrap().unwrap(),
        json!({"d": "1970-01-01T00:00:00.000Z", "b": 10, "arr": [1, null], "s": [1], "m": [["k", 1]], "url": "http://x/", "re": "/a/g"})
    );
}

// ------------------------------------------------------------------------------------ oRPC 2
// The bytes below are the oRPC 2 reference server's (tests/fixtures/reference/orpc-v2).

const V2: OrpcVersion = OrpcVersion::V2;

#[test]
fn v2_ends_a_stream_with_close_carrying_the_return_value_or_no_data_at_all() {
    // orpc-v2/counter.http
    let text = V2.encode_frames([
        Frame::Event(tracked(1, raw(json!({"n": 1}))).unwrap().with_retry(1000)),
        Frame::Done(raw(json!({"done": true}))),
    ]);
    assert_eq!(
        text,
        ": \n\n\
         event: message\nretry: 1000\nid: 1\ndata: {\"json\":{\"n\":1}}\n\n\
         event: close\ndata: {\"json\":{\"done\":true}}\n\n"
    );
    // orpc-v2/finite.http: a return of nothing is `close` without a data line (v1: `data: {}`).
    let text = V2.encode_frames([
        Frame::Event(Event::new(raw(json!({"n": 1})))),
        Frame::Done(raw(json!(null))),
    ]);
    assert_eq!(
        text,
        ": \n\nevent: message\ndata: {\"json\":{\"n\":1}}\n\nevent: close\n\n"
    );
    // A stream that yields nothing.
    let text = V2.encode_frames([Frame::Done(raw(json!(null)))]);
    assert_eq!(text, ": \n\nevent: close\n\n");
}

#[test]
fn v2_writes_a_message_of_undefined_without_a_data_line() {
    let text = V2.encode_frames([
        Frame::Event(Event::new(raw(json!(null)))),
        Frame::Event(tracked(7, raw(json!(null))).unwrap()),
        Frame::Event(Event::new(raw(json!(0)))),
    ]);
    assert_eq!(
        text,
        ": \n\nevent: message\n\nevent: message\nid: 7\n\nevent: message\ndata: {\"json\":0}\n\n"
    );
    // Version 1 writes the same events with its `{}` envelope.
    let text = OrpcVersion::V1.encode_frames([Frame::Event(Event::new(raw(json!(null))))]);
    assert_eq!(text, ": \n\nevent: message\ndata: {}\n\n");
}

#[test]
fn a_published_event_is_written_once_for_both_versions_but_undefined_apart() {
    let id = || Some(EventId::new("4").unwrap());
    // Data: the same bytes in both versions, shared.
    let shared = SharedEvent::new(raw(json!({"id": 4})), id());
    let v2 = V2.encode_frames([Frame::Shared(shared.clone())]);
    let v1 = OrpcVersion::V1.encode_frames([Frame::Shared(shared)]);
    assert_eq!(
        v2,
        ": \n\nevent: message\nid: 4\ndata: {\"json\":{\"id\":4}}\n\n"
    );
    assert_eq!(v1, v2);
    // `undefined`: v2 writes no data line, and leaves v1's `{}` (cached once) as it was.
    let unit = SharedEvent::new(raw(json!(null)), id());
    let v2 = V2.encode_frames([Frame::Shared(unit.clone())]);
    let v1 = OrpcVersion::V1.encode_frames([Frame::Shared(unit.clone())]);
    assert_eq!(v2, ": \n\nevent: message\nid: 4\n\n");
    assert_eq!(v1, ": \n\nevent: message\nid: 4\ndata: {}\n\n");
    assert_eq!(V2.encode_frames([Frame::Shared(unit)]), v2);
}

#[test]
fn v2_error_bodies_carry_inferable_and_no_status() {
    // orpc-v2/failing.http and failing5xx.http, as stream events.
    let text = V2.encode_frames([Frame::Error(
        RpcError::new(ErrorCode::BAD_REQUEST, "nope").with_data(json!({"why": "x"})),
    )]);
    assert_eq!(
        text,
        ": \n\nevent: error\ndata: {\"json\":{\"defined\":false,\"inferable\":false,\"code\":\"BAD_REQUEST\",\"message\":\"nope\",\"data\":{\"why\":\"x\"}}}\n\n"
    );
    let boom = RpcError::new(ErrorCode::INTERNAL_SERVER_ERROR, "boom");
    assert_eq!(
        V2.error_body(&boom),
        r#"{"json":{"defined":false,"inferable":false,"code":"INTERNAL_SERVER_ERROR","message":"boom"}}"#
    );
    // A declared error is inferable by the client.
    let declared = RpcError::new(ErrorCode::CONFLICT, "taken").defined(true);
    assert_eq!(
        V2.error_body(&declared),
        r#"{"json":{"defined":true,"inferable":true,"code":"CONFLICT","message":"taken"}}"#
    );
    // The status travels as the HTTP status only: orpc-v2/ping-csrf-no-cors.http.
    let response = V2.error_response(&RpcError::new(ErrorCode::FORBIDDEN, CSRF_BLOCKED));
    assert_eq!(response.status, 403);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert_eq!(
        body_text(response),
        r#"{"json":{"defined":false,"inferable":false,"code":"FORBIDDEN","message":"Request blocked by CSRF protection."}}"#
    );
}

#[test]
fn v2_meta_types_are_names_and_anything_else_is_malformed() {
    // What @orpc/client 2 sends for a Date, a bigint, an undefined array item, a Set, a Map
    // holding a bigint, a URL and a RegExp: v1's entries with names for numbers.
    let body = br#"{"json":{"d":"1970-01-01T00:00:00.000Z","b":"10","arr":[1,null],"s":[1],"m":[["k","1"]],"url":"http://x/","re":"/a/g","gone":null},"meta":[["date","d"],["bigint","b"],["undefined","arr",1],["set","s"],["bigint","m",0,1],["map","m"],["url","url"],["regexp","re"],["undefined","gone"]]}"#;
    assert_eq!(
        V2.decode_body(body).unwrap().unwrap(),
        json!({"d": "1970-01-01T00:00:00.000Z", "b": 10, "arr": [1, null], "s": [1], "m": [["k", 1]], "url": "http://x/", "re": "/a/g"})
    );
    for (meta, why) in [
        // orpc-v2/ping-meta-unknown-type.http, ping-meta-number-type.http: malformed in v2.
        (r#"[["nope","x"]]"#, "unknown type \"nope\""),
        (r#"[[0,"x"]]"#, "unknown type 0"),
        (r#"[["BigInt","x"]]"#, "unknown type"),
        // orpc-v2/ping-meta-bad-path.http, ping-meta-bad-value.http.
        (r#"[["bigint","missing"]]"#, "path not found"),
        (r#"[["bigint","s"]]"#, "a bigint must be a decimal integer"),
        (r#"[["bigint","big"]]"#, "a bigint outside 64 bits"),
    ] {
        let body = format!(
            r#"{{"json":{{"x":"1","s":"abc","big":"99999999999999999999"}},"meta":{meta}}}"#
        );
        let err = V2.decode_body(body.as_bytes()).unwrap_err();
        assert_eq!((err.code(), err.status()), ("BAD_REQUEST", 400), "{meta}");
        assert_eq!(err.message(), MALFORMED, "{meta}");
        let reason = err.data().unwrap()["reason"].as_str().unwrap().to_owned();
        assert!(reason.contains(why), "{meta}: {reason}");
    }
    // NaN has no JSON form: refused, as in v1 (the reference makes it NaN for zod to refuse).
    let err = V2
        .decode_body(br#"{"json":{"n":null},"meta":[["nan","n"]]}"#)
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(err.message().contains("NaN"), "{}", err.message());
    // Version 1 still reads numbers, and a name is not one.
    assert_eq!(
        OrpcVersion::V1
            .decode_body(br#"{"json":{"n":"1"},"meta":[[0,"n"]]}"#)
            .unwrap(),
        Some(json!({"n": 1}))
    );
    assert!(OrpcVersion::V1
        .decode_body(br#"{"json":{"n":"1"},"meta":[["bigint","n"]]}"#)
        .is_err());
}

fn get(query: &str) -> RequestHead {
    let mut head = RequestHead::new("GET", "/rpc2/ping");
    head.query = query.into();
    head
}

#[test]
fn v2_takes_get_with_the_envelope_in_data() {
    // orpc-v2/ping-get.http: `-G --data-urlencode 'data={"json":{"n":1}}'`.
    let call = V2
        .decode_request(
            &get("data=%7B%22json%22%3A%7B%22n%22%3A1%7D%7D"),
            "/ping",
            b"",
        )
        .unwrap();
    assert_eq!(
        (call.path.as_str(), call.input),
        ("ping", Some(json!({"n": 1})))
    );
    // The last `data` wins; none at all is no input; other keys are not read.
    let call = V2
        .decode_request(
            &get("data=%7B%22json%22%3A1%7D&x=y&data=%7B%22json%22%3A2%7D"),
            "/ping",
            b"",
        )
        .unwrap();
    assert_eq!(call.input, Some(json!(2)));
    assert_eq!(
        V2.decode_request(&get(""), "/ping", b"").unwrap().input,
        None
    );
    assert_eq!(
        V2.decode_request(&get("x=1"), "/ping", b"").unwrap().input,
        None
    );
    // A body sent with a GET is not read; the query is.
    let call = V2
        .decode_request(&get("data=%7B%22json%22%3A3%7D"), "/ping", br#"{"json":4}"#)
        .unwrap();
    assert_eq!(call.input, Some(json!(3)));
    // A bad envelope is malformed, as in a body; a stream resumes with last-event-id.
    let err = V2
        .decode_request(&get("data=not%20json"), "/ping", b"")
        .unwrap_err();
    assert_eq!((err.status(), err.message()), (400, MALFORMED));
    let head = get("data=%7B%7D").with_header("last-event-id", "2");
    let call = V2.decode_request(&head, "/counter", b"").unwrap();
    assert_eq!(call.last_event_id.unwrap().as_str(), "2");
    // Version 1 refuses GET.
    let err = OrpcVersion::V1
        .decode_request(&get("data=%7B%7D"), "/ping", b"")
        .unwrap_err();
    assert_eq!((err.code(), err.status()), ("METHOD_NOT_SUPPORTED", 405));
}

#[test]
fn v2_refuses_what_a_browser_did_not_fetch_by_script() {
    let body = br#"{"json":{"n":1}}"#;
    for mode in ["no-cors", "navigate", "websocket", "NAVIGATE", ""] {
        // orpc-v2/ping-csrf-no-cors.http, ping-csrf-navigate.http (a GET).
        for head in [
            post(&[("sec-fetch-mode", mode)]),
            get("").with_header("sec-fetch-mode", mode),
        ] {
            let err = V2.decode_request(&head, "/ping", body).unwrap_err();
            assert_eq!((err.code(), err.status()), ("FORBIDDEN", 403), "{mode:?}");
            assert_eq!(err.message(), CSRF_BLOCKED);
            assert!(err.data().is_none());
        }
    }
    // orpc-v2/ping-csrf-cors.http; same-origin; and no header at all (curl, Node).
    for head in [
        post(&[("sec-fetch-mode", "cors")]),
        post(&[("Sec-Fetch-Mode", "same-origin")]),
        post(&[]),
    ] {
        let call = V2.decode_request(&head, "/ping", body).unwrap();
        assert_eq!(call.input, Some(json!({"n": 1})));
    }
    // Version 1 has no such guard.
    let call = OrpcVersion::V1
        .decode_request(&post(&[("sec-fetch-mode", "no-cors")]), "/ping", body)
        .unwrap();
    assert_eq!(call.input, Some(json!({"n": 1})));
}

#[test]
fn v2_reads_no_body_as_no_input() {
    // orpc-v2/ping-empty-body.http, ping-empty-envelope.http: what @orpc/client 2 sends for
    // `undefined` (nothing), and v1's `{}`.
    assert_eq!(
        V2.decode_request(&post(&[]), "/ping", b"").unwrap().input,
        None
    );
    assert_eq!(
        V2.decode_request(&post(&[]), "/ping", b"{}").unwrap().input,
        None
    );
    assert_eq!(V2.encode_call(None), "");
    assert_eq!(
        V2.encode_call(Some(&json!({"n": 1}))),
        r#"{"json":{"n":1}}"#
    );
}

fn events(text: &str, version: OrpcVersion) -> Vec<ClientFrame> {
    let mut decoder = SseDecoder::new();
    let mut input = text.as_bytes();
    let mut frames = Vec::new();
    while let Some(event) = decoder.next_event(&mut input).unwrap() {
        if let Some(frame) = version.decode_event(&event).unwrap() {
            frames.push(frame);
        }
    }
    frames
}

#[test]
fn a_v2_client_reads_close_and_skips_done() {
    // orpc-v2/counter-last-event-id-2.http
    let frames = events(
        ": \n\nevent: message\nretry: 1000\nid: 3\ndata: {\"json\":{\"n\":3}}\n\n\
         event: close\ndata: {\"json\":{\"done\":true}}\n\n",
        V2,
    );
    let [ClientFrame::Message(message), ClientFrame::Done(done)] = &frames[..] else {
        panic!("{frames:?}")
    };
    assert_eq!(message.data(), &json!({"n": 3}));
    assert_eq!(message.id().unwrap().as_str(), "3");
    assert_eq!(message.meta().retry(), Some(1000));
    assert_eq!(done, &json!({"done": true}));
    // orpc-v2/finite.http: `close` without data returns nothing; a message without data is
    // `undefined`. (The WHATWG rules `SseDecoder` follows drop an event without data: these
    // are the events as oRPC 2's client reads them.)
    let dataless = |name: &str| SseEvent {
        event: name.into(),
        ..SseEvent::new("")
    };
    assert_eq!(
        V2.decode_event(&dataless("close")).unwrap(),
        Some(ClientFrame::Done(serde_json::Value::Null))
    );
    let Some(ClientFrame::Message(message)) = V2.decode_event(&dataless("message")).unwrap() else {
        panic!("a message")
    };
    assert!(message.data().is_null());
    // Version 1 knows no `close`.
    assert_eq!(
        OrpcVersion::V1.decode_event(&dataless("close")).unwrap(),
        None
    );
    // A v1 server's `done` is not known to v2: skipped (the clean end then ends the stream).
    let done = SseEvent {
        event: "done".into(),
        ..SseEvent::new(r#"{"json":{"done":true}}"#)
    };
    assert_eq!(V2.decode_event(&done).unwrap(), None);
    assert!(matches!(
        OrpcVersion::V1.decode_event(&done).unwrap(),
        Some(ClientFrame::Done(_))
    ));
    // An error event's status is its code's (v2 bodies carry none), 500 for a code not known.
    let frames = events(
        "event: error\ndata: {\"json\":{\"defined\":true,\"inferable\":true,\"code\":\"CONFLICT\",\"message\":\"taken\",\"data\":{\"k\":1}}}\n\n\
         event: error\ndata: {\"json\":{\"defined\":false,\"inferable\":false,\"code\":\"MY_CODE\",\"message\":\"x\"}}\n\n",
        V2,
    );
    let [ClientFrame::Error(conflict), ClientFrame::Error(mine)] = &frames[..] else {
        panic!("{frames:?}")
    };
    assert_eq!(
        (conflict.code(), conflict.status(), conflict.is_defined()),
        ("CONFLICT", 409, true)
    );
    assert_eq!(conflict.data(), Some(&json!({"k": 1})));
    assert_eq!((mine.code(), mine.status()), ("MY_CODE", 500));
    // A unary answer of `undefined` (orpc-v2/nothing.http: empty body) reads as null.
    assert_eq!(V2.decode_answer(200, b"").unwrap(), serde_json::Value::Null);
    let err = V2
        .decode_answer(
            403,
            br#"{"json":{"defined":false,"inferable":false,"code":"FORBIDDEN","message":"Request blocked by CSRF protection."}}"#,
        )
        .unwrap_err();
    assert_eq!(
        (err.code(), err.status(), err.message()),
        ("FORBIDDEN", 403, CSRF_BLOCKED)
    );
}

#[test]
fn v2_handle_answers_undefined_with_no_body_and_no_content_type() {
    let options = OrpcOptions::default();
    let v2_only: App<()> = Router::new()
        .route("nothing", procedure::<()>().query(|_| async { Ok(()) }))
        .route(
            "finite",
            procedure::<()>().subscription(|_| async {
                Ok(event_iterator(|mut emit| async move {
                    emit.send_value(json!({"n": 1})).await?;
                    Ok(())
                }))
            }),
        )
        .into();
    // orpc-v2/nothing.http
    let nothing = block_on(V2.handle(&v2_only, post(&[]), "/nothing", b"", &options, None));
    assert_eq!(nothing.status, 200);
    assert_eq!(nothing.header("content-type"), None);
    assert_eq!(body_text(nothing), "");
    // orpc-v2/finite.http
    let finite = block_on(V2.handle(&v2_only, post(&[]), "/finite", b"", &options, None));
    assert_eq!(finite.status, 200);
    assert_eq!(finite.header("content-type"), Some("text/event-stream"));
    assert_eq!(
        body_text(finite),
        ": \n\nevent: message\ndata: {\"json\":{\"n\":1}}\n\nevent: close\n\n"
    );
    // A value still has its envelope and content-type; a refusal has v2's error body.
    let ok = block_on(V2.handle(
        &app(),
        post(&[]),
        "/ping",
        br#"{"json":{"n":2}}"#,
        &options,
        None,
    ));
    assert_eq!(ok.header("content-type"), Some("application/json"));
    assert_eq!(body_text(ok), r#"{"json":{"n":2}}"#);
    let missing = block_on(V2.handle(&app(), post(&[]), "/nope", b"", &options, None));
    assert_eq!(missing.status, 404);
    assert_eq!(
        body_text(missing),
        r#"{"json":{"defined":false,"inferable":false,"code":"NOT_FOUND","message":"Not Found"}}"#
    );
}

/// What `@orpc/client` sends for a `Blob` in the input (multipart, both versions) or as the
/// whole input (oRPC 2's `standard-server: file`) is refused with 415, not read as bad JSON;
/// JSON with or without its hint is taken.
#[test]
fn file_and_stream_bodies_are_415_and_json_hints_are_taken() {
    use outer_core::protocol::orpc::OrpcVersion;
    use outer_core::RequestHead;
    let post = || RequestHead::new("POST", "/rpc/ping");
    let multipart = post().with_header("content-type", "multipart/form-data; boundary=x");
    for version in [OrpcVersion::V1, OrpcVersion::V2] {
        let error = version
            .decode_request(&multipart, "/ping", b"--x\r\n")
            .unwrap_err();
        assert_eq!(
            (error.code(), error.status()),
            ("UNSUPPORTED_MEDIA_TYPE", 415)
        );
        assert!(error.message().contains("multipart/form-data"), "{error}");
    }
    for hint in ["file", "octet-stream", "event-stream", "form-data"] {
        let head = post().with_header("standard-server", hint);
        let error = OrpcVersion::V2
            .decode_request(&head, "/ping", b"\x00\x01")
            .unwrap_err();
        assert_eq!(error.status(), 415, "{hint}");
        assert!(error.message().contains(hint), "{error}");
    }
    for hint in ["json", "none"] {
        let head = post()
            .with_header("standard-server", hint)
            .with_header("content-type", "application/json");
        let call = OrpcVersion::V2
            .decode_request(&head, "/ping", br#"{"json":{"n":1}}"#)
            .unwrap();
        assert_eq!(call.input, Some(json!({"n": 1})), "{hint}");
    }
}
