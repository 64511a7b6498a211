//! The scenario on a Cortex-M3 under QEMU writes the very bytes it writes on the host.
//!
//! Builds `embedded/board` for `thumbv7m-none-eabi` with Debian's Rust (the rustup toolchain
//! here has no rust-src and cannot download targets), runs its `scenario` ELF on QEMU's
//! `lm3s6965evb`, and compares the semihosted output with `run()` on the host. Without that
//! toolchain or QEMU the test fails and names the Debian packages: it never passes by skipping.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The Debian packages the test needs (`rust-lld` is a link to `lld-22`'s linker).
const PACKAGES: &str = "rustc-web cargo-web rust-web-src lld-22 qemu-system-arm";

/// Debian's toolchain, as DESIGN.md's "Proving no_std" uses it.
const RUSTC: &str = "/usr/bin/rustc";
const CARGO: &str = "/usr/bin/cargo";
const TARGET: &str = "thumbv7m-none-eabi";

/// How long one QEMU run may take before it is killed: the scenario takes well under a second.
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The board's build directory, under the workspace's `target/`.
fn target_dir() -> PathBuf {
    workspace_root().join("target/embedded")
}

/// Fails, naming the packages, unless the cross toolchain and QEMU are installed.
fn require_tools() {
    let mut missing = Vec::new();
    if !Path::new(RUSTC).exists() {
        missing.push(format!("{RUSTC} (rustc-web)"));
    }
    if !Path::new(CARGO).exists() {
        missing.push(format!("{CARGO} (cargo-web)"));
    }
    let sysroot = Command::new(RUSTC)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let src = sysroot.map(|root| root.join("lib/rustlib/src/rust/library/core/Cargo.toml"));
    if !src.as_deref().is_some_and(Path::exists) {
        missing.push("the standard library's source for -Zbuild-std (rust-web-src)".into());
    }
    // `exists` follows the link: Debian's rust-lld points at lld-22's binary.
    if !Path::new("/usr/bin/rust-lld").exists() {
        missing.push("/usr/bin/rust-lld, the linker (lld-22; rust-web-llvm has the link)".into());
    }
    if Command::new("qemu-system-arm")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        missing.push("qemu-system-arm".into());
    }
    assert!(
        missing.is_empty(),
        "the QEMU test needs Debian's {PACKAGES}: `apt-get install {PACKAGES}`. Missing: {}",
        missing.join(", ")
    );
}

/// Builds the board's binaries once per test run; the path of their directory.
fn board_binaries() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        require_tools();
        let board = workspace_root().join("embedded/board");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![PathBuf::from("/usr/bin")];
        paths.extend(std::env::split_paths(&path));
        let mut build = Command::new(CARGO);
        build
            .current_dir(&board)
            .args(["build", "--release", "--bins", "-Zbuild-std=core,alloc"])
            .args(["--target", TARGET])
            .env(
                "PATH",
                std::env::join_paths(paths).expect("PATH joins back"),
            )
            .env("RUSTC", RUSTC)
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_TARGET_DIR", target_dir());
        // The caller's flags are for the host: they would replace the board's own
        // (`-Tlink.x` in embedded/board/.cargo/config.toml), and a wrapper may not know the
        // target. The rustup proxy's variables mean nothing to Debian's cargo.
        for var in [
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "RUSTC_WRAPPER",
            "RUSTC_WORKSPACE_WRAPPER",
            "RUSTDOC",
            "RUSTUP_TOOLCHAIN",
            "CARGO_BUILD_TARGET",
        ] {
            build.env_remove(var);
        }
        let out = build.output().expect("Debian's cargo runs");
        assert!(
            out.status.success(),
            "building embedded/board for {TARGET} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target_dir().join(TARGET).join("release")
    })
}

/// What a QEMU run wrote to stdout and stderr, and whether it exited with 0.
struct Run {
    stdout: Vec<u8>,
    stderr: String,
    success: bool,
}

/// Runs `elf` on QEMU's Cortex-M3 board with semihosting; kills it after [`QEMU_TIMEOUT`].
fn qemu(elf: &Path) -> Run {
    let mut child = Command::new("qemu-system-arm")
        .args(["-cpu", "cortex-m3", "-machine", "lm3s6965evb", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-arm starts");
    // Read on threads, so a full pipe never stalls QEMU while we wait for it.
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        stdout.read_to_end(&mut bytes).map(|_| bytes)
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).map(|_| text)
    });
    let deadline = Instant::now() + QEMU_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting on QEMU") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.join().ok().and_then(Result::ok).unwrap_or_default();
            panic!(
                "{} still ran after {QEMU_TIMEOUT:?} and was killed. Its stderr:\n{stderr}",
                elf.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        stdout: out.join().expect("reader").expect("QEMU's stdout reads"),
        stderr: err.join().expect("reader").expect("QEMU's stderr reads"),
        success: status.success(),
    }
}

/// The first line where `board` and `host` differ, with a few lines around it.
fn diff(host: &str, board: &str) -> String {
    let (h, b): (Vec<&str>, Vec<&str>) = (host.lines().collect(), board.lines().collect());
    let first = (0..h.len().max(b.len()))
        .find(|&i| h.get(i) != b.get(i))
        .unwrap_or(0);
    let mut out = format!("first difference at line {}:\n", first + 1);
    for i in first.saturating_sub(3)..(first + 4) {
        let (hl, bl) = (h.get(i), b.get(i));
        if hl.is_none() && bl.is_none() {
            break;
        }
        let mark = if hl == bl { ' ' } else { '!' };
        out += &format!(
            "{mark} {:>4} host : {hl:?}\n{mark} {:>4} board: {bl:?}\n",
            i + 1,
            i + 1
        );
    }
    out
}

#[test]
fn the_board_under_qemu_writes_the_same_scenario_bytes_as_the_host() {
    let mut host = Vec::new();
    outer_embedded_scenario::run(&mut host);

    let run = qemu(&board_binaries().join("scenario"));
    assert!(
        run.success,
        "the board's scenario failed. Its stderr:\n{}",
        run.stderr
    );
    let (host_text, board_text) = (
        String::from_utf8_lossy(&host),
        String::from_utf8_lossy(&run.stdout),
    );
    assert!(
        host == run.stdout,
        "the board's bytes differ from the host's; {}\n--- host ---\n{host_text}\n--- board ---\n{board_text}",
        diff(&host_text, &board_text)
    );

    // Not trivially equal: both wrote the whole scenario, both framings, live and resumed.
    for expected in [
        "== orpc live: 200 text/event-stream\n",
        "== trpc resume after 2: 200 text/event-stream\n",
        "event: message\nid: 3\ndata: {\"json\":{\"sensor\":0,\"millicelsius\":21375}}\n\n",
        "data: {\"sensor\":0,\"millicelsius\":21750}\nid: 6\n\n\n",
        "event: done\n",
        "event: return\n",
    ] {
        assert!(
            board_text.contains(expected),
            "{expected:?} missing from:\n{board_text}"
        );
    }
    assert_eq!(board_text.matches("id: ").count(), 12, "{board_text}");
}

#[test]
fn the_board_measures_its_footprint_with_100_subscribers_inside_its_heap() {
    let run = qemu(&board_binaries().join("footprint"));
    assert!(
        run.success,
        "the board's footprint failed. Its stderr:\n{}",
        run.stderr
    );
    let text = String::from_utf8_lossy(&run.stdout);
    let figure = |name: &str| -> usize {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no figure {name} in:\n{text}"))
    };
    let (one, hundred) = (figure("subscribers_1_peak"), figure("subscribers_100_peak"));
    assert!(0 < one && one < hundred, "{text}");
    assert!(figure("per_retained_event") > 0, "{text}");
    assert!(figure("run_peak") < figure("heap_size"), "{text}");
}
