//! The suite's scenarios over HTTP/2 (prior knowledge, cleartext): the same answers as over
//! HTTP/1.1, many event streams on one connection, what resetting one stream does, the limits
//! per stream and per connection, keep-alive, deadlines, graceful shutdown and a reader that
//! stops, on the adapter's server, with the blocking client of [`crate::http2`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(missing_docs)] // each scenario's name is its documentation

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use outer_http::{OuterService, ServerConfig};

use super::{interruption, quiet_config, router, start, Adapter, Probe, RunningServer};
use crate::http2::{kind, End, Frame, FrameReader, H2Client, H2Response, Reason, PREFACE};
use crate::loopback::{self, closed_by_server, open, post, send, wait_until, DEADLINE};

/// What `gated` streams over oRPC, whole, as HTTP/1.1 gives it too.
const GATED: &str = ": \n\n\
    event: message\nid: 1\ndata: {\"json\":{\"n\":1}}\n\n\
    event: message\nid: 2\ndata: {\"json\":{\"n\":2}}\n\n\
    event: done\ndata: {\"json\":\"end\"}\n\n";

fn cleaned_up(probe: &Probe, n: usize) {
    wait_until("the handlers' cleanup", || {
        probe.cleanups.load(Ordering::SeqCst) >= n
    });
}

fn started(probe: &Probe, n: usize) {
    wait_until("the handlers to start", || {
        probe.started.load(Ordering::SeqCst) >= n
    });
}

/// A `silent` stream, open once its opening comment has arrived.
fn silent(client: &H2Client) -> H2Response {
    let mut stream = client.post("/rpc/silent", "");
    assert_eq!(stream.status, 200);
    stream.read_until(": \n\n");
    stream
}

/// A ping on `client`, answered in full.
fn ping(client: &H2Client, n: u32) {
    let body = format!(r#"{{"json":{n}}}"#);
    let mut pong = client.post("/rpc/ping", &body);
    assert_eq!(pong.status, 200);
    assert_eq!(pong.read_to_end(), (body.as_str(), End::Clean));
}

pub fn unary_calls_over_http2_answer_as_over_http1<R: Adapter>() {
    let (server, _) = start::<R>(ServerConfig::default());
    let addr = server.addr();
    let h2 = H2Client::connect(addr);
    let mut orpc = h2.post("/rpc/ping", r#"{"json":{"n":1}}"#);
    assert_eq!(orpc.status, 200);
    assert_eq!(orpc.header("content-type"), Some("application/json"));
    assert_eq!(orpc.read_to_end(), (r#"{"json":{"n":1}}"#, End::Clean));

    let query = "/trpc/ping?input=%7B%22n%22%3A1%7D";
    let mut trpc = h2.get(query, &[]);
    assert_eq!(trpc.status, 200);
    assert_eq!(trpc.header("content-type"), Some("application/json"));
    assert_eq!(
        trpc.read_to_end(),
        (r#"{"result":{"data":{"n":1}}}"#, End::Clean)
    );
    // Errors too, with the same bodies.
    let missing = h2.post("/rpc/nope", "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/json"));
    assert_eq!(missing.json()["json"]["code"], "NOT_FOUND");
    let malformed = h2.post("/rpc/ping", "{not json");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["json"]["code"], "BAD_REQUEST");
    assert_eq!(server.open_connections(), 1, "one connection for them all");

    let request = format!("GET {query} HTTP/1.1\r\nhost: test\r\n\r\n");
    let mut http1 = send(addr, request.as_bytes());
    assert_eq!(http1.header("content-type"), Some("application/json"));
    assert_eq!(http1.read_to_end().0, trpc.text, "the same bytes");
}

pub fn http2_stream_events_arrive_one_by_one_as_they_are_yielded<R: Adapter>() {
    let (server, probe) = start::<R>(quiet_config());
    let h2 = H2Client::connect(server.addr());
    let mut response = h2.post("/rpc/gated", "");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    // The second event cannot exist before the gate opens: the first came on its own.
    let first = response
        .read_until("data: {\"json\":{\"n\":1}}\n\n")
        .to_owned();
    assert!(
        first.starts_with(": \n\n"),
        "the opening comment first: {first:?}"
    );
    assert!(!first.contains("id: 2"), "{first:?}");
    probe.gate.trigger();
    assert_eq!(response.read_to_end(), (GATED, End::Clean));
    cleaned_up(&probe, 1);
    wait_until("the stream to close", || server.active_streams() == 0);
    // HTTP/1.1 gives the same bytes.
    let mut http1 = post(server.addr(), "/rpc/gated", "");
    assert_eq!(http1.read_to_end(), (GATED, loopback::End::Clean));
}

/// The point of HTTP/2 for browsers: no limit of six streams per origin.
pub fn many_http2_streams_on_one_connection_all_receive_their_events<R: Adapter>() {
    const STREAMS: usize = 24;
    let (server, probe) = start::<R>(quiet_config());
    let h2 = H2Client::connect(server.addr());
    let mut streams: Vec<H2Response> = (0..STREAMS)
        .map(|_| {
            let mut stream = h2.post("/rpc/gated", "");
            assert_eq!(stream.status, 200);
            stream.read_until("id: 1\n");
            stream
        })
        .collect();
    started(&probe, STREAMS);
    assert_eq!(server.active_streams(), STREAMS);
    assert_eq!(server.open_connections(), 1);
    let ids: std::collections::HashSet<u32> = streams.iter().map(H2Response::stream_id).collect();
    assert_eq!(ids.len(), STREAMS, "a stream each");
    probe.gate.trigger();
    for stream in &mut streams {
        assert_eq!(stream.read_to_end(), (GATED, End::Clean));
    }
    cleaned_up(&probe, STREAMS);
    wait_until("the streams to close", || server.active_streams() == 0);
}

pub fn resetting_an_http2_stream_runs_its_cleanup_and_spares_the_others<R: Adapter>() {
    let (server, probe) = start::<R>(quiet_config());
    let h2 = H2Client::connect(server.addr());
    let mut silents: Vec<H2Response> = (0..3).map(|_| silent(&h2)).collect();
    let mut gated = h2.post("/rpc/gated", "");
    gated.read_until("id: 1\n");
    started(&probe, 4);
    assert_eq!(server.active_streams(), 4);
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), 0);

    // RST_STREAM: that handler alone is dropped, and its place freed.
    silents.pop().unwrap().reset();
    cleaned_up(&probe, 1);
    wait_until("its place to free up", || server.active_streams() == 3);
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), 1);
    // A call given up on before its answer is dropped the same way.
    let mut hang = h2.open("POST", "/rpc/hang", &[("content-length", "0")]);
    hang.send(b"", true);
    started(&probe, 5);
    hang.reset();
    cleaned_up(&probe, 2);
    // The connection and its other streams go on.
    ping(&h2, 1);
    probe.gate.trigger();
    assert_eq!(gated.read_to_end(), (GATED, End::Clean));
    cleaned_up(&probe, 3);
    wait_until("the ended stream to close", || server.active_streams() == 2);

    // Closing the connection ends every stream still on it.
    h2.close();
    cleaned_up(&probe, 5);
    wait_until("the streams to close", || server.active_streams() == 0);
    wait_until("the connection to close", || server.open_connections() == 0);
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), 5);
    for mut stream in silents {
        assert_eq!(stream.read_to_end(), (": \n\n", End::Lost));
    }
}

/// On HTTP/2 the refusal ends its stream alone: `connection: close` has no meaning there (and is
/// not sent), and the connection goes on.
pub fn http2_bodies_over_the_cap_are_413_and_the_connection_goes_on<R: Adapter>() {
    let config = ServerConfig {
        max_body_bytes: 64,
        ..ServerConfig::default()
    };
    let (server, _) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    let payload_too_large = |response: H2Response| {
        assert_eq!(response.status, 413);
        assert_eq!(response.header("connection"), None);
        let body = response.json();
        assert_eq!(body["json"]["code"], "PAYLOAD_TOO_LARGE");
        assert_eq!(body["json"]["status"], 413);
        assert_eq!(body["json"]["defined"], false);
    };
    // Declared too large: refused from the headers, before any of the body is sent.
    let declared = h2.open("POST", "/rpc/ping", &[("content-length", "1000000")]);
    payload_too_large(declared.response());
    // Of unknown length: refused once the bytes read pass the cap, the body still open.
    let mut streamed = h2.open("POST", "/rpc/ping", &[]);
    for _ in 0..4 {
        streamed.send(&[b' '; 32], false);
    }
    payload_too_large(streamed.response());
    // At the cap exactly is fine.
    let body = format!(r#"{{"json":"{}"}}"#, "x".repeat(64 - 11));
    assert_eq!(body.len(), 64);
    let mut exact = h2.post("/rpc/ping", &body);
    assert_eq!(exact.status, 200);
    assert_eq!(exact.read_to_end(), (body.as_str(), End::Clean));
    ping(&h2, 1);
    assert_eq!(server.open_connections(), 1);
}

pub fn an_http2_body_that_never_ends_is_408_and_the_connection_goes_on<R: Adapter>() {
    let config = ServerConfig {
        body_read_timeout: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    };
    let (server, _) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    // Headers that announce a body that never comes, and a body that starts and never ends,
    // at once on the one connection.
    let declared = h2.open("POST", "/rpc/ping", &[("content-length", "100")]);
    let mut unended = h2.open("POST", "/rpc/ping", &[]);
    unended.send(b"{\"json\":", false);
    for call in [declared, unended] {
        let response = call.response();
        assert_eq!(response.status, 408);
        assert_eq!(response.header("connection"), None);
        let body = response.json();
        assert_eq!(body["json"]["code"], "TIMEOUT");
        assert_eq!(body["json"]["status"], 408);
    }
    ping(&h2, 1);
    assert_eq!(server.open_connections(), 1);
}

pub fn http2_streams_past_max_streams_are_refused_with_503<R: Adapter>() {
    let mut config = quiet_config();
    config.max_streams = 2;
    let (server, probe) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    let mut open: Vec<H2Response> = (0..2).map(|_| silent(&h2)).collect();
    assert_eq!(server.active_streams(), 2);
    let refused = h2.post("/rpc/silent", "");
    assert_eq!(refused.status, 503);
    let body = refused.json();
    assert_eq!(body["json"]["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(body["json"]["status"], 503);
    // The refused handler was dropped without running; unary calls are not limited.
    cleaned_up(&probe, 1);
    assert_eq!(probe.started.load(Ordering::SeqCst), 2);
    ping(&h2, 1);
    open.pop().unwrap().reset();
    wait_until("a place to free up", || server.active_streams() == 1);
    silent(&h2);
}

/// HTTP/2's own limit: the server's SETTINGS say how many streams a connection may have open
/// at once. A client past it holds its next request back (h2 does, as browsers do) until a
/// stream ends; one that sends it anyway has that stream refused (RST_STREAM REFUSED_STREAM),
/// and nothing of it runs.
pub fn http2_streams_past_max_concurrent_streams_wait_or_are_refused<R: Adapter>() {
    let mut config = quiet_config();
    config.http2.max_concurrent_streams = 3;
    let (server, probe) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    assert_eq!(h2.max_concurrent_streams(), Some(3));
    ping(&h2, 1);
    assert_eq!(h2.current_max_send_streams(), 3, "h2 applies it");
    let mut open: Vec<H2Response> = (0..3).map(|_| silent(&h2)).collect();
    started(&probe, 3);
    let mut waiting = h2.open("POST", "/rpc/silent", &[("content-length", "0")]);
    waiting.send(b"", true);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!waiting.is_answered(), "held back by the client");
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        3,
        "the server never saw it"
    );
    assert_eq!(server.active_streams(), 3);
    open.pop().unwrap().reset();
    let mut fourth = waiting.response();
    assert_eq!(fourth.status, 200);
    fourth.read_until(": \n\n");
    started(&probe, 4);
    drop((open, fourth, h2));
    wait_until("the streams to close", || server.active_streams() == 0);

    // A client that ignores the limit, frame by frame: the fourth stream is refused.
    let mut raw = RawH2::handshake(server.addr());
    for stream in [1, 3, 5, 7] {
        raw.post(stream, "/rpc/silent");
    }
    let refused = raw.read_until(|f| f.kind == kind::RST_STREAM);
    assert_eq!(
        (refused.stream, refused.reason()),
        (7, Some(Reason::REFUSED_STREAM))
    );
    started(&probe, 7);
    wait_until("the three others to stream", || {
        server.active_streams() == 3
    });
    assert_eq!(
        probe.started.load(Ordering::SeqCst),
        7,
        "the refused one never ran"
    );
}

pub fn a_silent_http2_stream_gets_keep_alive_comments<R: Adapter>() {
    let mut config = ServerConfig::default();
    config.orpc.timing.keep_alive = Some(Duration::from_millis(100));
    let (server, _) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    let mut response = h2.post("/rpc/silent", "");
    let text = response.read_until(": \n\n: \n\n").to_owned();
    assert!(text.starts_with(": \n\n: \n\n"), "{text:?}");
    assert!(text.bytes().all(|b| b == b':' || b == b' ' || b == b'\n'));
}

pub fn max_stream_duration_ends_an_http2_stream_without_done<R: Adapter>() {
    let mut config = quiet_config();
    config.orpc.timing.max_duration = Some(Duration::from_millis(200));
    let (server, probe) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    let mut response = h2.post("/rpc/silent", "");
    let expected = format!(": \n\n{}", interruption());
    assert_eq!(response.read_to_end(), (expected.as_str(), End::Clean));
    assert!(!expected.contains("event: done"));
    cleaned_up(&probe, 1);
    wait_until("the stream to close", || server.active_streams() == 0);
    ping(&h2, 1);
}

pub fn graceful_shutdown_ends_http2_streams_with_the_interruption_and_goaway<R: Adapter>() {
    let (mut server, probe) = start::<R>(quiet_config());
    let addr = server.addr();
    // An idle connection must not hold shutdown up.
    let idle = H2Client::connect(addr);
    ping(&idle, 1);
    let h2 = H2Client::connect(addr);
    let mut silent = silent(&h2);
    let mut gated = h2.post("/rpc/gated", "");
    gated.read_until("id: 1\n");
    started(&probe, 2);
    assert!(
        server.shutdown(),
        "every connection finished within the grace"
    );
    let interruption = interruption();
    let expected = format!(": \n\n{interruption}");
    assert_eq!(silent.read_to_end(), (expected.as_str(), End::Clean));
    let (text, end) = gated.read_to_end();
    assert!(!text.contains("event: done"), "{text:?}");
    assert!(text.ends_with(&interruption), "{text:?}");
    assert_eq!(end, End::Clean);
    assert_eq!(probe.cleanups.load(Ordering::SeqCst), 2);
    for client in [&idle, &h2] {
        let goaway = client.goaway().expect("a GOAWAY");
        assert_eq!(goaway.reason(), Some(Reason::NO_ERROR));
        client.wait_closed().ok();
    }
    // Both streams were processed: the last GOAWAY names them.
    assert!(h2.goaway().unwrap().last_stream() >= Some(3));
    assert!(
        TcpStream::connect(addr).is_err(),
        "the listener is closed once shutdown returns"
    );
    drop(server);
}

/// A reader that stops holds only its own stream: the server sends what the stream's
/// flow-control window allows, buffers up to `max_send_buffer_bytes`, and then stops polling
/// the handler, whose yields stall at a bound. The connection's window is larger, so other
/// streams on the same connection, and other connections, are answered meanwhile.
pub fn an_http2_reader_that_stops_stalls_only_its_own_stream<R: Adapter>() {
    const WINDOW: u32 = 65_535;
    let config = quiet_config();
    let send_buffer = config.http2.max_send_buffer_bytes;
    let (server, probe) = start::<R>(config);
    let h2 = H2Client::builder()
        .stream_window(WINDOW)
        .connection_window(16 << 20)
        .connect(server.addr());
    let mut flood = h2.post("/rpc/flood", "");
    assert_eq!(flood.status, 200);
    // From here the test reads nothing of it, so the client releases none of its window.
    flood.hold();
    let other = H2Client::connect(server.addr());
    for n in 0..10 {
        ping(&h2, n);
        ping(&other, n);
        let body = format!(r#"{{"json":{n}}}"#);
        assert_eq!(
            post(server.addr(), "/rpc/ping", &body).read_to_end().0,
            body
        );
    }
    let mut stalled = probe.flooded.load(Ordering::Relaxed);
    wait_until("the flood to stall", || {
        std::thread::sleep(Duration::from_millis(100));
        let now = probe.flooded.load(Ordering::Relaxed);
        std::mem::replace(&mut stalled, now) == now
    });
    // The smallest event is 33 bytes (`event: message\ndata: {"json":0}\n\n`): no more than
    // the window and the send buffer hold, with room for what is in flight, twice over.
    let bound = 2 * (WINDOW as usize + send_buffer) / 33;
    assert!(
        stalled > 0 && stalled <= bound,
        "{stalled} values yielded for a reader that reads none (bound {bound})"
    );
    assert!(flood.window_left() <= 0, "the window is used up");
    ping(&h2, 99);
    // A reader that reads again gets every value, in order, from the first, and past the
    // stall.
    flood.release();
    let mut next = 0u64;
    let mut pending = String::new();
    while next < stalled as u64 + 2_000 {
        let chunk = flood.read_chunk().expect("the flood goes on");
        pending.push_str(&chunk);
        while let Some(at) = pending.find("\n\n") {
            let event: String = pending.drain(..at + 2).collect();
            if event == ": \n\n" {
                continue; // the opening comment
            }
            assert_eq!(
                event,
                format!("event: message\ndata: {{\"json\":{next}}}\n\n")
            );
            next += 1;
        }
    }
    flood.reset();
    wait_until("the stream to close", || server.active_streams() == 0);
}

/// Over HTTP/2 a cut stream is a reset stream: `abort_streams` resets each open event stream
/// (RST_STREAM), which a client reads as a failure to reconnect from, and the connection and
/// streams opened afterwards go on.
pub fn abort_streams_resets_http2_streams_and_the_connection_goes_on<R: Adapter>() {
    let probe = Arc::new(Probe::default());
    let service = OuterService::new(router(&probe), quiet_config(), R::timer());
    let server = R::start(service.clone());
    let h2 = H2Client::connect(server.addr());
    let mut cut: Vec<H2Response> = (0..2).map(|_| silent(&h2)).collect();
    started(&probe, 2);
    service.abort_streams();
    for stream in &mut cut {
        let (text, end) = stream.read_to_end();
        assert_eq!(text, ": \n\n", "no interruption event: the stream is cut");
        assert!(matches!(end, End::Reset(_)), "{end:?}");
    }
    cleaned_up(&probe, 2);
    wait_until("the streams to close", || server.active_streams() == 0);
    ping(&h2, 1);
    silent(&h2);
    assert_eq!(server.open_connections(), 1);
}

pub fn shutdown_closes_http2_connections_still_busy_after_the_grace<R: Adapter>() {
    let config = ServerConfig {
        shutdown_grace: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let (mut server, probe) = start::<R>(config);
    let addr = server.addr();
    let h2 = H2Client::connect(addr);
    let mut busy = h2.open("POST", "/rpc/hang", &[("content-length", "0")]);
    busy.send(b"", true);
    started(&probe, 1);
    assert!(
        !server.shutdown(),
        "a call that never ends outlives the grace"
    );
    assert_eq!(busy.answer().err(), Some(End::Lost), "closed unanswered");
    let goaway = h2.goaway().expect("a GOAWAY first");
    assert_eq!(goaway.reason(), Some(Reason::NO_ERROR));
    h2.wait_closed().ok();
    cleaned_up(&probe, 1);
    assert!(TcpStream::connect(addr).is_err(), "the listener is closed");
}

/// The server PINGs a connection it has not heard from: h2's client answers and stays, a
/// client that never answers is dropped, and its streams' handlers with it.
pub fn an_http2_client_that_never_answers_pings_is_dropped_with_its_streams<R: Adapter>() {
    let mut config = quiet_config();
    config.http2.keep_alive_interval = Some(Duration::from_millis(100));
    config.http2.keep_alive_timeout = Duration::from_millis(200);
    let (server, probe) = start::<R>(config);
    let h2 = H2Client::connect(server.addr());
    let _kept = silent(&h2);
    let mut raw = RawH2::handshake(server.addr());
    raw.post(1, "/rpc/silent");
    started(&probe, 2);
    let pinged = raw.read_until(|f| f.kind == kind::PING);
    assert_eq!(pinged.flags & 0x1, 0, "a PING, not an ACK");
    assert!(raw.closed_by_server(), "dropped");
    cleaned_up(&probe, 1);
    wait_until("its stream to close", || server.active_streams() == 1);
    let pings = |client: &H2Client| {
        let frames = client.frames();
        frames
            .iter()
            .filter(|f| f.kind == kind::PING && f.flags & 0x1 == 0)
            .count()
    };
    wait_until("more pings to the answering client", || pings(&h2) >= 3);
    ping(&h2, 1);
    assert_eq!(
        probe.cleanups.load(Ordering::SeqCst),
        1,
        "the answering client stays"
    );
}

pub fn a_partial_http2_preface_is_cut_off_after_the_header_read_timeout<R: Adapter>() {
    let config = ServerConfig {
        header_read_timeout: Some(Duration::from_millis(100)),
        ..ServerConfig::default()
    };
    let (server, _) = start::<R>(config);
    let slow = open(server.addr(), &PREFACE[..18]);
    assert!(closed_by_server(slow));
    // A prompt client on the same server is unaffected.
    ping(&H2Client::connect(server.addr()), 1);
}

pub fn with_http2_off_a_prior_knowledge_connection_is_not_served_as_http2<R: Adapter>() {
    let mut config = ServerConfig::default();
    config.http2.enabled = false;
    let (server, probe) = start::<R>(config);
    // The preface is read as HTTP/1.1, which it is not: hyper answers it nothing and
    // closes the connection (no SETTINGS, no HTTP/1.1 status either).
    let mut hello = PREFACE.to_vec();
    hello.extend_from_slice(&Frame::encode(kind::SETTINGS, 0, 0, &[]));
    assert!(closed_by_server(open(server.addr(), &hello)));
    // h2's client reads no HTTP/2 in that, and its request never reaches a handler.
    let h2 = H2Client::connect(server.addr());
    let answer = h2
        .try_open("POST", "/rpc/gated", &[("content-length", "0")])
        .and_then(|mut call| {
            call.send(b"", true);
            call.answer()
        });
    assert_eq!(answer.err(), Some(End::Lost));
    assert_eq!(probe.started.load(Ordering::SeqCst), 0);
    // HTTP/1.1 is served as ever.
    let body = r#"{"json":1}"#;
    assert_eq!(post(server.addr(), "/rpc/ping", body).read_to_end().0, body);
}

/// An HTTP/2 connection driven frame by frame, for what h2's client will not do.
struct RawH2 {
    socket: TcpStream,
    frames: FrameReader,
    seen: usize,
}

impl RawH2 {
    /// The preface and empty SETTINGS, then the server's SETTINGS acknowledged.
    fn handshake(addr: SocketAddr) -> Self {
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&Frame::encode(kind::SETTINGS, 0, 0, &[]));
        let mut raw = Self {
            socket: open(addr, &hello),
            frames: FrameReader::default(),
            seen: 0,
        };
        raw.read_until(|f| f.kind == kind::SETTINGS && f.flags & 0x1 == 0);
        raw.write(&Frame::encode(kind::SETTINGS, 0x1, 0, &[]));
        raw
    }

    fn write(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).expect("write a frame");
    }

    /// HEADERS for `POST {path}`, with END_STREAM: HPACK's static table for the method and
    /// scheme, literals without indexing for the path and authority.
    fn post(&mut self, stream: u32, path: &str) {
        let mut block = vec![0x83, 0x86, 0x04, u8::try_from(path.len()).unwrap()];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 1, b'x']);
        const END_STREAM_AND_HEADERS: u8 = 0x1 | 0x4;
        self.write(&Frame::encode(
            kind::HEADERS,
            END_STREAM_AND_HEADERS,
            stream,
            &block,
        ));
    }

    /// Reads until the server closes the connection; false if it is still open at the
    /// deadline.
    fn closed_by_server(&mut self) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            match self.socket.read(&mut buffer) {
                Ok(0) => return true,
                Ok(n) => self.frames.feed(&buffer[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Reads until a frame not returned before matches, and returns it.
    fn read_until(&mut self, wanted: impl Fn(&Frame) -> bool) -> Frame {
        let start = std::time::Instant::now();
        let mut buffer = [0u8; 16 * 1024];
        loop {
            while self.seen < self.frames.frames.len() {
                let frame = &self.frames.frames[self.seen];
                self.seen += 1;
                if wanted(frame) {
                    return frame.clone();
                }
            }
            assert!(start.elapsed() < DEADLINE, "still waiting for a frame");
            match self.socket.read(&mut buffer) {
                Ok(0) => panic!("the server closed the connection: {:?}", self.frames),
                Ok(n) => self.frames.feed(&buffer[..n]),
                Err(err) => panic!("reading frames: {err}"),
            }
        }
    }
}
