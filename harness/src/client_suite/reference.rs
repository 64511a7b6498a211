//! The Node reference servers, the real `@orpc/server` 1.x and 2.x, as child processes on
//! loopback ports, so that the Rust client is tested against oRPC itself in both versions.
//!
//! Version 1 (`shared/reference/orpc/server.mjs`) lies outside this repository: `shared/`
//! beside the checkout (here `../shared` from the workspace root), or wherever
//! `OUTER_REFERENCE_ORPC` points. Version 2 is in it, `tests/reference/orpc-v2` (or wherever
//! `OUTER_REFERENCE_ORPC_V2` points): the same procedures plus `finite` (a stream that returns
//! `undefined`) and `nothing` (a call that returns `undefined`). Both listen on `PORT` under
//! `/rpc`. Each runs from a copy in `target/reference-orpc` or `target/reference-orpc-v2` (the
//! reference folder may be read only), whose packages `npm ci` installs from the reference's
//! lockfile (CI does this up front in `scripts/test.sh`; a test does it itself when they are
//! missing or stale). Node and npm must be installed: without them these tests fail with a
//! message saying so, they never pass by skipping.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use outer_core::protocol::orpc::OrpcVersion;

/// How long the server may take to install and start.
const STARTUP: Duration = Duration::from_secs(60);

/// A running reference server; dropping it stops the process.
#[derive(Debug)]
pub struct ReferenceServer {
    child: Child,
    addr: SocketAddr,
    version: OrpcVersion,
}

/// The workspace's root.
fn workspace() -> &'static Path {
    let harness = Path::new(env!("CARGO_MANIFEST_DIR"));
    harness.parent().unwrap_or(harness)
}

/// The variable that points at a version's reference folder.
fn variable(version: OrpcVersion) -> &'static str {
    match version {
        OrpcVersion::V1 => "OUTER_REFERENCE_ORPC",
        OrpcVersion::V2 => "OUTER_REFERENCE_ORPC_V2",
    }
}

/// The reference server's folder for `version`.
pub fn reference_dir(version: OrpcVersion) -> PathBuf {
    if let Some(dir) = std::env::var_os(variable(version)) {
        return PathBuf::from(dir);
    }
    match version {
        // The folder the checkout sits in, where shared/ lives too.
        OrpcVersion::V1 => workspace()
            .parent()
            .unwrap_or(workspace())
            .join("shared/reference/orpc"),
        OrpcVersion::V2 => workspace().join("tests/reference/orpc-v2"),
    }
}

/// The writable copy the server of `version` runs from: `target/reference-orpc` or
/// `target/reference-orpc-v2` in the workspace.
pub fn install_dir(version: OrpcVersion) -> PathBuf {
    workspace().join(match version {
        OrpcVersion::V1 => "target/reference-orpc",
        OrpcVersion::V2 => "target/reference-orpc-v2",
    })
}

/// Copies the reference server of `version` into [`install_dir`] and runs `npm ci` there, once
/// per test run, unless the packages installed from the same lockfile are there already.
fn install(version: OrpcVersion) -> PathBuf {
    static DONE: Mutex<[bool; 2]> = Mutex::new([false; 2]);
    let from = reference_dir(version);
    let to = install_dir(version);
    let mut done = DONE.lock().unwrap_or_else(PoisonError::into_inner);
    let done = &mut done[usize::from(version == OrpcVersion::V2)];
    if *done {
        return to;
    }
    let read = |name: &str| {
        let path = from.join(name);
        std::fs::read(&path).unwrap_or_else(|err| {
            panic!(
                "the oRPC reference server ({version:?}) is not at {} ({err}; set {} to its folder)",
                path.display(),
                variable(version),
            )
        })
    };
    let lock = read("package-lock.json");
    std::fs::create_dir_all(&to).unwrap_or_else(|err| panic!("create {}: {err}", to.display()));
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
    /// Installs (once) and starts the reference server of `version` on a free loopback port,
    /// and returns once it accepts connections. Its procedures are under `/rpc`.
    pub fn start(version: OrpcVersion) -> Self {
        let dir = install(version);
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
        let mut server = Self {
            child,
            addr,
            version,
        };
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

    /// The version of oRPC it speaks.
    pub fn version(&self) -> OrpcVersion {
        self.version
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
