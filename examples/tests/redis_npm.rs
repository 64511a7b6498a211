//! The Redis chat's resume guarantees as the real npm clients see them: `@orpc/client` and
//! `@trpc/client` (`tests/interop/redis.mjs`) against two `chat --redis` processes sharing one
//! real redis-server, every case on tokio and on smol.
//!
//! - resume: a client on instance B resumes after the 3rd post made on A: posts 4.. in order,
//!   exactly once, then the live ones made on A;
//! - lost history: Redis restarted without its data, then a new post: a resume id from before
//!   ends the subscription with 412 `PRECONDITION_FAILED`, gap "unknown", not the new post, and
//!   the client does not reconnect;
//! - made-up id: an id between two real ones, never given out: the same 412;
//! - Redis restart with its data: the first `post.create` on each instance afterwards succeeds
//!   in one request, and live subscribers connected throughout get every post once, in order.
//!
//! Needs `redis-server`, Node.js 20+ and npm (the clients come from `tests/interop`'s lockfile).
//! No timing assertions: deadlines only turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use outer_redis::testing::RedisServer;

#[path = "support/chat_process.rs"]
mod chat_process;
use chat_process::{interop_dir, ChatProcess};

/// How long one run of the script may take before it counts as hung (it has deadlines of its
/// own; this one is for a script stuck where it has none).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

/// Runs `case` of `redis.mjs` against two `chat --redis` instances on `runtime` sharing one
/// fresh redis-server, restarting Redis when the script asks, and returns its output once it
/// passed: every check, none skipped.
fn run_case(case: &str, runtime: &str) -> String {
    let mut redis = RedisServer::start().expect("start redis-server");
    let chat = || ChatProcess::start(&["--runtime", runtime, "--redis", &redis.url()]);
    let (a, b) = (chat(), chat());

    let mut node = Command::new("node")
        .args(["redis.mjs", case, &a.url(), &b.url()])
        .current_dir(interop_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is needed to run the npm clients (install Node.js 20+)");
    let (mut to_node, stdout) = (node.stdin.take().unwrap(), node.stdout.take().unwrap());
    let mut stderr = node.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // A script that never ends is killed: its stdout closes and the test fails below.
    let (finished, watch) = mpsc::channel::<()>();
    let pid = node.id().to_string();
    let watchdog = std::thread::spawn(move || {
        if watch.recv_timeout(SCRIPT_DEADLINE) == Err(mpsc::RecvTimeoutError::Timeout) {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    });

    let mut output = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        output.push_str(&line);
        output.push('\n');
        // `need redis <action> (<what a person would do>)`: do it, then answer `done`.
        let Some(action) = line.strip_prefix("need redis ") else {
            continue;
        };
        match action.split(' ').next() {
            Some("restart") => redis.restart().expect("restart redis-server with its data"),
            Some("restart-empty") => redis.restart_empty().expect("restart redis-server empty"),
            _ => panic!("the script asked for something unknown: {line}\n{output}"),
        }
        // A script that died meanwhile fails below, with its output.
        let _ = writeln!(to_node, "done");
    }
    let status = node.wait().unwrap();
    let _ = finished.send(());
    watchdog.join().unwrap();
    output.push_str(&errors.join().unwrap());

    assert!(
        status.success(),
        "node redis.mjs {case} on {runtime} failed ({status}):\n{output}"
    );
    assert!(
        output.contains(&format!("redis {case}: all checks passed")),
        "{output}"
    );
    assert!(
        !output.lines().any(|line| line.starts_with("skip")),
        "a check was skipped:\n{output}"
    );
    output
}

/// Runs `case` and prints its output (what the clients surfaced), for `--nocapture`.
fn passes(case: &str, runtime: &str) {
    let output = run_case(case, runtime);
    println!("node redis.mjs {case} on {runtime}:\n{output}");
}

#[test]
fn clients_resume_on_another_instance_after_the_third_post_on_tokio() {
    passes("resume", "tokio");
}

#[test]
fn clients_resume_on_another_instance_after_the_third_post_on_smol() {
    passes("resume", "smol");
}

#[test]
fn an_id_from_before_redis_lost_its_data_ends_with_an_unknown_gap_on_tokio() {
    passes("lost-history", "tokio");
}

#[test]
fn an_id_from_before_redis_lost_its_data_ends_with_an_unknown_gap_on_smol() {
    passes("lost-history", "smol");
}

#[test]
fn a_made_up_id_between_two_posts_ends_with_an_unknown_gap_on_tokio() {
    passes("made-up-id", "tokio");
}

#[test]
fn a_made_up_id_between_two_posts_ends_with_an_unknown_gap_on_smol() {
    passes("made-up-id", "smol");
}

#[test]
fn after_a_redis_restart_the_first_create_succeeds_and_subscribers_miss_nothing_on_tokio() {
    passes("redis-restart", "tokio");
}

#[test]
fn after_a_redis_restart_the_first_create_succeeds_and_subscribers_miss_nothing_on_smol() {
    passes("redis-restart", "smol");
}
