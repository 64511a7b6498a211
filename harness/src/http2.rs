//! A blocking HTTP/2 client for loopback tests: many requests at once on one connection
//! (prior knowledge, cleartext), each response read as its DATA arrives, with a say over
//! flow control (a reader that stops releasing its window) and a record of the control frames
//! the server sent (SETTINGS, RST_STREAM, GOAWAY). Not for TLS, nor for anything but tests.
//!
//! It is the `h2` crate's client on a private current-thread tokio runtime that runs on a
//! thread of its own, so the connection answers PINGs and sends window updates while the test
//! blocks, and it drives a server on any runtime (smol, monoio) just the same. Every wait has
//! a deadline ([`DEADLINE`]), so a hung server fails a test instead of hanging it. It panics
//! with a clear message on anything it does not expect.
//!
//! ```no_run
//! use outer_harness::http2::{End, H2Client};
//!
//! # let addr: std::net::SocketAddr = "127.0.0.1:3000".parse().unwrap();
//! let client = H2Client::connect(addr);
//! let mut unary = client.post("/rpc/ping", r#"{"json":1}"#);
//! let mut events = client.post("/rpc/live", ""); // both open on the one connection
//! assert_eq!(unary.status, 200);
//! assert_eq!(unary.read_to_end(), (r#"{"json":1}"#, End::Clean));
//! events.read_until("id: 1\n");
//! events.reset(); // RST_STREAM(CANCEL): the server drops that handler alone
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::FutureExt as _;
use h2::client::{ResponseFuture, SendRequest};
use h2::{RecvStream, SendStream};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use crate::loopback::DEADLINE;
pub use h2::Reason;

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// `SETTINGS_MAX_CONCURRENT_STREAMS`.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// `SETTINGS_INITIAL_WINDOW_SIZE`.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// The frame types the suite looks at.
pub mod kind {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION.
    pub const CONTINUATION: u8 = 0x9;
}

/// The runtime the connections run on: one thread, stopped and joined when the last client
/// or response using it is dropped.
struct Driver {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Driver {
    fn start() -> Arc<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime for the HTTP/2 client");
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("h2-client".into())
            .spawn(move || {
                // Drives the connections' tasks and the I/O until stopped; dropping the runtime
                // then drops every connection, closing its socket.
                let _ = runtime.block_on(stopped);
            })
            .expect("a thread for the HTTP/2 client");
        Arc::new(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Runs `future` to completion from the test's thread, failing the test after
    /// [`DEADLINE`]. The runtime's own thread drives the I/O meanwhile (which is what lets
    /// `Handle::block_on` work on a current-thread runtime).
    fn wait<F: Future>(&self, what: &str, future: F) -> F::Output {
        self.handle
            .block_on(async { tokio::time::timeout(DEADLINE, future).await })
            .unwrap_or_else(|_| panic!("still waiting for {what} after {DEADLINE:?}"))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

/// A frame off the wire: its header, and its payload for control frames (DATA, HEADERS and
/// CONTINUATION payloads are counted, not kept).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its type (see [`kind`]).
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream id (0 for the connection).
    pub stream: u32,
    /// Its payload, for control frames; empty for the others.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The settings of a SETTINGS frame that is not an ACK: `(identifier, value)` pairs.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        if self.kind != kind::SETTINGS || self.flags & 0x1 != 0 {
            return Vec::new();
        }
        self.payload
            .chunks_exact(6)
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]),
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
                )
            })
            .collect()
    }

    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn reason(&self) -> Option<Reason> {
        let at = match self.kind {
            kind::RST_STREAM => 0,
            kind::GOAWAY => 4,
            _ => return None,
        };
        let code = self.payload.get(at..at + 4)?;
        Some(Reason::from(u32::from_be_bytes(code.try_into().ok()?)))
    }

    /// The last stream id a GOAWAY frame says the server processed.
    pub fn last_stream(&self) -> Option<u32> {
        if self.kind != kind::GOAWAY {
            return None;
        }
        let id = self.payload.get(..4)?;
        Some(u32::from_be_bytes(id.try_into().ok()?) & 0x7fff_ffff)
    }

    /// The frame's bytes on the wire, to write by hand.
    pub fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len())
            .expect("a small frame")
            .to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, flags];
        frame.extend_from_slice(&stream.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }
}

/// Splits the bytes a server sends into frames, however the reads cut them.
#[derive(Debug, Default)]
pub struct FrameReader {
    header: Vec<u8>,
    /// The frame being read (payload still to come) and the bytes of it left.
    current: Option<(Frame, usize)>,
    /// The frames read so far, but DATA frames.
    pub frames: Vec<Frame>,
    /// The bytes of DATA payload read so far (padding included).
    pub data_bytes: usize,
}

impl FrameReader {
    /// Reads `bytes`, the next ones off the wire.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.current {
                None => {
                    let take = (9 - self.header.len()).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.header.len() == 9 {
                        let h = std::mem::take(&mut self.header);
                        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
                        let frame = Frame {
                            kind: h[3],
                            flags: h[4],
                            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                            payload: Vec::new(),
                        };
                        self.current = Some((frame, len));
                        self.finish_if_read();
                    }
                }
                Some((frame, left)) => {
                    let take = (*left).min(bytes.len());
                    match frame.kind {
                        kind::DATA => self.data_bytes += take,
                        kind::HEADERS | kind::CONTINUATION => {}
                        _ => frame.payload.extend_from_slice(&bytes[..take]),
                    }
                    *left -= take;
                    bytes = &bytes[take..];
                    self.finish_if_read();
                }
            }
        }
    }

    fn finish_if_read(&mut self) {
        if matches!(self.current, Some((_, 0))) {
            if let Some((frame, _)) = self.current.take() {
                if frame.kind != kind::DATA {
                    self.frames.push(frame);
                }
            }
        }
    }

    /// The GOAWAY frames read so far.
    pub fn goaways(&self) -> impl Iterator<Item = &Frame> {
        self.frames.iter().filter(|f| f.kind == kind::GOAWAY)
    }
}

/// The client's socket, recording every frame the server sends on it.
struct Tap {
    socket: tokio::net::TcpStream,
    frames: Arc<Mutex<FrameReader>>,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.socket).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            let mut frames = self.frames.lock().unwrap();
            frames.feed(&buf.filled()[before..]);
        }
        read
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.socket).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_shutdown(cx)
    }
}

/// How a connection is set up: the flow-control windows the client grants the server.
#[derive(Clone, Copy, Debug)]
pub struct H2Builder {
    stream_window: u32,
    connection_window: u32,
}

impl Default for H2Builder {
    /// HTTP/2's initial windows: 65 535 bytes for each stream and for the connection.
    fn default() -> Self {
        Self {
            stream_window: 65_535,
            connection_window: 65_535,
        }
    }
}

impl H2Builder {
    /// The bytes the server may send on each stream before the client releases some
    /// (`SETTINGS_INITIAL_WINDOW_SIZE`).
    pub fn stream_window(mut self, bytes: u32) -> Self {
        self.stream_window = bytes;
        self
    }

    /// The bytes the server may send on the whole connection before the client releases some.
    pub fn connection_window(mut self, bytes: u32) -> Self {
        self.connection_window = bytes;
        self
    }

    /// Connects to `addr` with prior knowledge: the preface and the client's SETTINGS, then
    /// requests at once (the server's SETTINGS arrive meanwhile).
    pub fn connect(self, addr: SocketAddr) -> H2Client {
        let driver = Driver::start();
        let frames = Arc::new(Mutex::new(FrameReader::default()));
        let ended = Arc::new(Mutex::new(None));
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        let tap_frames = Arc::clone(&frames);
        let send = driver.wait("the HTTP/2 handshake", async {
            let socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
            socket.set_nodelay(true).unwrap();
            let tap = Tap {
                socket,
                frames: tap_frames,
            };
            h2::client::Builder::new()
                .initial_window_size(self.stream_window)
                .initial_connection_window_size(self.connection_window)
                .handshake::<_, Bytes>(tap)
                .await
                .expect("the HTTP/2 handshake")
        });
        let (send, connection) = send;
        let end = Arc::clone(&ended);
        driver.handle.spawn(async move {
            let outcome = match futures::future::select(connection, closed).await {
                futures::future::Either::Left((outcome, _)) => {
                    outcome.map_err(|err| err.to_string())
                }
                // Closed by the client: the connection (and its socket) is dropped here.
                futures::future::Either::Right(_) => Err("closed by the client".into()),
            };
            *end.lock().unwrap() = Some(outcome);
        });
        H2Client {
            driver,
            send,
            frames,
            ended,
            close: Some(close),
        }
    }
}

/// One HTTP/2 connection, any number of requests open on it at once.
///
/// Dropping it (or [`close`](Self::close)) closes the socket at once, without GOAWAY, as a
/// client that goes away does; responses still held then end [`End::Lost`].
pub struct H2Client {
    driver: Arc<Driver>,
    send: SendRequest<Bytes>,
    frames: Arc<Mutex<FrameReader>>,
    ended: Arc<Mutex<Option<Result<(), String>>>>,
    close: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::fmt::Debug for H2Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Client")
            .field("ended", &self.ended.lock().unwrap())
            .finish_non_exhaustive()
    }
}

impl Drop for H2Client {
    fn drop(&mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
    }
}

impl H2Client {
    /// Connects to `addr` with prior knowledge and HTTP/2's initial windows.
    pub fn connect(addr: SocketAddr) -> Self {
        H2Builder::default().connect(addr)
    }

    /// A connection with other windows.
    pub fn builder() -> H2Builder {
        H2Builder::default()
    }

    /// `POST {path}` with a JSON body (and its content-length), answered at headers time.
    pub fn post(&self, path: &str, body: &str) -> H2Response {
        let length = body.len().to_string();
        let headers = [
            ("content-type", "application/json"),
            ("content-length", length.as_str()),
        ];
        let mut call = self.open("POST", path, &headers);
        call.send(body.as_bytes(), true);
        call.response()
    }

    /// `GET {path}` with `headers`, answered at headers time.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> H2Response {
        let mut call = self.open("GET", path, headers);
        call.send(b"", true);
        call.response()
    }

    /// Opens a request whose body is still to send ([`H2Call::send`]); the answer comes with
    /// [`H2Call::response`]. When the connection is at the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`, the request waits in the client for a stream to end
    /// before its HEADERS go out, as h2 (and browsers) do; one such request at a time.
    pub fn open(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> H2Call {
        self.try_open(method, path, headers)
            .unwrap_or_else(|end| panic!("the connection takes no request: {end:?}"))
    }

    /// [`open`](Self::open), or how the connection ended if it takes no more requests.
    pub fn try_open(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<H2Call, End> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("http://loopback{path}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(()).expect("a valid request");
        let send = self.send.clone();
        let mut ready = self
            .driver
            .wait("the connection to take a request", send.ready())
            .map_err(|err| End::of(&err))?;
        let (response, body) = ready
            .send_request(request, false)
            .map_err(|err| End::of(&err))?;
        Ok(H2Call {
            driver: Arc::clone(&self.driver),
            response: Some(response),
            answered: None,
            body,
        })
    }

    /// The settings the server's SETTINGS frames gave so far, in order.
    pub fn server_settings(&self) -> Vec<(u16, u32)> {
        let frames = self.frames.lock().unwrap();
        frames.frames.iter().flat_map(Frame::settings).collect()
    }

    /// The server's `SETTINGS_MAX_CONCURRENT_STREAMS`, once its SETTINGS have arrived
    /// (waits for them); `None` when they do not say (no limit).
    pub fn max_concurrent_streams(&self) -> Option<u32> {
        crate::loopback::wait_until("the server's SETTINGS", || {
            let frames = self.frames.lock().unwrap();
            frames.frames.iter().any(|f| f.kind == kind::SETTINGS)
        });
        self.server_settings()
            .into_iter()
            .filter(|(id, _)| *id == SETTINGS_MAX_CONCURRENT_STREAMS)
            .map(|(_, value)| value)
            .next_back()
    }

    /// How many streams h2 lets this client have open at once now (the server's limit, as h2
    /// applies it).
    pub fn current_max_send_streams(&self) -> usize {
        self.send.current_max_send_streams()
    }

    /// Every frame but DATA the server has sent so far.
    pub fn frames(&self) -> Vec<Frame> {
        self.frames.lock().unwrap().frames.clone()
    }

    /// The last GOAWAY the server sent, if any.
    pub fn goaway(&self) -> Option<Frame> {
        self.frames.lock().unwrap().goaways().last().cloned()
    }

    /// How the connection ended (`Ok` for a clean close, else h2's error), or `None` while it
    /// is open.
    pub fn ended(&self) -> Option<Result<(), String>> {
        self.ended.lock().unwrap().clone()
    }

    /// Waits (within [`DEADLINE`]) for the connection to end, and says how it did.
    pub fn wait_closed(&self) -> Result<(), String> {
        crate::loopback::wait_until("the connection to end", || self.ended().is_some());
        self.ended().unwrap_or(Ok(()))
    }

    /// Closes the socket at once, as a client that goes away does (no GOAWAY).
    pub fn close(self) {
        drop(self);
    }
}

/// A request sent, its body perhaps still open, its answer not yet read.
pub struct H2Call {
    driver: Arc<Driver>,
    response: Option<ResponseFuture>,
    answered: Option<Result<http::Response<RecvStream>, h2::Error>>,
    body: SendStream<Bytes>,
}

impl std::fmt::Debug for H2Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Call")
            .field("stream", &self.body.stream_id().as_u32())
            .finish_non_exhaustive()
    }
}

impl H2Call {
    /// Sends `bytes` of the body; `end` ends it (END_STREAM). A stream that takes no more
    /// (the server answered and reset it, or the connection is gone) drops them: the answer
    /// says how it ended.
    pub fn send(&mut self, bytes: &[u8], end: bool) {
        let _ = self.body.send_data(Bytes::copy_from_slice(bytes), end);
    }

    /// Whether the answer's headers (or an error) have arrived; never waits.
    pub fn is_answered(&mut self) -> bool {
        if self.answered.is_none() {
            let response = self.response.as_mut().expect("not answered yet");
            // Polled once with a waker that does nothing: `response` waits with a real one.
            if let Some(answer) = response.now_or_never() {
                self.answered = Some(answer);
                self.response = None;
            }
        }
        self.answered.is_some()
    }

    /// Resets the stream (RST_STREAM CANCEL) before its answer came, as a client that gives
    /// up on a call does.
    pub fn reset(mut self) {
        self.body.send_reset(Reason::CANCEL);
    }

    /// Waits for the answer's headers. Fails the test if the stream ends without them.
    pub fn response(self) -> H2Response {
        self.answer()
            .unwrap_or_else(|end| panic!("no response: the stream ended {end:?}"))
    }

    /// Waits for the answer's headers, or for the stream to end without them (how it did).
    pub fn answer(mut self) -> Result<H2Response, End> {
        let answer = match self.answered.take() {
            Some(answer) => answer,
            None => {
                let response = self.response.take().expect("not answered yet");
                self.driver.wait("the response's headers", response)
            }
        };
        let response = answer.map_err(|err| End::of(&err))?;
        let (head, body) = response.into_parts();
        let headers = head
            .headers
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().expect("a text header value");
                (name.as_str().to_owned(), value.to_owned())
            })
            .collect();
        Ok(H2Response {
            status: head.status.as_u16(),
            headers,
            text: String::new(),
            driver: self.driver,
            body,
            send: self.body,
            end: None,
            holding: false,
            unreleased: 0,
        })
    }
}

/// How a response's stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// END_STREAM: the body is complete.
    Clean,
    /// The server reset the stream (RST_STREAM), with its reason.
    Reset(Reason),
    /// The server sent GOAWAY before the stream ended (or before it began), with its reason.
    GoAway(Reason),
    /// The connection was lost before the stream ended: closed, or something the client could
    /// not read as HTTP/2.
    Lost,
}

impl End {
    fn of(err: &h2::Error) -> Self {
        match err.reason() {
            Some(reason) if err.is_remote() && err.is_reset() => End::Reset(reason),
            Some(reason) if err.is_remote() && err.is_go_away() => End::GoAway(reason),
            _ => End::Lost,
        }
    }
}

/// A response: the status and headers at once, the body as its DATA frames arrive.
///
/// Each DATA frame is released back to the server's flow-control window as the test reads it,
/// unless the response [`hold`](Self::hold)s. Bytes not read are not released either: a
/// response the test stops reading is a reader that has stopped, and the server may send it
/// no more than the window it was granted. Dropping it resets its stream if still open.
pub struct H2Response {
    /// The status code (`:status`).
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    /// Everything of the body read so far.
    pub text: String,
    driver: Arc<Driver>,
    body: RecvStream,
    send: SendStream<Bytes>,
    end: Option<End>,
    holding: bool,
    unreleased: usize,
}

impl std::fmt::Debug for H2Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Response")
            .field("status", &self.status)
            .field("stream", &self.stream_id())
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

impl H2Response {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The stream's id on its connection.
    pub fn stream_id(&self) -> u32 {
        self.body.stream_id().as_u32()
    }

    /// Reads the next DATA frame's bytes, or `None` once the stream has ended.
    pub fn read_chunk(&mut self) -> Option<String> {
        if self.end.is_some() {
            return None;
        }
        loop {
            let data = self.driver.wait("the body's next bytes", self.body.data());
            let bytes = match data {
                Some(Ok(bytes)) => bytes,
                Some(Err(err)) => {
                    self.end = Some(End::of(&err));
                    return None;
                }
                None => {
                    self.end = Some(End::Clean);
                    return None;
                }
            };
            if self.holding {
                self.unreleased += bytes.len();
            } else {
                // The stream may be reset meanwhile; then there is nothing to release.
                let _ = self.body.flow_control().release_capacity(bytes.len());
            }
            if bytes.is_empty() {
                continue;
            }
            let text = String::from_utf8(bytes.to_vec()).expect("a UTF-8 body");
            self.text.push_str(&text);
            return Some(text);
        }
    }

    /// Reads until the body so far contains `needle`; fails if the stream ends first.
    pub fn read_until(&mut self, needle: &str) -> &str {
        while !self.text.contains(needle) {
            if self.read_chunk().is_none() {
                panic!(
                    "the body ended ({:?}) without {needle:?}: {:?}",
                    self.end, self.text
                );
            }
        }
        &self.text
    }

    /// Reads the rest of the body and says how the stream ended.
    pub fn read_to_end(&mut self) -> (&str, End) {
        while self.read_chunk().is_some() {}
        (&self.text, self.end.unwrap_or(End::Lost))
    }

    /// The whole body as JSON.
    pub fn json(mut self) -> Value {
        let (text, _) = self.read_to_end();
        serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text:?}"))
    }

    /// Stops releasing flow-control capacity: bytes read from now on stay counted against the
    /// window, and once it is used up the server can send no more on this stream, as to a
    /// reader that has stopped.
    pub fn hold(&mut self) {
        self.holding = true;
    }

    /// Releases every byte read while holding, and releases as it reads again. Bytes the
    /// server sent that the test has not read yet are released as they are read.
    pub fn release(&mut self) {
        self.holding = false;
        let held = std::mem::take(&mut self.unreleased);
        // The stream may be reset meanwhile; then there is nothing to release.
        let _ = self.body.flow_control().release_capacity(held);
    }

    /// The bytes the server may still send on this stream before the client releases some
    /// (the stream's receive window, less what arrived and is not released).
    pub fn window_left(&mut self) -> isize {
        self.body.flow_control().available_capacity()
    }

    /// Resets the stream (RST_STREAM CANCEL), as a browser does for an EventSource it closes.
    pub fn reset(mut self) {
        self.send.send_reset(Reason::CANCEL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_read_whole_however_the_reads_cut_them() {
        let mut wire = Frame::encode(kind::SETTINGS, 0, 0, &[0, 3, 0, 0, 1, 0]);
        wire.extend(Frame::encode(kind::DATA, 0x1, 1, b"hello"));
        wire.extend(Frame::encode(kind::SETTINGS, 0x1, 0, &[]));
        wire.extend(Frame::encode(kind::GOAWAY, 0, 0, &[0, 0, 0, 5, 0, 0, 0, 0]));
        for cut in 1..wire.len() {
            let mut reader = FrameReader::default();
            for piece in wire.chunks(cut) {
                reader.feed(piece);
            }
            assert_eq!(reader.data_bytes, 5, "DATA counted, not kept");
            let frames = &reader.frames;
            assert_eq!(frames.len(), 3, "{frames:?}");
            assert_eq!(
                frames[0].settings(),
                [(SETTINGS_MAX_CONCURRENT_STREAMS, 256)]
            );
            assert!(frames[1].settings().is_empty(), "an ACK has none");
            let goaway = reader.goaways().next().unwrap();
            assert_eq!(goaway.last_stream(), Some(5));
            assert_eq!(goaway.reason(), Some(Reason::NO_ERROR));
        }
    }
}
