//! One chat router over two publishers: the same scenarios run through `chat::app` on the
//! in-memory publisher and on Redis (a real redis-server on a free port), and see the same
//! wire behaviour: posts created, sent live and resumed with their publisher's ids; a restart
//! (memory: a fresh chat that never gave out the client's id, so a 412; Redis: the same Redis,
//! so the client resumes); a gap filled from the archive, or without one, a 412; the signed-in
//! procedures alike.
//!
//! Needs `redis-server` (Debian's package; .ci/run installs it). No timing assertions:
//! deadlines only turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use outer_core::procedure::{Frame, FrameStream, Reply};
use outer_core::publisher::{MemoryPublisher, Publisher};
use outer_core::rt::Timer;
use outer_core::{App, EventId, RequestHead, RpcError};
use outer_examples::chat::{self, Chat, ChatCtx, PostText};
use outer_redis::testing::RedisServer;
use outer_redis::RedisPublisher;
use serde_json::{json, Value};

/// How long any one wait may take before the test fails as hung.
const DEADLINE: Duration = Duration::from_secs(30);

/// `future`, or a failure naming `what` after [`DEADLINE`].
async fn within<F: Future>(what: &str, future: F) -> F::Output {
    let sleep = outer_smol::SmolRuntime.sleep(DEADLINE);
    match futures::future::select(std::pin::pin!(future), sleep).await {
        futures::future::Either::Left((out, _)) => out,
        futures::future::Either::Right(_) => panic!("still waiting for {what}"),
    }
}

fn app<P: Publisher<PostText> + Clone + 'static>(chat: Chat<P>) -> App<ChatCtx> {
    chat::app(chat, Arc::new(outer_smol::SmolRuntime))
}

fn anonymous() -> RequestHead {
    RequestHead::new("POST", "/rpc")
}

fn signed_in(name: &str) -> RequestHead {
    anonymous().with_header("authorization", format!("Bearer {name}"))
}

async fn call(
    app: &App<ChatCtx>,
    head: RequestHead,
    path: &str,
    input: Option<Value>,
    last: Option<&str>,
) -> Result<Reply, RpcError> {
    let last = last.map(|id| EventId::new(id).unwrap());
    within(path, app.call(head, path, input, last)).await
}

/// `post.create`, through the router: the post it answers.
async fn create(app: &App<ChatCtx>, title: &str) -> Value {
    let input = json!({ "title": title });
    match call(app, anonymous(), "post.create", Some(input), None).await {
        Ok(Reply::Value(json)) => serde_json::from_str(json.get()).unwrap(),
        other => panic!("post.create answered {other:?}"),
    }
}

/// A subscription's stream.
async fn open(
    app: &App<ChatCtx>,
    head: RequestHead,
    path: &str,
    last: Option<&str>,
) -> FrameStream {
    match call(app, head, path, None, last).await {
        Ok(Reply::Stream(frames)) => frames,
        other => panic!("{path} answered {other:?}"),
    }
}

/// A post's id as its SSE id reads: a memory id is a JSON number, a Redis one a string.
fn id_text(post: &Value) -> String {
    match &post["id"] {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("a post id is a number or a string, not {other}"),
    }
}

/// The next post, checking that its SSE id is its id.
async fn next_post(frames: &mut FrameStream) -> Value {
    match within("a post", frames.next()).await {
        Some(frame) if frame.is_event() => {
            let post: Value = serde_json::from_str(frame.event_data().unwrap().get()).unwrap();
            assert_eq!(frame.event_id().unwrap().as_str(), id_text(&post), "{post}");
            post
        }
        other => panic!("expected a post, got {other:?}"),
    }
}

async fn next_posts(frames: &mut FrameStream, n: usize) -> Vec<Value> {
    let mut posts = Vec::with_capacity(n);
    for _ in 0..n {
        posts.push(next_post(frames).await);
    }
    posts
}

/// The error the stream ends with, skipping no event: it must come next.
async fn ends_with(frames: &mut FrameStream) -> RpcError {
    match within("the end", frames.next()).await {
        Some(Frame::Error(err)) => err,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Creates posts, and reads them live, resumed, and mentioned; returns the posts made.
async fn posts_go_live_and_resume<P: Publisher<PostText> + Clone + 'static>(
    chat: Chat<P>,
) -> Vec<Value> {
    let app = app(chat);
    let mut live = open(&app, anonymous(), "post.live", None).await;
    let mut mentions = open(&app, signed_in("ada"), "mentions.live", None).await;
    let mut posts = Vec::new();
    for title in ["a", "b", "hi @ada"] {
        posts.push(create(&app, title).await);
    }
    assert_eq!(posts[0]["title"], "a");
    assert_eq!(next_posts(&mut live, 3).await, posts);
    assert_eq!(next_post(&mut mentions).await, posts[2]);

    // A client that saw the first post comes back: the rest, then live.
    let mut resumed = open(&app, anonymous(), "post.live", Some(&id_text(&posts[0]))).await;
    assert_eq!(next_posts(&mut resumed, 2).await, posts[1..]);
    posts.push(create(&app, "d").await);
    assert_eq!(next_post(&mut resumed).await, posts[3]);
    assert_eq!(next_post(&mut live).await, posts[3]);
    let ids: std::collections::HashSet<String> = posts.iter().map(id_text).collect();
    assert_eq!(ids.len(), posts.len(), "every post its own id");

    // Refused before any stream: a resume id no publisher makes, and an anonymous caller.
    let err = call(&app, anonymous(), "post.live", None, Some("zzz")).await;
    assert_eq!(err.unwrap_err().status(), 400);
    let err = call(&app, anonymous(), "mentions.live", None, None).await;
    assert_eq!(err.unwrap_err().status(), 401);
    let me = call(&app, signed_in("ada"), "me", None, None)
        .await
        .unwrap();
    let Reply::Value(me) = me else {
        panic!("me answers a value")
    };
    assert_eq!(me.get(), r#"{"name":"ada"}"#);
    posts
}

/// The chat restarted as `chat`: a client that saw `seen[..2]` resumes after the second.
/// With the posts kept (Redis), it gets the rest; without (a fresh memory chat, which never
/// gave out that id), a 412 gap, and starting over it gets the new run's posts.
async fn after_a_restart<P: Publisher<PostText> + Clone + 'static>(
    chat: Chat<P>,
    seen: &[Value],
    kept: bool,
) {
    let app = app(chat);
    let mut resumed = open(&app, anonymous(), "post.live", Some(&id_text(&seen[1]))).await;
    if kept {
        assert_eq!(next_posts(&mut resumed, seen.len() - 2).await, seen[2..]);
        let new = create(&app, "after the restart").await;
        assert_eq!(next_post(&mut resumed).await, new);
    } else {
        let err = ends_with(&mut resumed).await;
        assert_eq!((err.code(), err.status()), ("PRECONDITION_FAILED", 412));
        assert_eq!(err.data().unwrap()["gap"], "unknown");
        let mut fresh = open(&app, anonymous(), "post.live", None).await;
        let new = create(&app, "after the restart").await;
        assert_eq!(next_post(&mut fresh).await, new);
    }
}

/// Two chats on publishers that keep few posts, one with an archive: `n` posts later, a client
/// that saw only the first is caught up from the archive, or meets the gap (412) without one.
async fn a_gap_is_filled_from_the_archive_or_is_a_412<P: Publisher<PostText> + Clone + 'static>(
    archived: Chat<P>,
    unarchived: Chat<P>,
    n: usize,
) {
    let app = app(archived);
    let mut posts = Vec::new();
    for i in 0..n {
        posts.push(create(&app, &format!("post {i}")).await);
    }
    let mut resumed = open(&app, anonymous(), "post.live", Some(&id_text(&posts[0]))).await;
    assert_eq!(next_posts(&mut resumed, n - 1).await, posts[1..]);
    let live = create(&app, "live").await;
    assert_eq!(next_post(&mut resumed).await, live);

    let app = self::app(unarchived);
    let mut first = None;
    for i in 0..n {
        let post = create(&app, &format!("post {i}")).await;
        first.get_or_insert(post);
    }
    let first = id_text(&first.unwrap());
    let mut resumed = open(&app, anonymous(), "post.live", Some(&first)).await;
    let err = ends_with(&mut resumed).await;
    assert_eq!(err.status(), 412);
    assert_eq!(err.data().unwrap()["gap"], "expired");
}

/// Enough posts for Redis's `MAXLEN ~ 1` to trim some (it trims whole nodes of 100).
const PAST_RETENTION: usize = 350;

#[test]
fn on_memory_posts_go_live_and_resume_and_a_restart_loses_them() {
    smol::block_on(async {
        let seen = posts_go_live_and_resume(Chat::new()).await;
        after_a_restart(Chat::new(), &seen, false).await;
    });
}

#[test]
fn on_memory_a_gap_is_filled_from_the_archive_or_is_a_412() {
    let small = || {
        MemoryPublisher::<PostText>::builder()
            .retain_last(2)
            .build()
    };
    smol::block_on(a_gap_is_filled_from_the_archive_or_is_a_412(
        Chat::with_archive(small()),
        Chat::without_archive(small()),
        PAST_RETENTION,
    ));
}

fn on_smol() -> outer_smol::SmolRuntime {
    outer_smol::SmolRuntime
}

fn redis_publisher(redis: &RedisServer, prefix: &str, retain: usize) -> RedisPublisher<PostText> {
    RedisPublisher::builder(redis.url())
        .key_prefix(prefix)
        .retain_last(retain)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .build(on_smol())
        .unwrap()
}

#[test]
fn on_redis_posts_go_live_and_resume_and_a_restart_keeps_them() {
    let redis = RedisServer::start().expect("start redis-server");
    smol::block_on(async {
        let chat = chat::RedisChat::connect(&redis.url(), on_smol()).unwrap();
        chat.check().await.unwrap();
        let seen = posts_go_live_and_resume(chat).await;
        // Another chat process on the same Redis: what the first made is there.
        let restarted = chat::RedisChat::connect(&redis.url(), on_smol()).unwrap();
        after_a_restart(restarted, &seen, true).await;
    });
}

#[test]
fn on_redis_a_gap_is_filled_from_the_archive_or_is_a_412() {
    let redis = RedisServer::start().expect("start redis-server");
    smol::block_on(a_gap_is_filled_from_the_archive_or_is_a_412(
        Chat::with_archive(redis_publisher(&redis, "archived:", 1)),
        Chat::without_archive(redis_publisher(&redis, "unarchived:", 1)),
        PAST_RETENTION,
    ));
}
