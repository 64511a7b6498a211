//! oRPC's wire format, byte for byte, as `shared/protocols/orpc.md` records it from the
//! reference server: requests decoded, answers and streams encoded.

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::procedure::Frame;
use outer_core::protocol::orpc::{decode_body, decode_request, encode_frames, handle, OrpcOptions};
use outer_core::protocol::{Body, HttpResponse};
use outer_core::{
    event_iterator, procedure, tracked, App, ErrorCode, Event, RequestHead, Router, RpcError,
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
    use outer_core::protocol::orpc::{decode_answer, decode_event, ClientFrame};
    use outer_core::sse::SseDecoder;
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
