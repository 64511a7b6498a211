//! The chat over TLS and HTTP/2 with real clients, on tokio and on smol, with a certificate
//! authority and server certificate made for each test (`outer_tests::Certificates`).
//!
//! - Chromium (tests/interop/browser-h2.mjs): over TLS the page speaks HTTP/2 (ALPN), holds 20
//!   EventSources on `/trpc/post.live` open at once on one connection, and every one of them
//!   receives a post made afterwards; the same page over cleartext HTTP/1.1 gets only six.
//! - curl: `--http2` over TLS (ALPN `h2`) and `--http2-prior-knowledge` on cleartext make a
//!   unary oRPC call, read oRPC and tRPC event streams and a live post, all over HTTP/2 and
//!   byte for byte as over HTTP/1.1; `--http1.1` over TLS still gets HTTP/1.1, and `--http2` on
//!   cleartext (an `Upgrade: h2c` request, which the server does not take up) a correct
//!   HTTP/1.1 answer.
//! - Sockets that never finish a handshake: a client that connects and sends nothing, or half a
//!   record, is closed after the header read timeout while others are served meanwhile; one
//!   that sends something other than a ClientHello is closed at once, and the server goes on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outer_harness::conformance::RunningServer;
use outer_http::tls::rustls;
use outer_http::Pages;
use outer_smol::testing::Smol;
use outer_tests::{chat_stack, npm_ci, Certificates, TlsAdapter};
use outer_tokio::testing::Tokio;

/// An empty page in the chat's origin, for a script that opens its own streams.
fn empty_page() -> Pages {
    Pages::new().page(
        "/empty",
        "text/html; charset=utf-8",
        "<!doctype html><title>streams</title>",
    )
}

fn many_event_sources_share_one_http2_connection<R: TlsAdapter>() {
    let dir = npm_ci();
    let certificates = Certificates::generate();
    let config = outer_examples::chat::server_config();
    let tls = certificates.server(&config);
    let mut secure = R::start_tls(chat_stack::<R>(config.clone()).layer(empty_page()), tls);
    let mut plain = R::start(chat_stack::<R>(config).layer(empty_page()));
    let output = Command::new("node")
        .arg("browser-h2.mjs")
        .arg(format!("https://127.0.0.1:{}/empty", secure.addr().port()))
        .arg(&certificates.cert)
        .arg(format!("http://{}/empty", plain.addr()))
        .current_dir(&dir)
        .output()
        .expect("node is needed for the browser test (install Node.js 20+)");
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "browser-h2.mjs failed:\n{transcript}"
    );
    println!("{transcript}"); // shown with --nocapture
    for check in [
        "20 EventSources on /trpc/post.live are connected at once",
        "reaches every one of the 20 EventSources",
        "share one HTTP/2 connection",
        "the contrast: over cleartext HTTP/1.1 the same page gets only 6",
        "browser-h2: all checks passed",
    ] {
        assert!(transcript.contains(check), "no `{check}` in:\n{transcript}");
    }
    assert!(secure.shutdown());
    assert!(plain.shutdown());
}

#[test]
fn twenty_event_sources_on_one_page_over_tls_and_http2_each_get_the_post_on_tokio() {
    many_event_sources_share_one_http2_connection::<Tokio>();
}

#[test]
fn twenty_event_sources_on_one_page_over_tls_and_http2_each_get_the_post_on_smol() {
    many_event_sources_share_one_http2_connection::<Smol>();
}

/// What curl got: the HTTP version it spoke (`%{http_version}`: `1.1`, `2`), the status, the
/// body, and what it printed on stderr.
#[derive(Debug)]
struct Answer {
    version: String,
    status: u16,
    body: String,
    stderr: String,
}

/// Runs the `curl` binary with `args` (ahead of which go `-sS`, a time limit and the `-w` that
/// reports the version and status on stderr's last line).
fn curl(args: &[&str]) -> Answer {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "%{stderr}\n%{http_version} %{response_code}",
        ])
        .args(args)
        .output()
        .expect(NO_CURL);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "curl {args:?} failed: {stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    let (version, status) = last.split_once(' ').expect("the -w line");
    Answer {
        version: version.to_string(),
        status: status.parse().expect("a status"),
        body: String::from_utf8(output.stdout).unwrap(),
        stderr,
    }
}

const NO_CURL: &str = "the curl binary is needed for this test (Debian: apt-get install curl)";

/// Fails unless the `curl` binary is there and speaks HTTP/2 (Debian's does, with nghttp2).
fn curl_with_http2() {
    let version = Command::new("curl")
        .arg("--version")
        .output()
        .expect(NO_CURL);
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version
            .lines()
            .any(|l| l.starts_with("Features:") && l.contains("HTTP2")),
        "this curl cannot speak HTTP/2 (built without nghttp2):\n{version}"
    );
}

/// oRPC's `{"json": …}` request body for `input`, as curl flags.
fn orpc_input(input: &str) -> [String; 4] {
    [
        "-H".into(),
        "content-type: application/json".into(),
        "--data".into(),
        format!(r#"{{"json":{input}}}"#),
    ]
}

/// How curl reaches a server: the base URL (`https://127.0.0.1:PORT`) and its flags.
struct Way {
    name: &'static str,
    base: String,
    flags: Vec<String>,
    /// The HTTP version curl must end up speaking.
    version: &'static str,
}

impl Way {
    fn call(&self, path: &str, args: &[String]) -> Answer {
        let url = format!("{}{path}", self.base);
        let all: Vec<&str> = (self.flags.iter().chain(args).map(String::as_str))
            .chain([url.as_str()])
            .collect();
        let answer = curl(&all);
        assert_eq!(
            answer.version, self.version,
            "{}: {path} spoke HTTP/{}: {}",
            self.name, answer.version, answer.stderr
        );
        assert_eq!(answer.status, 200, "{}: {path}: {answer:?}", self.name);
        answer
    }

    /// A unary oRPC call, oRPC's and tRPC's finite event streams (`counter`, read with `-N`),
    /// and a tRPC query: their bodies, to compare between ways.
    fn calls(&self) -> Vec<String> {
        let counter = r#"{"from":1,"to":3,"delayMs":10}"#;
        let unbuffered = |args: [String; 4]| [&["-N".to_string()][..], &args].concat();
        vec![
            self.call("/rpc/ping", &orpc_input(r#"{"n":1}"#)).body,
            self.call("/rpc/counter", &unbuffered(orpc_input(counter)))
                .body,
            self.call(
                "/trpc/counter?input=%7B%22from%22%3A1%2C%22to%22%3A3%2C%22delayMs%22%3A10%7D",
                &["-N".to_string()],
            )
            .body,
            self.call("/trpc/ping?input=%7B%22n%22%3A1%7D", &[]).body,
        ]
    }

    /// `curl -N -i` on `/trpc/post.live` (its status line says the version at once), a post
    /// made through this way too, and the post arriving on the stream.
    fn live_post(&self, title: &str) {
        let url = format!("{}/trpc/post.live", self.base);
        let mut stream = Command::new("curl")
            .args(["-sS", "-N", "-i", "--max-time", "10"])
            .args(&self.flags)
            .arg(&url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect(NO_CURL);
        let mut lines = BufReader::new(stream.stdout.take().unwrap()).lines();
        let mut next = |what: &str| {
            lines
                .next()
                .unwrap_or_else(|| panic!("{}: the stream ended before {what}", self.name))
                .unwrap()
        };
        let status = next("the status line");
        let expected = match self.version {
            "2" => "HTTP/2 200",
            _ => "HTTP/1.1 200 OK",
        };
        assert_eq!(status.trim_end(), expected, "{}", self.name);
        while next("tRPC's connected event") != "event: connected" {}
        while !next("the end of the connected event").is_empty() {}
        let made = self.call(
            "/rpc/post/create",
            &orpc_input(&format!(r#"{{"title":"{title}"}}"#)),
        );
        assert!(made.body.contains(title), "{}: {made:?}", self.name);
        loop {
            let line = next("the post");
            if line.starts_with("data:") {
                assert!(line.contains(title), "{}: not the post: {line}", self.name);
                break;
            }
        }
        let _ = stream.kill();
        let _ = stream.wait();
    }
}

fn curl_speaks_http2_with_alpn_and_prior_knowledge<R: TlsAdapter>() {
    curl_with_http2();
    let certificates = Certificates::generate();
    let config = outer_examples::chat::server_config();
    let mut secure = outer_tests::start_chat_tls::<R>(config.clone(), &certificates);
    let mut plain = outer_tests::start_chat::<R>(config);
    let ca = certificates.ca.to_str().unwrap().to_string();
    let https = format!("https://127.0.0.1:{}", secure.addr().port());
    let http = format!("http://{}", plain.addr());
    let way = |name, base: &String, flags: &[&str], version| Way {
        name,
        base: base.clone(),
        flags: flags.iter().map(|f| f.to_string()).collect(),
        version,
    };
    let baseline = way("cleartext HTTP/1.1", &http, &["--http1.1"], "1.1");
    let ways = [
        way(
            "--http2 over TLS (ALPN h2)",
            &https,
            &["--http2", "--cacert", &ca],
            "2",
        ),
        way(
            "--http2-prior-knowledge",
            &http,
            &["--http2-prior-knowledge"],
            "2",
        ),
        way(
            "--http1.1 over TLS",
            &https,
            &["--http1.1", "--cacert", &ca],
            "1.1",
        ),
        // curl asks to upgrade to h2c (`Upgrade: h2c`); the server answers in HTTP/1.1.
        way(
            "--http2 on cleartext (h2c upgrade)",
            &http,
            &["--http2", "-v"],
            "1.1",
        ),
    ];
    let expected = baseline.calls();
    assert_eq!(expected[0], r#"{"json":{"n":1}}"#);
    assert!(expected[1].contains("event: done"), "{}", expected[1]);
    assert!(expected[2].contains("event: return"), "{}", expected[2]);
    for way in &ways {
        assert_eq!(
            way.calls(),
            expected,
            "{}: other bytes than over HTTP/1.1",
            way.name
        );
        way.live_post(&format!("live, {}", way.name));
    }
    // The upgrade was asked for, on a GET and on a POST with a body, and not taken up.
    for upgrade in [
        ways[3].call("/trpc/ping?input=%7B%22n%22%3A1%7D", &[]),
        ways[3].call("/rpc/ping", &orpc_input(r#"{"n":1}"#)),
    ] {
        assert!(
            upgrade.stderr.contains("Upgrade: h2c"),
            "{}",
            upgrade.stderr
        );
        assert!(
            upgrade.stderr.contains("< HTTP/1.1 200 OK"),
            "{}",
            upgrade.stderr
        );
    }
    for server in [&mut secure as &mut dyn RunningServer, &mut plain] {
        // The killed curls' streams end as the server notices them gone.
        let deadline = Instant::now() + Duration::from_secs(3);
        while server.active_streams() > 0 {
            assert!(Instant::now() < deadline, "a stream was not cleaned up");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(server.shutdown());
    }
}

#[test]
fn curl_speaks_http2_over_tls_and_with_prior_knowledge_and_gets_the_same_bytes_on_tokio() {
    curl_speaks_http2_with_alpn_and_prior_knowledge::<Tokio>();
}

#[test]
fn curl_speaks_http2_over_tls_and_with_prior_knowledge_and_gets_the_same_bytes_on_smol() {
    curl_speaks_http2_with_alpn_and_prior_knowledge::<Smol>();
}

/// One HTTPS request on a connection of its own (HTTP/1.1, `Connection: close`): oRPC's `ping`.
/// Gives back the whole answer.
fn ping_over_tls(addr: SocketAddr, certificates: &Certificates) -> String {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = rustls::ClientConnection::new(certificates.client(&[b"http/1.1"]), name).unwrap();
    let socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut stream = rustls::StreamOwned::new(tls, socket);
    let body = r#"{"json":{"n":1}}"#;
    write!(
        stream,
        "POST /rpc/ping HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    String::from_utf8(answer).unwrap()
}

/// Reads `socket` until the server closes it (end of stream, or a reset), and gives back what
/// came and when it closed. Fails if it stays open `limit` long.
fn until_closed(mut socket: &TcpStream, limit: Duration) -> (Vec<u8>, Instant) {
    socket.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match socket.read(&mut buf) {
            Ok(0) => return (got, Instant::now()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                return (got, Instant::now())
            }
            Err(err) => panic!("the server kept the socket open ({err}); it sent {got:?}"),
        }
    }
}

fn stalled_or_garbled_handshakes_are_closed<R: TlsAdapter>() {
    const TIMEOUT: Duration = Duration::from_millis(1000);
    let certificates = Certificates::generate();
    let mut config = outer_examples::chat::server_config();
    config.header_read_timeout = Some(TIMEOUT);
    let mut server = outer_tests::start_chat_tls::<R>(config, &certificates);
    let addr = server.addr();
    let served = |what: &str| {
        let answer = ping_over_tls(addr, &certificates);
        assert!(
            answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with(r#"{"json":{"n":1}}"#),
            "{what}: {answer}"
        );
    };

    // One client connects and says nothing; another sends the first five bytes of a handshake
    // record (its header, announcing 512 bytes) and stalls; a third completes the handshake
    // (ALPN: h2) and then sends nothing, not even HTTP/2's preface.
    let start = Instant::now();
    let silent = TcpStream::connect(addr).unwrap();
    let mut half = TcpStream::connect(addr).unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let mut handshaken = TcpStream::connect(addr).unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = rustls::ClientConnection::new(certificates.client(&[b"h2"]), name).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut handshaken).unwrap();
    }
    assert_eq!(tls.alpn_protocol(), Some(&b"h2"[..]), "ALPN chose HTTP/2");
    // Meanwhile others are served, while the three are still open.
    for _ in 0..3 {
        served("while three connections stall");
    }
    for socket in [&silent, &half] {
        socket.set_nonblocking(true).unwrap();
        let still_open = socket.peek(&mut [0u8; 1]).map_err(|err| err.kind());
        assert_eq!(
            still_open,
            Err(std::io::ErrorKind::WouldBlock),
            "closed too soon"
        );
        socket.set_nonblocking(false).unwrap();
    }
    // The handshaken one may have been sent session tickets: read those, then nothing more.
    handshaken.set_nonblocking(true).unwrap();
    loop {
        match tls.read_tls(&mut handshaken) {
            Ok(0) => panic!("the handshaken connection was closed too soon"),
            Ok(_) => drop(tls.process_new_packets().unwrap()),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) => panic!("the handshaken connection failed: {err}"),
        }
    }
    handshaken.set_nonblocking(false).unwrap();
    for (what, socket) in [
        ("silent", &silent),
        ("half a record", &half),
        ("handshaken", &handshaken),
    ] {
        let (got, closed) = until_closed(socket, TIMEOUT * 5);
        let after = closed - start;
        assert!(
            after >= TIMEOUT - Duration::from_millis(50) && after < TIMEOUT * 3,
            "{what}: closed after {after:?}, the timeout is {TIMEOUT:?}"
        );
        // Before the handshake, nothing but perhaps a TLS alert record (content type 21).
        if what != "handshaken" {
            assert!(got.is_empty() || got[0] == 0x15, "{what}: got {got:?}");
        }
    }

    // Bytes that are no ClientHello: plain HTTP on the TLS port, and zeros. Each is closed at
    // once (not at the timeout), with at most an alert, and the server goes on serving.
    let garbage: [&[u8]; 2] = [b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n", &[0u8; 4096]];
    for bytes in garbage {
        let start = Instant::now();
        let mut socket = TcpStream::connect(addr).unwrap();
        let _ = socket.write_all(bytes); // the server may close before it has read all
        let (got, closed) = until_closed(&socket, TIMEOUT * 5);
        assert!(
            closed - start < TIMEOUT,
            "closed after {:?}, not before the timeout",
            closed - start
        );
        assert!(
            got.is_empty() || got[0] == 0x15,
            "got {:?}",
            String::from_utf8_lossy(&got)
        );
        served("after a garbled handshake");
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.open_connections() > 0 {
        assert!(
            Instant::now() < deadline,
            "{} connections left open",
            server.open_connections()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.shutdown());
}

#[test]
fn stalled_or_garbled_tls_handshakes_are_closed_and_others_served_on_tokio() {
    stalled_or_garbled_handshakes_are_closed::<Tokio>();
}

#[test]
fn stalled_or_garbled_tls_handshakes_are_closed_and_others_served_on_smol() {
    stalled_or_garbled_handshakes_are_closed::<Smol>();
}
