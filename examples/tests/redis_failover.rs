//! Scaling out with `chat --redis`: chat servers as real processes sharing one real
//! redis-server. A client subscribed through instance A keeps every post when A is killed and it
//! reconnects to instance B with its last event id, and when Redis itself is killed and
//! restarted mid-stream: every post once, in order. A on one runtime, B on another (monoio
//! among them: its Redis readers run on smol's executor, its streams on its own threads).
//!
//! Needs `redis-server` (Debian's package; .ci/run installs it). No timing assertions:
//! deadlines only turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outer_harness::loopback::LoopbackSession;
use outer_harness::Protocol;
use outer_redis::testing::RedisServer;
use serde_json::Value;

#[path = "support/chat_process.rs"]
mod chat_process;
use chat_process::{ChatProcess, DEADLINE};

/// A `chat --redis` process on `runtime`.
fn chat(runtime: &str, redis: &RedisServer) -> ChatProcess {
    ChatProcess::start(&["--runtime", runtime, "--redis", &redis.url()])
}

/// Polls `done` until it holds, failing after [`DEADLINE`] (Redis reconnects take a while).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How many chat servers read the posts' stream: one per server with a live subscriber.
fn readers(redis: &RedisServer) -> usize {
    let names = redis.client_names().unwrap();
    names
        .iter()
        .filter(|name| *name == "outer-reader:created")
        .count()
}

/// The posts a session received, as `(SSE id, post)`, checking that each post's id is its SSE id.
fn received(session: &LoopbackSession) -> Vec<Value> {
    session
        .events()
        .map(|event| {
            let post = event.data().clone();
            let id = event.id().expect("every post has an id").as_str();
            assert_eq!(post["id"], id, "the SSE id is the post's id");
            post
        })
        .collect()
}

/// Reads until the session holds `n` posts in all.
fn read_until(session: &mut LoopbackSession, n: usize) {
    while session.events().count() < n {
        assert!(
            session.is_connected(),
            "the stream ended early: {:?}",
            session.seen()
        );
        session.read_events(n - session.events().count());
    }
}

fn a_client_resumes_on_another_instance_after_its_instance_is_killed(
    protocol: Protocol,
    [a, b]: [&str; 2],
) {
    let redis = RedisServer::start().expect("start redis-server");
    let a = chat(a, &redis);
    let b = chat(b, &redis);
    let mut session = LoopbackSession::new(a.addr, protocol, "post.live", None);
    session.connect();
    // A subscribed: its reader for the topic is connected (it starts once A has a subscriber).
    wait_until("A's subscriber", || readers(&redis) == 1);

    // Both instances take posts; the client, on A, sees all of them.
    let mut posts = Vec::new();
    for n in 0..10 {
        let instance = if n % 2 == 0 { &a } else { &b };
        posts.push(instance.create(&format!("post {n}")));
    }
    read_until(&mut session, 6);
    for n in 10..13 {
        posts.push(b.create(&format!("post {n}")));
    }

    // A dies with posts in flight to the client; more are made on B while it is away.
    a.kill();
    session.read_to_end();
    assert!(!session.is_connected());
    for n in 13..20 {
        posts.push(b.create(&format!("post {n}")));
    }
    let last = session
        .last_event_id()
        .expect("the client saw posts")
        .to_string();
    assert!(received(&session).iter().any(|p| p["id"] == last.as_str()));

    // The client comes back through B with its last id.
    session.set_addr(b.addr);
    session.connect();
    read_until(&mut session, 20);
    for n in 20..22 {
        posts.push(b.create(&format!("post {n}")));
    }
    read_until(&mut session, 22);
    assert_eq!(received(&session), posts, "every post once, in order");
    assert_eq!(session.connections(), 2);

    // Ids are Redis stream ids, growing.
    let ids: Vec<&str> = posts.iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(
        ids.iter()
            .all(|id| outer_redis::StreamId::parse(id).is_ok()),
        "{ids:?}"
    );
    let parsed: Vec<_> = ids
        .iter()
        .map(|id| outer_redis::StreamId::parse(id).unwrap())
        .collect();
    assert!(parsed.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[test]
fn an_orpc_client_resumes_on_another_instance_after_its_instance_is_killed() {
    a_client_resumes_on_another_instance_after_its_instance_is_killed(
        Protocol::Orpc,
        ["tokio", "smol"],
    );
}

#[test]
fn a_trpc_client_resumes_on_another_instance_after_its_instance_is_killed() {
    a_client_resumes_on_another_instance_after_its_instance_is_killed(
        Protocol::Trpc,
        ["smol", "tokio"],
    );
}

#[test]
fn a_client_of_a_monoio_instance_resumes_on_a_tokio_one_after_its_instance_is_killed() {
    a_client_resumes_on_another_instance_after_its_instance_is_killed(
        Protocol::Orpc,
        ["monoio", "tokio"],
    );
}

#[test]
fn a_redis_restart_mid_stream_loses_and_repeats_no_post() {
    let mut redis = RedisServer::start().expect("start redis-server");
    let a = chat("smol", &redis);
    let b = chat("tokio", &redis);
    let mut session = LoopbackSession::new(a.addr, Protocol::Orpc, "post.live", None);
    session.connect();
    wait_until("A's subscriber", || readers(&redis) == 1);

    let mut posts: Vec<Value> = (0..5).map(|n| b.create(&format!("post {n}"))).collect();
    read_until(&mut session, 3);

    redis.kill();
    redis.restart().expect("restart redis-server with its data");
    // Posts made as soon as Redis is back (each retried while the server answers 503), on
    // both instances, while A's reader reconnects.
    for n in 5..12 {
        let instance = if n % 2 == 0 { &a } else { &b };
        posts.push(instance.create(&format!("post {n}")));
    }
    read_until(&mut session, 12);
    assert_eq!(received(&session), posts, "every post once, in order");
    // The client never noticed: one connection throughout.
    assert_eq!(session.connections(), 1);
    assert!(session.is_connected());
    wait_until("A's reader back on Redis", || readers(&redis) == 1);
}

#[test]
fn a_redis_that_does_not_answer_stops_the_chat_at_start_up_with_a_clear_error() {
    // A port nothing listens on: bound, then freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = format!("redis://127.0.0.1:{port}");
    for (runtime, url) in [
        ("tokio", unreachable.as_str()),
        ("smol", unreachable.as_str()),
        ("monoio", unreachable.as_str()),
        ("tokio", "http://not-redis"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--runtime",
                runtime,
                "--redis",
                url,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("run the chat example");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{runtime} {url}: {stderr}");
        assert!(output.stdout.is_empty(), "it never listened: {stderr}");
        assert!(stderr.contains(&format!("--redis {url}")), "{stderr}");
        assert!(stderr.contains("Redis"), "{stderr}");
    }
}
