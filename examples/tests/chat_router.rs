//! The chat router in memory, without sockets: what a client of `post.live` and `counter`
//! receives, including resume.

use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;
use futures::StreamExt;
use outer_core::procedure::{Call, Frame, FrameStream, Response};
use outer_core::rt::{Sleep, Timer};
use outer_core::{EventId, Router};
use outer_examples::chat::{router, Chat};
use serde_json::{json, Value};

#[derive(Debug)]
struct NoWait;
impl Timer for NoWait {
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(std::future::ready(()))
    }
}

fn setup() -> (Chat, Router<()>) {
    let chat = Chat::new();
    let router = router(chat.clone(), Arc::new(NoWait));
    (chat, router)
}

fn stream(
    router: &Router<()>,
    path: &str,
    input: Option<Value>,
    last: Option<&str>,
) -> FrameStream {
    let call = Call::new((), input).with_last_event_id(last.map(|id| EventId::new(id).unwrap()));
    match router.call(path, call).unwrap() {
        Response::Stream(frames) => frames,
        Response::Unary(_) => panic!("{path} is not a stream"),
    }
}

/// The next event's id and data.
fn next_event(frames: &mut FrameStream) -> (String, Value) {
    match block_on(frames.next()) {
        Some(Frame::Event(event)) => (
            event.id().unwrap().to_string(),
            serde_json::from_str(event.data().get()).unwrap(),
        ),
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn post_live_resumes_after_the_last_event_id_then_goes_live() {
    let (chat, router) = setup();
    for title in ["a", "b", "c"] {
        chat.create(title.into());
    }
    let mut live = stream(&router, "post.live", None, Some("1"));
    assert_eq!(
        next_event(&mut live),
        ("2".into(), json!({"id": 2, "title": "b"}))
    );
    assert_eq!(next_event(&mut live).0, "3");
    chat.create("d".into());
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
fn post_live_without_an_id_sends_only_new_posts() {
    let (chat, router) = setup();
    chat.create("old".into());
    let mut live = stream(&router, "post.live", None, None);
    assert!(block_on(async { futures::poll!(live.next()) }).is_pending());
    chat.create("new".into());
    assert_eq!(next_event(&mut live).0, "2");
}

#[test]
fn a_client_further_behind_than_retention_gets_the_rest_from_the_store() {
    let (chat, router) = setup();
    for n in 0..1500 {
        chat.create(format!("post {n}"));
    }
    let mut live = stream(&router, "post.live", None, Some("10"));
    for expected in 11..=1500u64 {
        assert_eq!(next_event(&mut live).0, expected.to_string());
    }
    chat.create("after".into());
    assert_eq!(next_event(&mut live).0, "1501");
}

#[test]
fn a_last_event_id_that_is_not_a_post_id_is_a_bad_request() {
    let (_, router) = setup();
    let mut live = stream(&router, "post.live", None, Some("zzz"));
    match block_on(live.next()) {
        Some(Frame::Error(err)) => assert_eq!(err.status(), 400),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn counter_counts_with_retry_resumes_and_returns_done() {
    let (_, router) = setup();
    let input = json!({"from": 1, "to": 4, "delayMs": 10});
    let frames: Vec<Frame> = block_on(stream(&router, "counter", Some(input), Some("2")).collect());
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
fn post_create_refuses_an_empty_title() {
    let (_, router) = setup();
    let err = router
        .call("post.create", Call::new((), Some(json!({"title": "  "}))))
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert_eq!(err.data().unwrap()["issues"][0]["path"], json!(["title"]));
}

/// The error a stream ends with, skipping its events.
fn final_error(frames: FrameStream) -> outer_core::RpcError {
    let frames: Vec<Frame> = block_on(frames.collect());
    match frames.into_iter().last() {
        Some(Frame::Error(err)) => err,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_resume_id_the_chat_never_gave_out_is_a_412_gap_not_a_loop() {
    // After a restart that lost the posts: the client saw post 5, this run has two.
    let (chat, router) = setup();
    chat.create("a".into());
    chat.create("b".into());
    let err = final_error(stream(&router, "post.live", None, Some("5")));
    assert_eq!((err.code(), err.status()), ("PRECONDITION_FAILED", 412));
    assert_eq!(err.data().unwrap()["gap"], "unknown");
    assert_eq!(err.data().unwrap()["newest"], 2);
    // The same before any post, and with an id past u64.
    let (_, empty) = setup();
    assert_eq!(
        final_error(stream(&empty, "post.live", None, Some("1"))).status(),
        412
    );
    let huge = stream(&empty, "post.live", None, Some("18446744073709551616"));
    assert_eq!(final_error(huge).status(), 400);
}

#[test]
fn resuming_after_0_sends_every_post_from_the_first_a_page_at_a_time() {
    let (chat, router) = setup();
    for n in 0..200 {
        chat.create(format!("post {n}"));
    }
    let mut live = stream(&router, "post.live", None, Some("0"));
    for expected in 1..=200u64 {
        assert_eq!(next_event(&mut live).0, expected.to_string());
    }
    assert!(block_on(async { futures::poll!(live.next()) }).is_pending());
    assert_eq!(chat.posts_after(0, 64).len(), 64, "a page is 64 at most");
    assert_eq!(chat.posts_after(190, 64).len(), 10);
    assert!(chat.posts_after(u64::MAX, 64).is_empty());
}

#[test]
fn counter_resumed_after_the_largest_id_ends_without_overflow() {
    let (_, router) = setup();
    let input = json!({"from": 1, "to": 4, "delayMs": 0});
    let frames: Vec<Frame> =
        block_on(stream(&router, "counter", Some(input), Some(&u64::MAX.to_string())).collect());
    match frames.as_slice() {
        [Frame::Done(json)] => assert_eq!(json.get(), r#"{"done":true}"#),
        other => panic!("expected done alone, got {other:?}"),
    }
}

#[test]
fn ping_answers_integers_as_integers_and_long_numbers_as_the_nearest_double() {
    let (_, router) = setup();
    let ping = |n: &str| -> String {
        let input: Value = serde_json::from_str(&format!(r#"{{"n":{n}}}"#)).unwrap();
        match router.call("ping", Call::new((), Some(input))).unwrap() {
            Response::Unary(answer) => block_on(answer).unwrap().get().to_owned(),
            Response::Stream(_) => panic!("ping is not a stream"),
        }
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
