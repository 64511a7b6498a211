//! The Redis chat's resume guarantees as the real npm clients see them: `@orpc/client` and
//! `@trpc/client` (`tests/interop/redis.mjs`) against two `chat --redis` processes sharing one
//! real redis-server, or one Redis Cluster, every case on tokio and on smol.
//!
//! On one redis-server:
//! - resume: a client on instance B resumes after the 3rd post made on A: posts 4.. in order,
//!   exactly once, then the live ones made on A;
//! - lost history: Redis restarted without its data, then a new post: a resume id from before
//!   ends the subscription with 412 `PRECONDITION_FAILED`, gap "unknown", not the new post, and
//!   the client does not reconnect;
//! - made-up id: an id between two real ones, never given out: the same 412;
//! - Redis restart with its data: the first `post.create` on each instance afterwards succeeds
//!   in one request, and live subscribers connected throughout get every post once, in order.
//!
//! On a Redis Cluster (`redis+cluster://`, three masters with a replica each; see
//! `outer_redis::testing::RedisCluster`), one cluster at a time:
//! - resume, as above;
//! - failover: with live subscribers on A (oRPC) and B (tRPC), the master of the posts' stream
//!   is killed once the posts reached its replica, and the replica takes over: the posts made
//!   afterwards reach the subscribers, every post once, in order, with no 412, over the
//!   connections they had; a resume from an id made before the failover gets exactly the rest;
//! - lost history: the shard of the posts' stream loses master and replica, both come back
//!   without their data, then a new post: the same 412 as on one redis-server.
//!
//! Needs `redis-server` and `redis-cli`, Node.js 20+ and npm (the clients come from
//! `tests/interop`'s lockfile). No timing assertions: deadlines only turn a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

use outer_redis::testing::{RedisCluster, RedisServer};

#[path = "support/chat_process.rs"]
mod chat_process;
use chat_process::{interop_dir, ChatProcess};

/// How long one run of the script may take before it counts as hung (it has deadlines of its
/// own; this one is for a script stuck where it has none).
const SCRIPT_DEADLINE: Duration = Duration::from_secs(300);

/// The Redis key of the chat's posts: its topic `created` under the publisher's default prefix
/// `outer:` (`RedisPublisher::key`). The cluster actions check that it exists where they look.
const POSTS_KEY: &str = "outer:created";

/// One cluster at a time: six redis-server processes each, and failovers that wait on timeouts.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Where the chats keep their posts, and what the script may ask of it.
enum Redis {
    Server(RedisServer),
    /// A cluster whose other shards keep serving while one is down. Dropped before its turn
    /// (fields drop in order), so the next cluster starts after this one's processes are gone.
    Cluster {
        cluster: RedisCluster,
        _turn: MutexGuard<'static, ()>,
    },
}

impl Redis {
    fn server() -> Self {
        Self::Server(RedisServer::start().expect("start redis-server"))
    }

    fn cluster() -> Self {
        let turn = ONE_CLUSTER_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let cluster = RedisCluster::start_with_args(&["--cluster-require-full-coverage", "no"])
            .expect("start a Redis Cluster");
        Self::Cluster {
            cluster,
            _turn: turn,
        }
    }

    /// What `chat --redis` takes.
    fn url(&self) -> String {
        match self {
            Self::Server(server) => server.url(),
            Self::Cluster { cluster, .. } => cluster.cluster_url(),
        }
    }

    /// The script's arguments after the instances.
    fn script_args(&self) -> &'static [&'static str] {
        match self {
            Self::Server(_) => &[],
            Self::Cluster { .. } => &["--cluster"],
        }
    }

    /// Does what `need redis <action>` asks; what happened, for the output.
    fn perform(&mut self, action: &str) -> String {
        match (self, action) {
            (Self::Server(server), "restart") => {
                server
                    .restart()
                    .expect("restart redis-server with its data");
                "redis-server restarted with its data".into()
            }
            (Self::Server(server), "restart-empty") => {
                server.restart_empty().expect("restart redis-server empty");
                "redis-server restarted without its data".into()
            }
            (Self::Cluster { cluster, .. }, "failover") => {
                let master = posts_master(cluster);
                // Every post so far on the replica too: only then may a failover lose nothing.
                cluster
                    .wait_replicated(POSTS_KEY)
                    .expect("every post on the replica");
                let posts = cli(master, &["XLEN", POSTS_KEY]);
                let promoted = cluster
                    .kill_master_for_key(POSTS_KEY)
                    .expect("kill the posts' master and see its replica take over");
                assert_ne!(promoted, master, "the killed master still serves the posts");
                let kept = cli(promoted, &["XLEN", POSTS_KEY]);
                assert_eq!(kept, posts, "the promoted replica does not have every post");
                format!(
                    "master {master} of {POSTS_KEY} ({posts} entries) killed; \
                     replica {promoted} took over with all of them"
                )
            }
            (Self::Cluster { cluster, .. }, "lose-shard") => {
                posts_master(cluster);
                let (master, replica) = cluster
                    .kill_master_and_replica_for_key(POSTS_KEY)
                    .expect("kill the posts' shard");
                cluster
                    .restart_node_empty(master)
                    .expect("restart the posts' master empty");
                cluster
                    .restart_node_empty(replica)
                    .expect("restart the posts' replica empty");
                let master_now = cluster.master_for_key(POSTS_KEY).unwrap();
                let left = cli(master_now, &["EXISTS", POSTS_KEY]);
                assert_eq!(left, 0, "the shard came back with the posts");
                format!(
                    "master {master} and replica {replica} of {POSTS_KEY} killed \
                     and restarted without their data"
                )
            }
            (redis, action) => panic!(
                "the script asked for `{action}`, which {} cannot do",
                match redis {
                    Self::Server(_) => "one redis-server",
                    Self::Cluster { .. } => "the cluster",
                }
            ),
        }
    }
}

/// The port of the master that holds the posts, checking they are there (so a renamed key fails
/// here rather than leaving the test to kill the wrong shard).
fn posts_master(cluster: &RedisCluster) -> u16 {
    let master = cluster.master_for_key(POSTS_KEY).unwrap();
    let exists = cli(master, &["EXISTS", POSTS_KEY]);
    assert_eq!(exists, 1, "no {POSTS_KEY} on its master, port {master}");
    master
}

/// One command with an integer answer, run on the node on `port` with `redis-cli` (which the
/// cluster needs anyway; this crate does not depend on the `redis` crate that
/// `RedisCluster::query` takes commands of).
fn cli(port: u16, args: &[&str]) -> i64 {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "redis-cli -p {port} {args:?} answered {text:?} ({}; {})",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs `case` of `redis.mjs` against two `chat --redis` instances on `runtime` sharing `redis`,
/// doing what the script asks of Redis, and returns its output once it passed: every check, none
/// skipped.
fn run_case(case: &str, runtime: &str, mut redis: Redis) -> String {
    let url = redis.url();
    let chat = || ChatProcess::start(&["--runtime", runtime, "--redis", &url]);
    let (a, b) = (chat(), chat());

    let mut node = Command::new("node")
        .args(["redis.mjs", case, &a.url(), &b.url()])
        .args(redis.script_args())
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
        let action = action.split(' ').next().unwrap_or_default();
        let done = redis.perform(action);
        output.push_str(&format!("(redis: {done})\n"));
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

/// Runs `case` on one redis-server and prints its output (what the clients surfaced), for `--nocapture`.
fn passes(case: &str, runtime: &str) {
    let output = run_case(case, runtime, Redis::server());
    println!("node redis.mjs {case} on {runtime}:\n{output}");
}

/// [`passes`], with the chats on a Redis Cluster.
fn passes_on_a_cluster(case: &str, runtime: &str) {
    let output = run_case(case, runtime, Redis::cluster());
    println!("node redis.mjs {case} --cluster on {runtime}:\n{output}");
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

#[test]
fn clients_resume_on_another_instance_on_a_redis_cluster_on_tokio() {
    passes_on_a_cluster("resume", "tokio");
}

#[test]
fn clients_resume_on_another_instance_on_a_redis_cluster_on_smol() {
    passes_on_a_cluster("resume", "smol");
}

#[test]
fn after_a_failover_subscribers_and_resumes_get_every_post_once_in_order_on_tokio() {
    passes_on_a_cluster("failover", "tokio");
}

#[test]
fn after_a_failover_subscribers_and_resumes_get_every_post_once_in_order_on_smol() {
    passes_on_a_cluster("failover", "smol");
}

#[test]
fn an_id_from_before_the_shard_lost_its_data_ends_with_an_unknown_gap_on_tokio() {
    passes_on_a_cluster("lost-history", "tokio");
}

#[test]
fn an_id_from_before_the_shard_lost_its_data_ends_with_an_unknown_gap_on_smol() {
    passes_on_a_cluster("lost-history", "smol");
}
