//! End-to-end tests across the Outer crates: the chat example served on each runtime, driven by
//! the real npm clients (`tests/interop`) and compared byte for byte with the reference
//! servers' captures (`tests/fixtures/reference`). This file holds what the tests share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use outer_examples::chat::{self, Chat};
use outer_harness::conformance::Adapter;
use outer_http::{OuterService, ServerConfig};

/// The workspace's root folder.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// Serves the chat example on runtime `R` with `config`, on a fresh loopback port, with its
/// pages and the failure-test hooks (`/__test`).
pub fn start_chat<R: Adapter>(config: ServerConfig) -> R::Server {
    let app = chat::app(Chat::new(), R::timer());
    R::start(chat::stack(
        OuterService::new(app, config, R::timer()),
        true,
    ))
}

/// Installs the interop scripts' npm packages from their lockfile, once per test run. Node and
/// npm must be installed: without them these tests fail (they cannot pass by skipping).
pub fn npm_ci() -> PathBuf {
    static DONE: Mutex<bool> = Mutex::new(false);
    let dir = workspace().join("tests/interop");
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !*done && !installed(&dir) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed for the interop tests (install Node.js 20+)");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    *done = true;
    dir
}

/// Whether `dir/node_modules` holds every package of `dir/package-lock.json`: a checkout that ran
/// `npm ci` before a package was added to the lockfile (`ws`, for the WebSocket scripts) must
/// install again, not fail with a missing module.
fn installed(dir: &Path) -> bool {
    if !dir.join("node_modules/.package-lock.json").exists() {
        return false;
    }
    let Ok(lock) = std::fs::read(dir.join("package-lock.json")) else {
        return false;
    };
    let Ok(lock) = serde_json::from_slice::<serde_json::Value>(&lock) else {
        return false;
    };
    let Some(packages) = lock.get("packages").and_then(serde_json::Value::as_object) else {
        return false;
    };
    packages
        .iter()
        .filter(|(path, entry)| {
            // Optional packages for another platform are in the lockfile but not installed.
            path.starts_with("node_modules/")
                && entry.get("optional").and_then(serde_json::Value::as_bool) != Some(true)
        })
        .all(|(path, _)| dir.join(path).join("package.json").exists())
}

/// Runs `node <script> <base>` in tests/interop with `env`, and fails the test with the
/// script's output if it fails.
pub fn run_node(script: &str, base: &str, env: &[(&str, String)]) -> String {
    let dir = npm_ci();
    let output = Command::new("node")
        .arg(script)
        .arg(base)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(&dir)
        .output()
        .expect("node is needed for the interop tests (install Node.js 20+)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "node {script} {base} failed:\n{text}"
    );
    text
}
