//! The Node reference server (`shared/reference/orpc/server.mjs`, the real `@orpc/server`) as a
//! child process on a loopback port, so that the Rust client is tested against oRPC itself.
//!
//! The reference folder lies outside this repository: `shared/` beside the checkout (here
//! `../shared` from the workspace root), or wherever `OUTER_REFERENCE_ORPC` points. It is read
//! only, so the server runs from a copy in `target/reference-orpc`, whose packages `npm ci`
//! installs from the reference's lockfile (CI does this up front in `.ci/run`; a test does it
//! itself when they are missing or stale). Node and npm must be installed: without them these
//! tests fail with a message saying so, they never pass by skipping.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the server may take to install and start.
const STARTUP: Duration = Duration::from_secs(60);

/// A running reference server; dropping it stops the process.
#[derive(Debug)]
pub struct ReferenceServer {
    child: Child,
    addr: SocketAddr,
}

/// The reference server's folder.
pub fn reference_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("OUTER_REFERENCE_ORPC") {
        return PathBuf::from(dir);
    }
    // harness/ -> the workspace -> the folder the checkout sits in, where shared/ lives too.
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    let beside = harness.parent().and_then(Path::parent).unwrap_or(harness);
    beside.join("shared/reference/orpc")
}

/// The writable copy the server runs from: `target/reference-orpc` in the workspace.
pub fn install_dir() -> PathBuf {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness
        .parent()
        .unwrap_or(harness)
        .join("target/reference-orpc")
}

/// Copies the reference server into [`install_dir`] and runs `npm ci` there, once per test
/// run, unless the packages installed from the same lockfile are there already.
fn install() -> PathBuf {
    static DONE: Mutex<bool> = Mutex::new(false);
    let from = reference_dir();
    let to = install_dir();
    let mut done = DONE.lock().unwrap_or_else(PoisonError::into_inner);
    if *done {
        return to;
    }
    let read = |name: &str| {
        let path = from.join(name);
        std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "the oRPC reference server is not at {} ({err}; set OUTER_REFERENCE_ORPC to its folder)",
                path.display()
            )
        })
    };
    let lock = read("package-lock.json");
    std::fs::create_dir_all(&to).expect("create target/reference-orpc");
    let installed = to.join("node_modules/@orpc/server/package.json").exists()
        && std::fs::read(to.join("package-lock.json")).is_ok_and(|old| old == lock);
    for name in ["server.mjs", "package.json", "package-lock.json"] {
        let (bytes, copy) = (read(name), to.join(name));
        if std::fs::read(&copy).is_ok_and(|old| old == bytes) {
            continue;
        }
        // A copy made by `cp` keeps the reference's read-only mode: replace it, don't write it.
        let _ = std::fs::remove_file(&copy);
        std::fs::write(&copy, bytes)
            .unwrap_or_else(|err| panic!("copy {name} to {}: {err}", to.display()));
    }
    if !installed {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&to)
            .status()
            .expect("npm is needed for the reference-server tests (install Node.js 20+)");
        assert!(status.success(), "npm ci failed in {}", to.display());
    }
    *done = true;
    to
}

impl ReferenceServer {
    /// Installs (once) and starts the reference server on a free loopback port, and returns
    /// once it accepts connections.
    pub fn start() -> Self {
        let dir = install();
        // Asks the OS for a free port, then hands it to the server: a small race with other
        // processes taking it in between, which the startup check would report.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new("node")
            .arg("server.mjs")
            .env("PORT", port.to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("node is needed for the reference-server tests (install Node.js 20+)");
        let mut server = Self { child, addr };
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the reference server exited with {status} before it listened on {addr}");
            }
            assert!(
                start.elapsed() < STARTUP,
                "the reference server did not listen on {addr} within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
