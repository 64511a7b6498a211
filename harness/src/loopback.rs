//! A blocking HTTP/1.1 client for loopback tests: it sends requests as raw bytes and reads
//! bodies chunk by chunk, so a test sees the bytes a server wrote as they arrive, how the body
//! ended (cleanly or cut), and can disconnect at any moment. It needs no runtime, so one test
//! drives a server on any adapter the same way.
//!
//! It is a test client: it panics with a clear message on anything it does not expect.
//! Every read has a deadline ([`DEADLINE`]), so a hung server fails a test instead of hanging it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use outer_core::{Event, EventId, RpcError};
use serde_json::Value;

use crate::http2::{H2Client, H2Response};
use crate::protocol::{decode_refusal, Protocol};
use crate::subscriber::{events, Seen, Subscriber};
use crate::websocket::{decode_server_message, Received, ServerMessage, WsClient};
use outer_core::protocol::orpc::ClientFrame;

/// How long any one wait may take before the test fails as hung.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Polls `done` until it holds, failing the test after [`DEADLINE`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < DEADLINE, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads a connection as fast as the server writes it, on a thread of its own, counting the
/// bytes: a client that never holds a stream back. Dropping it stops the reading.
#[derive(Debug)]
pub struct FlatOutReader {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    read: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FlatOutReader {
    /// Sends `request` on a new connection to `addr` and reads all that comes back.
    pub fn start(addr: SocketAddr, request: &[u8]) -> Self {
        use std::sync::atomic::Ordering;
        let mut stream = open(addr, request);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let read = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let thread = {
            let (stop, read) = (stop.clone(), read.clone());
            std::thread::spawn(move || {
                let mut buffer = vec![0; 64 * 1024];
                while !stop.load(Ordering::SeqCst) {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read.fetch_add(n, Ordering::SeqCst),
                    };
                }
            })
        };
        Self {
            stop,
            read,
            thread: Some(thread),
        }
    }

    /// The bytes read so far.
    pub fn bytes(&self) -> usize {
        self.read.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FlatOutReader {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a response body ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Its framing said it was complete (the last chunk, or all of its content-length).
    Clean,
    /// The connection closed before that.
    Cut,
}

/// A response read off the wire: the status and headers at once, the body as it comes.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    /// Everything of the body read so far, decoded from its framing.
    pub text: String,
    framing: Framing,
    end: Option<End>,
}

#[derive(Debug)]
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
}

/// Opens a connection and sends `request` as is, without waiting for an answer.
pub fn open(addr: SocketAddr, request: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.write_all(request).expect("write the request");
    stream
}

/// Opens a connection, sends `request` as is, and reads the answer's head.
pub fn send(addr: SocketAddr, request: &[u8]) -> RawResponse {
    read_response(open(addr, request))
}

/// Whether the server closed `stream` (rather than answering on it), within [`DEADLINE`].
pub fn closed_by_server(mut stream: TcpStream) -> bool {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => bytes.is_empty(),
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

/// `POST {path}` with a JSON body.
pub fn post(addr: SocketAddr, path: &str, body: &str) -> RawResponse {
    let request = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    send(addr, request.as_bytes())
}

/// Reads the head of the answer to a request already sent on `stream`; the body as it comes.
pub fn read_response(stream: TcpStream) -> RawResponse {
    read_head(BufReader::new(stream))
}

fn read_head(mut reader: BufReader<TcpStream>) -> RawResponse {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read the status line");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("read a header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let find = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let framing = if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        Framing::Chunked
    } else if let Some(length) = find("content-length") {
        Framing::Length(length.parse().expect("a content-length"))
    } else {
        Framing::UntilClose
    };
    RawResponse {
        status,
        headers,
        reader,
        text: String::new(),
        framing,
        end: None,
    }
}

impl RawResponse {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads the next piece of the body (one chunk when chunked), or `None` at its end.
    pub fn read_chunk(&mut self) -> Option<String> {
        if self.end.is_some() {
            return None;
        }
        let bytes = match self.framing {
            Framing::Chunked => {
                let mut size = String::new();
                if self.reader.read_line(&mut size).expect("read a chunk size") == 0 {
                    self.end = Some(End::Cut);
                    return None;
                }
                let hex = size.trim_end().split(';').next().unwrap_or_default();
                let len = usize::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
                let mut bytes = vec![0; len + 2];
                self.reader.read_exact(&mut bytes).expect("read a chunk");
                assert_eq!(&bytes[len..], b"\r\n", "a chunk ends with CRLF");
                bytes.truncate(len);
                if len == 0 {
                    self.end = Some(End::Clean);
                    return None;
                }
                bytes
            }
            Framing::Length(len) => {
                let mut bytes = vec![0; len];
                self.reader.read_exact(&mut bytes).expect("read the body");
                self.end = Some(End::Clean);
                bytes
            }
            Framing::UntilClose => {
                let mut bytes = Vec::new();
                self.reader.read_to_end(&mut bytes).expect("read the body");
                self.end = Some(End::Cut);
                bytes
            }
        };
        let text = String::from_utf8(bytes).expect("a UTF-8 body");
        self.text.push_str(&text);
        Some(text)
    }

    /// Reads until the body so far contains `needle`; fails if the body ends first.
    pub fn read_until(&mut self, needle: &str) -> &str {
        while !self.text.contains(needle) {
            if self.read_chunk().is_none() {
                panic!("the body ended without {needle:?}: {:?}", self.text);
            }
        }
        &self.text
    }

    /// Reads the rest of the body and says how it ended.
    pub fn read_to_end(&mut self) -> (&str, End) {
        while self.read_chunk().is_some() {}
        (&self.text, self.end.unwrap_or(End::Cut))
    }

    /// The whole body as JSON.
    pub fn json(mut self) -> Value {
        let (text, _) = self.read_to_end();
        serde_json::from_str(text).unwrap_or_else(|err| panic!("{err}: {text:?}"))
    }

    /// Closes the connection, as a client that goes away does.
    pub fn disconnect(self) {
        drop(self.reader);
    }

    /// The answer to the next request pipelined on this connection, once this one is read.
    pub fn next_response(self) -> RawResponse {
        assert!(self.end.is_some(), "this response is not read to its end");
        read_head(self.reader)
    }

    /// The connection, to read what comes after this response.
    pub fn into_stream(self) -> TcpStream {
        assert!(
            self.reader.buffer().is_empty(),
            "bytes after the response: {:?}",
            self.reader.buffer()
        );
        self.reader.into_inner()
    }
}

/// One subscription over real loopback HTTP, across as many connections as it takes: the
/// socket counterpart of [`Session`](crate::Session), with the same client logic (decoder,
/// frame reader, the core's resume decisions) and the same record of what was seen.
#[derive(Debug)]
pub struct LoopbackSession {
    addr: SocketAddr,
    prefix: String,
    client: Subscriber,
    transport: Transport,
    response: Option<RawResponse>,
    socket: Option<WsClient>,
    /// Over HTTP/2: the connection and the stream's response on it.
    h2: Option<(H2Client, H2Response)>,
}

/// How a [`LoopbackSession`] reaches the server: an HTTP request per connection with the
/// stream as Server-Sent Events, or a WebSocket per connection with the subscription on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// One HTTP request per connection, the stream as Server-Sent Events.
    Http,
    /// One WebSocket per connection, upgraded at the protocol's prefix.
    WebSocket,
    /// One HTTP/2 connection (prior knowledge) per connection, the stream as Server-Sent
    /// Events on one of its streams.
    Http2,
}

impl Transport {
    /// Every transport, for suites that run each case on each.
    pub const ALL: [Transport; 3] = [Transport::Http, Transport::WebSocket, Transport::Http2];
}

impl LoopbackSession {
    /// A session that will subscribe, speaking `protocol`, to the procedure at the dotted
    /// `path` on the server at `addr`, under the protocol's default prefix (`/rpc`, `/trpc`).
    pub fn new(addr: SocketAddr, protocol: Protocol, path: &str, input: Option<Value>) -> Self {
        Self {
            addr,
            prefix: protocol.default_prefix().into(),
            client: Subscriber::new(protocol, path, input),
            transport: Transport::Http,
            response: None,
            socket: None,
            h2: None,
        }
    }

    /// The same session over `transport`.
    pub fn over(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Subscribes on a new WebSocket, and reads until the stream opens or is refused.
    fn connect_websocket(&mut self) {
        let mut socket = WsClient::connect(self.addr, &self.prefix);
        socket.send(&self.client.next_ws_message());
        let protocol = self.client.protocol();
        loop {
            match socket.recv() {
                Received::Text(text) if text == "PING" => socket.send("PONG"),
                Received::Text(text) => match decode_server_message(protocol, &text, false) {
                    Ok(ServerMessage::Opened) => {
                        self.socket = Some(socket);
                        return;
                    }
                    Ok(ServerMessage::Refused(error)) => {
                        socket.close();
                        self.client.refused(error);
                        return;
                    }
                    Ok(ServerMessage::Frame(_)) => {
                        let error = RpcError::internal("a frame before the stream opened");
                        self.client.frame(Err(error));
                    }
                    Ok(ServerMessage::Reconnect | ServerMessage::Other) => {}
                    Err(error) => self.client.frame(Err(error)),
                },
                Received::Ping | Received::Binary(_) => {}
                Received::Close(_) | Received::Dropped => {
                    self.client.closed();
                    return;
                }
            }
        }
    }

    /// Reads one WebSocket message into the client; false when the socket is gone.
    fn read_websocket(&mut self, deliver: bool) -> bool {
        let protocol = self.client.protocol();
        let Some(socket) = self.socket.as_mut() else {
            return false;
        };
        match socket.recv() {
            Received::Text(text) if text == "PING" => socket.send("PONG"),
            Received::Text(text) if deliver => {
                match decode_server_message(protocol, &text, true) {
                    Ok(ServerMessage::Frame(frame)) => {
                        let ends = !matches!(frame, ClientFrame::Message(_));
                        self.client.frame(Ok(Some(frame)));
                        if ends {
                            // The stream is over; the socket is not needed any more.
                            if let Some(socket) = self.socket.take() {
                                socket.close();
                            }
                            return false;
                        }
                    }
                    Ok(ServerMessage::Refused(error)) => self.client.frame(Err(error)),
                    Ok(_) => {}
                    Err(error) => self.client.frame(Err(error)),
                }
            }
            Received::Text(_) | Received::Ping | Received::Binary(_) => {}
            Received::Close(_) | Received::Dropped => {
                self.socket = None;
                self.client.closed();
                return false;
            }
        }
        true
    }

    /// Opens a connection (closing the open one, if any), resuming after the last event id
    /// seen. A refusal is recorded as [`Seen::Error`]. Does nothing once finished.
    pub fn connect(&mut self) {
        if self.client.finished().is_some() {
            return;
        }
        self.disconnect();
        if self.transport == Transport::WebSocket {
            return self.connect_websocket();
        }
        if self.transport == Transport::Http2 {
            return self.connect_http2();
        }
        let request = self.client.next_request();
        let mut response = send(self.addr, &request.to_http(&self.prefix));
        if response.status == 200 {
            self.response = Some(response);
        } else {
            let status = response.status;
            let (body, _) = response.read_to_end();
            let error = decode_refusal(self.client.protocol(), status, body.as_bytes());
            self.client.refused(error);
        }
    }

    /// Sends the next connections to the server at `addr`, as a client whose server went away
    /// reaches another instance: what was seen and the last event id stay.
    pub fn set_addr(&mut self, addr: SocketAddr) {
        self.addr = addr;
    }

    /// Subscribes on a new HTTP/2 connection.
    fn connect_http2(&mut self) {
        let request = self.client.next_request();
        let client = H2Client::connect(self.addr);
        let mut path = format!("{}{}", self.prefix, request.route);
        if !request.query.is_empty() {
            path.push('?');
            path.push_str(&request.query);
        }
        let headers: Vec<(&str, &str)> = request
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let mut call = client.open(request.method, &path, &headers);
        call.send(request.body.as_bytes(), true);
        let mut response = call.response();
        if response.status == 200 {
            self.h2 = Some((client, response));
        } else {
            let status = response.status;
            let (body, _) = response.read_to_end();
            let error = decode_refusal(self.client.protocol(), status, body.as_bytes());
            client.close();
            self.client.refused(error);
        }
    }

    /// Whether a connection is open.
    pub fn is_connected(&self) -> bool {
        self.response.is_some() || self.socket.is_some() || self.h2.is_some()
    }

    /// Reads until `n` more events have arrived, or the session finishes, or the stream ends
    /// (then the connection is closed and the resume logic told). Returns how many arrived.
    pub fn read_events(&mut self, n: usize) -> usize {
        let before = self.client.event_count();
        while self.client.event_count() < before.saturating_add(n)
            && self.client.finished().is_none()
        {
            if self.socket.is_some() {
                if !self.read_websocket(true) {
                    break;
                }
                continue;
            }
            let chunk = match (self.response.as_mut(), self.h2.as_mut()) {
                (Some(response), _) => response.read_chunk(),
                (None, Some((_, response))) => response.read_chunk(),
                (None, None) => break,
            };
            match chunk {
                Some(chunk) => self.client.receive(chunk.as_bytes()),
                None => {
                    self.response = None;
                    if let Some((client, _)) = self.h2.take() {
                        client.close();
                    }
                    self.client.closed();
                }
            }
        }
        self.client.event_count() - before
    }

    /// Reads until the stream ends (the server closes it or the session finishes).
    pub fn read_to_end(&mut self) {
        while self.is_connected() && self.client.finished().is_none() {
            self.read_events(usize::MAX);
        }
        if self.client.finished().is_some() {
            self.disconnect();
        }
    }

    /// Reads one piece of the body, delivers only its first `keep` bytes, and disconnects:
    /// the rest was in flight and is lost, as when a connection drops in the middle of an event.
    pub fn disconnect_mid_read(&mut self, keep: usize) {
        if self.socket.is_some() {
            // A WebSocket delivers whole messages: the one in flight is lost whole.
            if self.read_websocket(false) {
                if let Some(socket) = self.socket.take() {
                    socket.cut();
                    self.client.closed();
                }
            }
            return;
        }
        let chunk = match (self.response.as_mut(), self.h2.as_mut()) {
            (Some(response), _) => response.read_chunk(),
            (None, Some((_, response))) => response.read_chunk(),
            (None, None) => None,
        };
        if let Some(chunk) = chunk {
            let bytes = chunk.as_bytes();
            self.client.receive(&bytes[..keep.min(bytes.len())]);
        }
        self.disconnect();
    }

    /// Closes the connection, as a client that goes away does.
    pub fn disconnect(&mut self) {
        if let Some(response) = self.response.take() {
            response.disconnect();
            self.client.closed();
        }
        if let Some(socket) = self.socket.take() {
            socket.close();
            self.client.closed();
        }
        if let Some((client, response)) = self.h2.take() {
            response.reset();
            client.close();
            self.client.closed();
        }
    }

    /// Everything seen so far, across connections.
    pub fn seen(&self) -> &[Seen] {
        self.client.seen()
    }

    /// The events seen, in order.
    pub fn events(&self) -> impl Iterator<Item = &Event<Value>> {
        events(self.client.seen())
    }

    /// How many connections were opened.
    pub fn connections(&self) -> usize {
        self.client.connections()
    }

    /// `Some(Ok(()))` after `done`, `Some(Err(e))` after the client gave up with `e`.
    pub fn finished(&self) -> Option<&Result<(), RpcError>> {
        self.client.finished()
    }

    /// The id the next connection resumes after.
    pub fn last_event_id(&self) -> Option<&EventId> {
        self.client.last_event_id()
    }
}
