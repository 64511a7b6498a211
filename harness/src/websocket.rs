//! A blocking WebSocket client for tests, and the client's reading of both protocols' server
//! messages: what the conformance suite and the loopback properties speak over WebSocket.
//!
//! [`WsClient`] opens a socket on a server's protocol prefix (`/trpc`, `/rpc`), sends text or
//! binary messages and reads what comes back, with a deadline on every read so a hung server
//! fails a test instead of hanging it. [`decode_server_message`] turns one server message of a
//! subscription into the frame a client acts on (an event with its id, the end, an error), with
//! the same [`ClientFrame`] the SSE decoders give.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use outer_core::protocol::orpc::{self, ClientFrame};
use outer_core::{EventId, RpcError};
use serde_json::{json, Value};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use crate::protocol::trpc_error;
use crate::Protocol;

/// How long a read waits before the test fails.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

/// What a read gave.
#[derive(Debug, PartialEq)]
pub enum Received {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A WebSocket ping frame (tungstenite has answered it).
    Ping,
    /// The server's close frame: its code and reason (`None` for a close without a code).
    Close(Option<(u16, String)>),
    /// The connection ended without a close frame, as when the server is cut off.
    Dropped,
}

/// One client socket, blocking.
#[derive(Debug)]
pub struct WsClient {
    socket: WebSocket<TcpStream>,
}

impl WsClient {
    /// Opens a WebSocket to `path_and_query` (`/trpc`, `/trpc?connectionParams=1`) on `addr`.
    /// Panics when the server refuses the upgrade; see [`WsClient::try_connect`].
    pub fn connect(addr: SocketAddr, path_and_query: &str) -> Self {
        Self::try_connect(addr, path_and_query)
            .unwrap_or_else(|err| panic!("the WebSocket upgrade to {path_and_query} failed: {err}"))
    }

    /// Opens a WebSocket, or gives tungstenite's error (for a refusal: the HTTP response).
    pub fn try_connect(
        addr: SocketAddr,
        path_and_query: &str,
    ) -> Result<Self, Box<tungstenite::Error>> {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(READ_DEADLINE)).unwrap();
        stream.set_nodelay(true).unwrap();
        let url = format!("ws://{addr}{path_and_query}");
        match tungstenite::client(url.as_str(), stream) {
            Ok((socket, _)) => Ok(Self { socket }),
            Err(tungstenite::HandshakeError::Failure(err)) => Err(Box::new(err)),
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                panic!("a blocking handshake cannot be interrupted")
            }
        }
    }

    /// Sends a text message.
    pub fn send(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.to_owned().into()))
            .expect("send");
    }

    /// Sends a binary message.
    pub fn send_binary(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::Binary(bytes.to_vec().into()))
            .expect("send");
    }

    /// Reads the next message; fails the test after [`READ_DEADLINE`].
    pub fn recv(&mut self) -> Received {
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => return Received::Text(text.as_str().to_owned()),
                Ok(Message::Binary(bytes)) => return Received::Binary(bytes.to_vec()),
                Ok(Message::Ping(_)) => return Received::Ping,
                Ok(Message::Pong(_) | Message::Frame(_)) => {}
                Ok(Message::Close(frame)) => {
                    return Received::Close(
                        frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())),
                    )
                }
                Err(tungstenite::Error::Io(err))
                    if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    panic!("nothing arrived within {READ_DEADLINE:?}")
                }
                Err(
                    tungstenite::Error::ConnectionClosed
                    | tungstenite::Error::AlreadyClosed
                    | tungstenite::Error::Io(_)
                    | tungstenite::Error::Protocol(_),
                ) => return Received::Dropped,
                Err(err) => panic!("reading the socket failed: {err}"),
            }
        }
    }

    /// Reads the next text message, answering tRPC's `PING` and skipping ping frames; fails the
    /// test on anything else.
    pub fn recv_text(&mut self) -> String {
        loop {
            match self.recv() {
                Received::Text(text) if text == "PING" => self.send("PONG"),
                Received::Text(text) => return text,
                Received::Ping => {}
                other => panic!("expected a text message, got {other:?}"),
            }
        }
    }

    /// Reads the next text message as JSON.
    pub fn recv_json(&mut self) -> Value {
        let text = self.recv_text();
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("not JSON ({err}): {text}"))
    }

    /// Reads until the server closes, skipping everything else; the close's code and reason.
    pub fn recv_close(&mut self) -> Option<(u16, String)> {
        loop {
            match self.recv() {
                Received::Close(frame) => return frame,
                Received::Dropped => panic!("the connection dropped without a close frame"),
                _ => {}
            }
        }
    }

    /// Sets how long a read waits before the test fails (the default is 10 s).
    pub fn set_read_deadline(&mut self, deadline: Duration) {
        self.socket
            .get_ref()
            .set_read_timeout(Some(deadline))
            .unwrap();
    }

    /// Closes with a close frame, as a client that goes away politely does.
    pub fn close(mut self) {
        let _ = self.socket.close(Some(tungstenite::protocol::CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        let _ = self.socket.flush();
    }

    /// Drops the connection without a close frame, as a network failure does.
    pub fn cut(self) {
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }
}

/// The text that subscribes to `path` over `protocol`'s WebSocket, resuming after
/// `last_event_id`: tRPC's `subscription` message (id 1), or oRPC's request (id `"1"`), as the
/// real clients send them.
pub fn subscribe_message(
    protocol: Protocol,
    path: &str,
    input: Option<&Value>,
    last_event_id: Option<&EventId>,
) -> String {
    match protocol {
        Protocol::Trpc => {
            let mut params = serde_json::Map::new();
            if let Some(input) = input {
                params.insert("input".into(), input.clone());
            }
            params.insert("path".into(), json!(path));
            if let Some(id) = last_event_id {
                params.insert("lastEventId".into(), json!(id.as_str()));
            }
            json!({"id": 1, "method": "subscription", "params": params}).to_string()
        }
        Protocol::Orpc => {
            let mut payload = serde_json::Map::new();
            payload.insert("u".into(), json!(format!("/{}", path.replace('.', "/"))));
            let body = match input {
                Some(input) => json!({ "json": input }),
                None => json!({}),
            };
            payload.insert("b".into(), body);
            if let Some(id) = last_event_id {
                payload.insert("h".into(), json!({"last-event-id": id.as_str()}));
            }
            json!({"i": "1", "p": payload}).to_string()
        }
    }
}

/// What one server message means to a subscription.
#[derive(Debug)]
pub enum ServerMessage {
    /// The subscription runs (tRPC `started`, oRPC's headers-only answer).
    Opened,
    /// A frame of the stream: an event, the end, an error in the stream.
    Frame(ClientFrame),
    /// The call was refused before a stream opened (an oRPC answer with a status, a tRPC error
    /// before `started`).
    Refused(RpcError),
    /// tRPC's reconnect notice.
    Reconnect,
    /// Not about the subscription (`PING`, `PONG`, another id).
    Other,
}

/// Reads one server message of a subscription opened by [`subscribe_message`]. `opened` says
/// whether the stream has opened yet: a tRPC error before `started` is a refusal.
pub fn decode_server_message(
    protocol: Protocol,
    text: &str,
    opened: bool,
) -> Result<ServerMessage, RpcError> {
    if text == "PING" || text == "PONG" {
        return Ok(ServerMessage::Other);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|err| RpcError::internal(format!("not JSON ({err}): {text}")))?;
    match protocol {
        Protocol::Trpc => decode_trpc(&value, opened),
        Protocol::Orpc => decode_orpc(&value),
    }
}

fn decode_trpc(value: &Value, opened: bool) -> Result<ServerMessage, RpcError> {
    if value.get("method").and_then(Value::as_str) == Some("reconnect") {
        return Ok(ServerMessage::Reconnect);
    }
    if value.get("id") != Some(&json!(1)) {
        return Ok(ServerMessage::Other);
    }
    if let Some(shape) = value.get("error") {
        let error = trpc_error(shape);
        return Ok(if opened {
            ServerMessage::Frame(ClientFrame::Error(error))
        } else {
            ServerMessage::Refused(error)
        });
    }
    let result = value
        .get("result")
        .ok_or_else(|| RpcError::internal(format!("neither result nor error: {value}")))?;
    match result.get("type").and_then(Value::as_str) {
        Some("started") => Ok(ServerMessage::Opened),
        // tRPC does not send the return value.
        Some("stopped") => Ok(ServerMessage::Frame(ClientFrame::Done(Value::Null))),
        Some("data") => {
            let data = result.get("data").cloned().unwrap_or(Value::Null);
            let (data, id) = match result.get("id").and_then(Value::as_str) {
                // A tracked value comes as `{id, data}`.
                Some(id) => (data.get("data").cloned().unwrap_or(Value::Null), Some(id)),
                None => (data, None),
            };
            let mut event = outer_core::Event::new(data);
            if let Some(id) = id {
                event.meta_mut().set_id(id).map_err(RpcError::from)?;
            }
            Ok(ServerMessage::Frame(ClientFrame::Message(event)))
        }
        other => Err(RpcError::internal(format!(
            "unknown result type {other:?}: {value}"
        ))),
    }
}

fn decode_orpc(value: &Value) -> Result<ServerMessage, RpcError> {
    if value.get("i") != Some(&json!("1")) {
        return Ok(ServerMessage::Other);
    }
    let payload = value.get("p").cloned().unwrap_or(Value::Null);
    let data_bytes = |key: &str| payload.get(key).map(Value::to_string).unwrap_or_default();
    if value.get("t") == Some(&json!(3)) {
        let data = data_bytes("d");
        let frame = match payload.get("e").and_then(Value::as_str) {
            Some("message") => {
                let mut event = outer_core::Event::new(orpc::decode_answer(200, data.as_bytes())?);
                if let Some(meta) = payload.get("m") {
                    if let Some(id) = meta.get("id").and_then(Value::as_str) {
                        event.meta_mut().set_id(id).map_err(RpcError::from)?;
                    }
                    if let Some(retry) = meta.get("retry").and_then(Value::as_u64) {
                        event.meta_mut().set_retry(retry);
                    }
                }
                ClientFrame::Message(event)
            }
            Some("done") => ClientFrame::Done(orpc::decode_answer(200, data.as_bytes())?),
            Some("error") => {
                let status = payload
                    .pointer("/d/json/status")
                    .and_then(Value::as_u64)
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or(500);
                ClientFrame::Error(orpc::decode_error(status, data.as_bytes()))
            }
            other => return Err(RpcError::internal(format!("unknown event {other:?}"))),
        };
        return Ok(ServerMessage::Frame(frame));
    }
    if payload.get("b").is_none() {
        // Headers only: the stream opened.
        return Ok(ServerMessage::Opened);
    }
    let status = payload
        .get("s")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(200);
    if status == 200 {
        return Err(RpcError::internal(
            "a unary answer to a subscription".to_owned(),
        ));
    }
    Ok(ServerMessage::Refused(orpc::decode_error(
        status,
        data_bytes("b").as_bytes(),
    )))
}
