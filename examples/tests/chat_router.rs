//! The chat in memory, without sockets: what a client of `post.live`, `counter` and the signed-in
//! procedures receives, including resume, through the app (context, middleware, router).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::procedure::{Frame, FrameStream, Reply};
use outer_core::publisher::{MemoryPublisher, SeqId};
use outer_core::rt::{Sleep, Timer};
use outer_core::{App, EventId, RequestHead, RpcError};
use outer_examples::chat::{self, Chat, ChatCtx, PostText, CATCH_UP_PAGE};
use serde_json::{json, Value};

#[derive(Debug)]
struct NoWait;
impl Timer for NoWait {
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(std::future::ready(()))
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

fn setup() -> (Chat, App<ChatCtx>) {
    let chat = Chat::new();
    let app = chat::app(chat.clone(), Arc::new(NoWait));
    (chat, app)
}

/// A request with no `authorization`.
fn anonymous() -> RequestHead {
    RequestHead::new("POST", "/rpc")
}

/// A request signed in as `name`.
fn signed_in(name: &str) -> RequestHead {
    anonymous().with_header("authorization", format!("Bearer {name}"))
}

/// The call's answer, or the error that refused it before anything was sent.
fn call(
    app: &App<ChatCtx>,
    head: RequestHead,
    path: &str,
    input: Option<Value>,
    last: Option<&str>,
) -> Result<Reply, RpcError> {
    let last = last.map(|id| EventId::new(id).unwrap());
    block_on(app.call(head, path, input, last))
}

fn stream(app: &App<ChatCtx>, path: &str, input: Option<Value>, last: Option<&str>) -> FrameStream {
    match call(app, anonymous(), path, input, last).unwrap() {
        Reply::Stream(frames) => frames,
        Reply::Value(_) => panic!("{path} is not a stream"),
    }
}

fn value(reply: Result<Reply, RpcError>) -> Value {
    match reply.unwrap() {
        Reply::Value(json) => serde_json::from_str(json.get()).unwrap(),
        Reply::Stream(_) => panic!("not a value"),
    }
}

/// The next event's id and data.
fn next_event(frames: &mut FrameStream) -> (String, Value) {
    match block_on(frames.next()) {
        Some(frame) if frame.is_event() => (
            frame.event_id().unwrap().to_string(),
            serde_json::from_str(frame.event_data().unwrap().get()).unwrap(),
        ),
        other => panic!("expected an event, got {other:?}"),
    }
}

/// The archive's page after post `after`.
fn page(chat: &Chat, after: u64) -> Vec<(SeqId, PostText)> {
    block_on(chat.archive_page(SeqId::new(after))).unwrap()
}

fn is_pending(frames: &mut FrameStream) -> bool {
    block_on(async { futures::poll!(frames.next()) }).is_pending()
}

#[test]
fn post_live_resumes_after_the_last_event_id_then_goes_live() {
    let (chat, app) = setup();
    for title in ["a", "b", "c"] {
        chat.create_now(title);
    }
    let mut live = stream(&app, "post.live", None, Some("1"));
    assert_eq!(
        next_event(&mut live),
        ("2".into(), json!({"id": 2, "title": "b"}))
    );
    assert_eq!(next_event(&mut live).0, "3");
    chat.create_now("d");
    assert_eq!(
        next_event(&mut live),
        ("4".into(), json!({"id": 4, "title": "d"}))
    );
    assert_eq!(chat.live_subscribers(), 1);
    drop(live);
    assert_eq!(
        chat.live_subscribers(),
        0,
        "dropping the stream unsubscribes at once"
    );
}

#[test]
fn post_create_answers_the_post_with_its_publisher_id_as_a_number() {
    let (_, app) = setup();
    let create = |title: &str| {
        let input = json!({ "title": title });
        value(call(&app, anonymous(), "post.create", Some(input), None))
    };
    assert_eq!(create("a"), json!({"id": 1, "title": "a"}));
    assert_eq!(create("b"), json!({"id": 2, "title": "b"}));
}

#[test]
fn post_live_without_an_id_sends_only_new_posts() {
    let (chat, app) = setup();
    chat.create_now("old");
    let mut live = stream(&app, "post.live", None, None);
    assert!(is_pending(&mut live));
    chat.create_now("new");
    assert_eq!(next_event(&mut live).0, "2");
}

#[test]
fn a_client_further_behind_than_retention_gets_the_rest_from_the_archive() {
    let (chat, app) = setup();
    for n in 0..1500 {
        chat.create_now(format!("post {n}"));
    }
    let mut live = stream(&app, "post.live", None, Some("10"));
    for expected in 11..=1500u64 {
        assert_eq!(next_event(&mut live).0, expected.to_string());
    }
    chat.create_now("after");
    assert_eq!(next_event(&mut live).0, "1501");
}

#[test]
fn a_last_event_id_that_is_not_a_post_id_is_refused_with_400_before_any_stream() {
    let (_, app) = setup();
    let err = call(&app, anonymous(), "post.live", None, Some("zzz")).unwrap_err();
    assert_eq!(err.status(), 400);
    // Past u64: no post has it.
    let huge = call(
        &app,
        anonymous(),
        "post.live",
        None,
        Some("18446744073709551616"),
    );
    assert_eq!(huge.unwrap_err().status(), 400);
    // The same for counter's ids.
    let input = json!({"from": 1, "to": 4, "delayMs": 0});
    let err = call(&app, anonymous(), "counter", Some(input), Some("x")).unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn counter_counts_with_retry_resumes_and_returns_done() {
    let (_, app) = setup();
    let input = json!({"from": 1, "to": 4, "delayMs": 10});
    let frames: Vec<Frame> = block_on(stream(&app, "counter", Some(input), Some("2")).collect());
    let ids: Vec<String> = frames
        .iter()
        .filter_map(|f| match f {
            Frame::Event(e) => {
                assert_eq!(e.meta().retry(), Some(1000));
                Some(e.id().unwrap().to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["3", "4"]);
    match frames.last() {
        Some(Frame::Done(json)) => assert_eq!(json.get(), r#"{"done":true}"#),
        other => panic!("expected done, got {other:?}"),
    }
}

#[test]
fn post_create_refuses_a_blank_or_too_long_title() {
    let (chat, app) = setup();
    let create = |title: String| {
        let input = json!({ "title": title });
        call(&app, anonymous(), "post.create", Some(input), None)
    };
    let err = create("  ".into()).unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.data().unwrap()["issues"][0]["path"], json!(["title"]));
    let err = create("x".repeat(chat::MAX_TITLE + 1)).unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(create("x".repeat(chat::MAX_TITLE)).is_ok());
    assert_eq!(page(&chat, 0).len(), 1, "only the valid post");
}

/// The error a stream ends with, skipping its events.
fn final_error(frames: FrameStream) -> RpcError {
    let frames: Vec<Frame> = block_on(frames.collect());
    match frames.into_iter().last() {
        Some(Frame::Error(err)) => err,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_resume_id_the_chat_never_gave_out_is_a_412_gap_not_a_loop() {
    // After a restart that lost the posts: the client saw post 5, this run has two.
    let (chat, app) = setup();
    chat.create_now("a");
    chat.create_now("b");
    let err = final_error(stream(&app, "post.live", None, Some("5")));
    assert_eq!((err.code(), err.status()), ("PRECONDITION_FAILED", 412));
    assert_eq!(err.data().unwrap()["gap"], "unknown");
    assert_eq!(err.data().unwrap()["lastEventId"], "5");
    // The same before any post.
    let (_, empty) = setup();
    let err = final_error(stream(&empty, "post.live", None, Some("1")));
    assert_eq!(
        (err.status(), &err.data().unwrap()["gap"]),
        (412, &json!("unknown"))
    );
}

#[test]
fn resuming_after_0_sends_every_post_from_the_first_a_page_at_a_time() {
    let (chat, app) = setup();
    for n in 0..200 {
        chat.create_now(format!("post {n}"));
    }
    let mut live = stream(&app, "post.live", None, Some("0"));
    for expected in 1..=200u64 {
        assert_eq!(next_event(&mut live).0, expected.to_string());
    }
    assert!(is_pending(&mut live));
    assert_eq!(page(&chat, 0).len(), CATCH_UP_PAGE, "a page is 64 at most");
    assert_eq!(page(&chat, 190).len(), 10);
    assert!(page(&chat, u64::MAX).is_empty());
}

#[test]
fn a_client_behind_a_small_retention_is_caught_up_page_by_page_as_it_reads() {
    // The publisher keeps 2 posts: every catch-up beyond is the archive's.
    let chat = Chat::with_archive(
        MemoryPublisher::<PostText>::builder()
            .retain_last(2)
            .build(),
    );
    let app = chat::app(chat.clone(), Arc::new(NoWait));
    for n in 1..=150 {
        chat.create_now(format!("post {n}"));
    }
    let mut live = stream(&app, "post.live", None, Some("3"));
    for expected in 4..=100u64 {
        assert_eq!(next_event(&mut live).0, expected.to_string());
    }
    // Posts made while the client is in the archive's pages come after them, once each.
    chat.create_now("during");
    for expected in 101..=151u64 {
        assert_eq!(next_event(&mut live).0, expected.to_string());
    }
    assert!(is_pending(&mut live));
    chat.create_now("live");
    assert_eq!(next_event(&mut live).0, "152");
}

#[test]
fn counter_resumed_after_the_largest_id_ends_without_overflow() {
    let (_, app) = setup();
    let input = json!({"from": 1, "to": 4, "delayMs": 0});
    let last = u64::MAX.to_string();
    let frames: Vec<Frame> = block_on(stream(&app, "counter", Some(input), Some(&last)).collect());
    match frames.as_slice() {
        [Frame::Done(json)] => assert_eq!(json.get(), r#"{"done":true}"#),
        other => panic!("expected done alone, got {other:?}"),
    }
}

#[test]
fn ping_answers_integers_as_integers_and_long_numbers_as_the_nearest_double() {
    let (_, app) = setup();
    let ping = |n: &str| -> String {
        let input: Value = serde_json::from_str(&format!(r#"{{"n":{n}}}"#)).unwrap();
        value(call(&app, anonymous(), "ping", Some(input), None)).to_string()
    };
    assert_eq!(ping("1"), r#"{"n":1}"#);
    assert_eq!(ping("-7"), r#"{"n":-7}"#);
    assert_eq!(ping("2.5"), r#"{"n":2.5}"#);
    // As JSON.parse then JSON.stringify give it, which is what the JavaScript reference answers.
    assert_eq!(
        ping("123456789012345678901234567890"),
        r#"{"n":1.2345678901234568e+29}"#
    );
}

#[test]
fn me_is_401_without_a_bearer_name_and_the_name_with_one() {
    let (_, app) = setup();
    let err = call(&app, anonymous(), "me", None, None).unwrap_err();
    assert_eq!((err.code(), err.status()), ("UNAUTHORIZED", 401));
    assert!(err.message().contains("authorization: Bearer"), "{err}");
    let me = value(call(&app, signed_in("ada"), "me", None, None));
    assert_eq!(me, json!({"name": "ada"}));
    // The scheme in any case, as HTTP means it.
    let head = anonymous().with_header("Authorization", "bearer grace");
    assert_eq!(
        value(call(&app, head, "me", None, None)),
        json!({"name": "grace"})
    );
}

#[test]
fn a_malformed_authorization_is_401_for_every_procedure_never_anonymous() {
    let (_, app) = setup();
    let long = "x".repeat(chat::MAX_NAME + 1);
    for header in [
        "Basic YWRhOg==",
        "Bearer ",
        "Bearer",
        "Bearer a\u{7}b",
        &format!("Bearer {long}"),
    ] {
        let head = anonymous().with_header("authorization", header);
        let err = call(&app, head, "ping", Some(json!({"n": 1})), None).unwrap_err();
        assert_eq!(err.status(), 401, "{header:?}");
    }
    let longest = "x".repeat(chat::MAX_NAME);
    let me = value(call(&app, signed_in(&longest), "me", None, None));
    assert_eq!(me["name"], longest.as_str());
    // Without the header the caller is anonymous, and public procedures answer.
    let pong = value(call(&app, anonymous(), "ping", Some(json!({"n": 1})), None));
    assert_eq!(pong, json!({"n": 1}));
}

#[test]
fn mentions_live_is_401_before_any_stream_without_a_name() {
    let (chat, app) = setup();
    // Refused by the middleware, before the input is even read: no stream, no subscriber.
    let bad_input = Some(json!({"unexpected": true}));
    let err = call(&app, anonymous(), "mentions.live", bad_input, None).unwrap_err();
    assert_eq!(err.status(), 401);
    assert_eq!(chat.live_subscribers(), 0);
}

#[test]
fn mentions_live_sends_the_posts_naming_the_caller_with_their_ids_and_resumes() {
    let (chat, app) = setup();
    chat.create_now("hello @ada");
    let mut mine = match call(&app, signed_in("ada"), "mentions.live", None, None).unwrap() {
        Reply::Stream(frames) => frames,
        Reply::Value(_) => panic!("mentions.live is a stream"),
    };
    assert!(is_pending(&mut mine), "live only, without an id");
    chat.create_now("nothing for ada");
    chat.create_now("@grace and @ada, lunch?");
    chat.create_now("@adam is someone else... but contains @ada");
    assert_eq!(
        next_event(&mut mine),
        (
            "3".into(),
            json!({"id": 3, "title": "@grace and @ada, lunch?"})
        )
    );
    assert_eq!(next_event(&mut mine).0, "4");
    assert!(is_pending(&mut mine));
    // Resuming after a mention's id: the later mentions, from the archive as from the publisher.
    let resumed = call(&app, signed_in("ada"), "mentions.live", None, Some("0")).unwrap();
    let Reply::Stream(mut resumed) = resumed else {
        panic!("mentions.live is a stream")
    };
    let ids: Vec<String> = (0..3).map(|_| next_event(&mut resumed).0).collect();
    assert_eq!(ids, ["1", "3", "4"]);
    assert_eq!(chat.live_subscribers(), 2);
}
