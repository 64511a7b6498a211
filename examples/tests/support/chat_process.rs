//! The chat example as a child process, for the tests that probe it from outside. A test file
//! includes it with `#[path = "support/chat_process.rs"] mod chat_process;`.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use outer_harness::loopback::post;
use serde_json::{json, Value};

/// How long anything may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A running `chat` process on a free loopback port. Dropping it kills it.
pub struct ChatProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ChatProcess {
    /// Starts `chat --listen 127.0.0.1:0` with `args`, and returns once it listens.
    pub fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the chat example");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split(' ').next())
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("chat did not start: {line:?}"));
        Self { child, addr }
    }

    /// `http://ADDR`: where the real clients find it (oRPC under `/rpc`, tRPC under `/trpc`).
    #[allow(dead_code)] // only the tests that run the npm clients need it
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `post.create` over tRPC, retried while it answers 503 (a Redis away); the new post.
    #[allow(dead_code)] // not every test file creates posts from Rust
    pub fn create(&self, title: &str) -> Value {
        let start = Instant::now();
        loop {
            let body = json!({ "title": title }).to_string();
            let response = post(self.addr, "/trpc/post.create", &body);
            let status = response.status;
            let answer = response.json();
            match status {
                200 => return answer["result"]["data"].clone(),
                503 if start.elapsed() < DEADLINE => std::thread::sleep(Duration::from_millis(20)),
                _ => panic!("post.create answered {status}: {answer}"),
            }
        }
    }

    /// Kills it at once (SIGKILL), as a crash does: its clients' connections are cut.
    #[allow(dead_code)] // not every test file kills
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the process to exit; whether it exited successfully.
    #[allow(dead_code)] // not every test file terminates
    pub fn terminate(mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(start.elapsed() < DEADLINE, "still running after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChatProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tests/interop`, where the real npm clients' scripts are, with its packages installed from
/// the lockfile (`npm ci`, once per test run, when `node_modules` is missing). Node and npm must
/// be installed: without them the tests that need them fail (they cannot pass by skipping).
/// A copy of `outer_tests::npm_ci`: `outer-tests` depends on this crate, so depending on it
/// here would make a cycle.
#[allow(dead_code)] // only the tests that run the npm clients need it
pub fn interop_dir() -> PathBuf {
    static DONE: Mutex<bool> = Mutex::new(false);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !*done && !dir.join("node_modules/.package-lock.json").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to run the npm clients (install Node.js 20+)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    *done = true;
    dir
}
