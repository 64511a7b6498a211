//! The `-ws` protocols' WebSocket side, for the chat's `post.live` (and `post.create`, for servers
//! that take calls over WebSocket only): the frames a client sends, what the generator reads from
//! the server's frames, and a client on `tokio-tungstenite`. The wire is the one captured from the
//! real servers in `tests/fixtures/reference-ws/NOTES.md`. Not a general client: one subscription
//! per socket, no reconnect, no batching, no `connectionParams`.
//!
//! Frames are read with serde into small typed shapes that borrow nothing and keep only ids and
//! the title's stamp, so reading an event allocates nothing beyond tungstenite's own buffers.

use std::fmt;
use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::http::{HttpError, Url};
use crate::protocol::{parse_title, Protocol};

/// The request id of each subscriber's one `post.live` subscription.
pub const SUBSCRIPTION: u64 = 1;

/// A client's WebSocket.
pub type Socket = WebSocketStream<TcpStream>;

/// The WebSocket URL of a protocol's HTTP base: the same host, port and path.
///
/// ```
/// use outer_bench::{http::Url, ws};
/// let url = Url::parse("http://127.0.0.1:3000/trpc").unwrap();
/// assert_eq!(ws::url(&url), "ws://127.0.0.1:3000/trpc");
/// assert_eq!(ws::url(&Url::parse("http://localhost:80").unwrap()), "ws://localhost:80/");
/// ```
pub fn url(url: &Url) -> String {
    let path = if url.base.is_empty() { "/" } else { &url.base };
    format!("ws://{}{path}", url.authority)
}

/// The frame that subscribes to `post.live` with request id [`SUBSCRIPTION`], without input, as
/// the SSE subscribers call it (tRPC leaves `input` out; oRPC's `b: {}` is its `undefined`).
///
/// ```
/// use outer_bench::{protocol::Protocol, ws};
/// assert_eq!(
///     ws::subscribe_frame(Protocol::TrpcWs),
///     r#"{"id":1,"method":"subscription","params":{"path":"post.live"}}"#
/// );
/// assert_eq!(ws::subscribe_frame(Protocol::OrpcWs), r#"{"i":"1","p":{"u":"/post/live","b":{}}}"#);
/// ```
pub fn subscribe_frame(protocol: Protocol) -> String {
    match protocol.http() {
        Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => {
            format!(r#"{{"i":"{SUBSCRIPTION}","p":{{"u":"/post/live","b":{{}}}}}}"#)
        }
        Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => format!(
            r#"{{"id":{SUBSCRIPTION},"method":"subscription","params":{{"path":"post.live"}}}}"#
        ),
    }
}

/// The frame that calls `post.create` with `title` (plain ASCII without quotes or backslashes,
/// as for [`Protocol::publish_request`]) as request `request`.
///
/// ```
/// use outer_bench::{protocol::Protocol, ws};
/// assert_eq!(
///     ws::publish_frame(Protocol::TrpcWs, 2, "a"),
///     r#"{"id":2,"method":"mutation","params":{"input":{"title":"a"},"path":"post.create"}}"#
/// );
/// assert_eq!(
///     ws::publish_frame(Protocol::OrpcWs, 2, "a"),
///     r#"{"i":"2","p":{"u":"/post/create","b":{"json":{"title":"a"}}}}"#
/// );
/// ```
pub fn publish_frame(protocol: Protocol, request: u64, title: &str) -> String {
    match protocol.http() {
        Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => format!(
            r#"{{"i":"{request}","p":{{"u":"/post/create","b":{{"json":{{"title":"{title}"}}}}}}}}"#
        ),
        Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => format!(
            r#"{{"id":{request},"method":"mutation","params":{{"input":{{"title":"{title}"}},"path":"post.create"}}}}"#
        ),
    }
}

/// What a server's frame means to the generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// tRPC's keep-alive text `PING`: to be answered `PONG`.
    Ping,
    /// Request `request` began: a subscription's `started` (tRPC) or its response head (oRPC).
    Started {
        /// The request id.
        request: u64,
    },
    /// A post for request `request`: a subscription's event, whose `id` is the event's id (else
    /// the post's), or a call's answer, whose `id` is the post's. `stamp` is what the title says
    /// ([`parse_title`]), if anything.
    Post {
        /// The request id.
        request: u64,
        /// The event's (or post's) id.
        id: u64,
        /// The title's phase and send time.
        stamp: Option<(u8, u64)>,
    },
    /// Request `request` ended or failed (tRPC `stopped` or `error`; oRPC `done`, `error` or a
    /// response with a status other than 200); `None`: an error not tied to a request.
    End {
        /// The request id, if the server named one.
        request: Option<u64>,
        /// The frame, for the error message.
        text: String,
    },
    /// Nothing the generator acts on (`PONG`, tRPC's reconnect notice, another procedure's
    /// frame).
    Other,
}

/// Reads one text frame of `protocol`'s WebSocket wire.
///
/// ```
/// use outer_bench::{protocol::Protocol, ws::{parse, Frame}};
/// let tracked = r#"{"id":1,"result":{"type":"data","data":{"id":"7","data":{"id":7,"title":"1 42 x"}},"id":"7"}}"#;
/// assert_eq!(
///     parse(Protocol::TrpcWs, tracked).unwrap(),
///     Frame::Post { request: 1, id: 7, stamp: Some((1, 42)) }
/// );
/// let event = r#"{"i":"1","t":3,"p":{"e":"message","d":{"json":{"id":3,"title":"2 9 x"}},"m":{"id":"3"}}}"#;
/// assert_eq!(
///     parse(Protocol::OrpcWs, event).unwrap(),
///     Frame::Post { request: 1, id: 3, stamp: Some((2, 9)) }
/// );
/// ```
pub fn parse(protocol: Protocol, text: &str) -> Result<Frame, HttpError> {
    let frame = match protocol.http() {
        Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => parse_trpc(text),
        Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => parse_orpc(text),
    };
    frame.map_err(|err| HttpError(format!("a frame the generator cannot read ({err}): {text}")))
}

fn parse_trpc(text: &str) -> Result<Frame, serde_json::Error> {
    match text {
        "PING" => return Ok(Frame::Ping),
        "PONG" => return Ok(Frame::Other),
        _ => {}
    }
    let message: TrpcMessage = serde_json::from_str(text)?;
    let request = message.id.map(|Num(id)| id);
    if message.error.is_some() {
        return Ok(Frame::End {
            request,
            text: text.to_owned(),
        });
    }
    let (Some(request), Some(result)) = (request, message.result) else {
        return Ok(Frame::Other);
    };
    Ok(match result.kind {
        TrpcKind::Started => Frame::Started { request },
        TrpcKind::Stopped => Frame::End {
            request: Some(request),
            text: text.to_owned(),
        },
        TrpcKind::Data => {
            // Tracked: `{"id":"7","data":post}`; untracked, or a call's answer: the post.
            let Some(value) = result.data else {
                return Err(de::Error::missing_field("result.data"));
            };
            let Some(Num(id)) = value.id else {
                return Err(de::Error::missing_field("id"));
            };
            let title = match value.data {
                Some(post) => post.title,
                None => value.title,
            };
            Frame::Post {
                request,
                id,
                stamp: title.and_then(|Stamp(stamp)| stamp),
            }
        }
        TrpcKind::Other => Frame::Other,
    })
}

fn parse_orpc(text: &str) -> Result<Frame, serde_json::Error> {
    let message: OrpcMessage<'_> = serde_json::from_str(text)?;
    let (Some(Num(request)), Some(payload)) = (message.i, message.p) else {
        // Without a payload: a client's abort (`t: 4`), never sent by a server.
        return Ok(Frame::Other);
    };
    let end = || Frame::End {
        request: Some(request),
        text: text.to_owned(),
    };
    match message.t {
        // An event of an event iterator.
        Some(3) => Ok(match payload.e {
            Some(OrpcEvent::Message) => {
                let post = payload.d.and_then(|d| d.json);
                let id = payload
                    .m
                    .and_then(|m| m.id)
                    .or_else(|| post.as_ref().and_then(|p| p.id.clone()));
                let Some(Num(id)) = id else {
                    return Err(de::Error::missing_field("m.id"));
                };
                Frame::Post {
                    request,
                    id,
                    stamp: post.and_then(|p| p.title).and_then(|Stamp(stamp)| stamp),
                }
            }
            Some(OrpcEvent::Done | OrpcEvent::Error) => end(),
            Some(OrpcEvent::Other) | None => Frame::Other,
        }),
        // A response: a call's answer, or the head of an event iterator (no body).
        None => {
            if payload.s.is_some_and(|status| status != 200) {
                return Ok(end());
            }
            let Some(body) = payload.b else {
                return Ok(Frame::Started { request });
            };
            let post = serde_json::from_str::<Envelope>(body.get())?
                .json
                .ok_or_else(|| de::Error::missing_field("b.json"))?;
            let Some(Num(id)) = post.id else {
                return Err(de::Error::missing_field("b.json.id"));
            };
            Ok(Frame::Post {
                request,
                id,
                stamp: post.title.and_then(|Stamp(stamp)| stamp),
            })
        }
        Some(_) => Ok(Frame::Other),
    }
}

/// `{"id":…,"result":{…}}` or `{"id":…,"error":{…}}` (or the reconnect notice).
#[derive(Deserialize)]
struct TrpcMessage {
    id: Option<Num>,
    result: Option<TrpcResult>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct TrpcResult {
    #[serde(rename = "type")]
    kind: TrpcKind,
    data: Option<TrpcValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum TrpcKind {
    Started,
    Data,
    Stopped,
    #[serde(other)]
    Other,
}

/// A tRPC `data`: tracked `{"id":"7","data":{post}}`, or the post itself.
#[derive(Deserialize)]
struct TrpcValue {
    id: Option<Num>,
    data: Option<Post>,
    title: Option<Stamp>,
}

/// `{"i":"1","t":3,"p":{…}}`.
#[derive(Deserialize)]
struct OrpcMessage<'a> {
    i: Option<Num>,
    t: Option<u8>,
    #[serde(borrow)]
    p: Option<OrpcPayload<'a>>,
}

/// An event's `e`, `d`, `m`, or a response's `s`, `h`, `b`.
#[derive(Deserialize)]
struct OrpcPayload<'a> {
    e: Option<OrpcEvent>,
    d: Option<Envelope>,
    m: Option<Meta>,
    s: Option<u16>,
    // A response's body is an envelope when the status is 200, anything (a plain string for an
    // unknown procedure) otherwise: read only once the status is known.
    #[serde(borrow)]
    b: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum OrpcEvent {
    Message,
    Done,
    Error,
    #[serde(other)]
    Other,
}

/// oRPC's `{"json": value}`.
#[derive(Deserialize)]
struct Envelope {
    json: Option<Post>,
}

#[derive(Deserialize)]
struct Meta {
    id: Option<Num>,
}

/// A chat post, as far as the generator reads it.
#[derive(Deserialize)]
struct Post {
    id: Option<Num>,
    title: Option<Stamp>,
}

/// An id, as a number or a string of digits (both protocols send both).
#[derive(Clone)]
struct Num(u64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumVisitor;
        impl Visitor<'_> for NumVisitor {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer id, as a number or a string")
            }
            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Num, E> {
                Ok(Num(value))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Num, E> {
                value
                    .parse()
                    .map(Num)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(value), &self))
            }
        }
        deserializer.deserialize_any(NumVisitor)
    }
}

/// A title, read straight into its stamp: nothing of it is kept.
struct Stamp(Option<(u8, u64)>);

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StampVisitor;
        impl Visitor<'_> for StampVisitor {
            type Value = Stamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a title")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Stamp, E> {
                Ok(Stamp(parse_title(value.as_bytes())))
            }
        }
        deserializer.deserialize_str(StampVisitor)
    }
}

fn ws_error(err: tokio_tungstenite::tungstenite::Error) -> HttpError {
    HttpError(format!("WebSocket: {err}"))
}

/// Opens a WebSocket to `url` over `stream`.
pub async fn open(stream: TcpStream, url: &str) -> Result<Socket, HttpError> {
    // One read buffer per subscriber, and there may be 10,000 of them: 4 KiB, not tungstenite's
    // default 128 KiB. No write buffering: each frame goes out when sent.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (socket, _response) =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(ws_error)?;
    Ok(socket)
}

/// Sends one text frame.
pub async fn send(socket: &mut Socket, text: String) -> Result<(), HttpError> {
    socket.send(Message::text(text)).await.map_err(ws_error)
}

/// Reads up to the next frame the generator acts on: answers tRPC's `PING` itself, and skips
/// WebSocket pings, pongs and frames it has nothing to do with. An error when the socket closes.
pub async fn next(socket: &mut Socket, protocol: Protocol) -> Result<Frame, HttpError> {
    loop {
        let message = match socket.next().await {
            Some(message) => message.map_err(ws_error)?,
            None => return Err(HttpError("the WebSocket closed".into())),
        };
        let frame = match &message {
            Message::Text(text) => parse(protocol, text.as_str())?,
            // oRPC reads a binary frame holding JSON as it reads a text one.
            Message::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => parse(protocol, text)?,
                Err(_) => continue,
            },
            Message::Close(frame) => {
                return Err(HttpError(match frame {
                    Some(frame) => format!("the WebSocket closed: {} {}", frame.code, frame.reason),
                    None => "the WebSocket closed".into(),
                }))
            }
            // Answered by tungstenite at the next read or write.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        match frame {
            Frame::Ping => send(socket, "PONG".into()).await?,
            Frame::Other => {}
            frame => return Ok(frame),
        }
    }
}

/// Opens a WebSocket to `url` over `stream` and subscribes to `post.live` on it, up to the
/// server's answer that the subscription began (the equivalent of an SSE response's head).
pub async fn subscribe(
    stream: TcpStream,
    url: &str,
    protocol: Protocol,
) -> Result<Socket, HttpError> {
    let mut socket = open(stream, url).await?;
    send(&mut socket, subscribe_frame(protocol)).await?;
    loop {
        match next(&mut socket, protocol).await? {
            Frame::Started {
                request: SUBSCRIPTION,
            } => return Ok(socket),
            Frame::End {
                request: None | Some(SUBSCRIPTION),
                text,
            } => return Err(HttpError(format!("post.live refused: {text}"))),
            _ => {}
        }
    }
}

/// One WebSocket for `post.create` calls, opened at the first: a publisher's, for servers that
/// take calls over WebSocket only (the reference servers in `tests/fixtures/reference-ws`).
#[derive(Debug)]
pub struct Caller {
    addr: SocketAddr,
    url: String,
    protocol: Protocol,
    socket: Option<Socket>,
    next_request: u64,
}

impl Caller {
    /// A caller of the server at `url` (the protocol's HTTP base), reached at `addr`.
    pub fn new(addr: SocketAddr, base: &Url, protocol: Protocol) -> Self {
        Self {
            addr,
            url: url(base),
            protocol,
            socket: None,
            next_request: 1,
        }
    }

    /// Calls `post.create` with `title` and returns the new post's id.
    ///
    /// A socket that turns out closed before the answer (the tRPC server ends one that left its
    /// `PING` unanswered while the publisher was idle) is replaced once and the call made again.
    pub async fn create(&mut self, title: &str) -> Result<u64, HttpError> {
        let reused = self.socket.is_some();
        match self.try_create(title).await {
            Ok(id) => return Ok(id),
            Err((err, retry)) if !(retry && reused) => return Err(err),
            Err(_) => {}
        }
        self.try_create(title).await.map_err(|(err, _)| err)
    }

    /// The error says whether the call may be made again on a new socket.
    async fn try_create(&mut self, title: &str) -> Result<u64, (HttpError, bool)> {
        if self.socket.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| (e.into(), false))?;
            stream.set_nodelay(true).map_err(|e| (e.into(), false))?;
            self.socket = Some(open(stream, &self.url).await.map_err(|e| (e, false))?);
        }
        let Some(socket) = self.socket.as_mut() else {
            unreachable!("set just above")
        };
        let request = self.next_request;
        self.next_request += 1;
        let result = async {
            send(socket, publish_frame(self.protocol, request, title))
                .await
                .map_err(|e| (e, true))?;
            loop {
                match next(socket, self.protocol).await.map_err(|e| (e, true))? {
                    Frame::Post { request: r, id, .. } if r == request => return Ok(id),
                    Frame::End {
                        request: None,
                        text,
                    } => return Err((HttpError(format!("post.create: {text}")), false)),
                    Frame::End {
                        request: Some(r),
                        text,
                    } if r == request => {
                        return Err((HttpError(format!("post.create answered {text}")), false))
                    }
                    _ => {}
                }
            }
        }
        .await;
        if result.is_err() {
            self.socket = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trpc(text: &str) -> Frame {
        parse(Protocol::TrpcWs, text).unwrap()
    }

    fn orpc(text: &str) -> Frame {
        parse(Protocol::OrpcWs, text).unwrap()
    }

    #[test]
    fn trpc_frames_from_the_captures_read_as_the_generator_needs() {
        assert_eq!(trpc("PING"), Frame::Ping);
        assert_eq!(trpc("PONG"), Frame::Other);
        assert_eq!(
            trpc(r#"{"id":1,"result":{"type":"started"}}"#),
            Frame::Started { request: 1 }
        );
        // Untracked: the id is the post's.
        assert_eq!(
            trpc(r#"{"id":1,"result":{"type":"data","data":{"id":5,"title":"1 77 abc"}}}"#),
            Frame::Post {
                request: 1,
                id: 5,
                stamp: Some((1, 77))
            }
        );
        // A mutation's answer.
        assert_eq!(
            trpc(r#"{"id":3,"result":{"type":"data","data":{"id":3,"title":"b"}}}"#),
            Frame::Post {
                request: 3,
                id: 3,
                stamp: None
            }
        );
        assert!(matches!(
            trpc(r#"{"id":1,"result":{"type":"stopped"}}"#),
            Frame::End {
                request: Some(1),
                ..
            }
        ));
        assert!(matches!(
            trpc(
                r#"{"id":null,"error":{"message":"x","code":-32700,"data":{"code":"PARSE_ERROR","httpStatus":400}}}"#
            ),
            Frame::End { request: None, .. }
        ));
        assert_eq!(trpc(r#"{"id":null,"method":"reconnect"}"#), Frame::Other);
        assert!(parse(Protocol::TrpcWs, "not json").is_err());
        assert!(parse(
            Protocol::TrpcWs,
            r#"{"id":1,"result":{"type":"data","data":{"title":"no id"}}}"#
        )
        .is_err());
    }

    #[test]
    fn orpc_frames_from_the_captures_read_as_the_generator_needs() {
        assert_eq!(
            orpc(r#"{"i":"1","p":{"h":{"content-type":"text/event-stream"}}}"#),
            Frame::Started { request: 1 }
        );
        // Without meta the id is the post's.
        assert_eq!(
            orpc(r#"{"i":"1","t":3,"p":{"e":"message","d":{"json":{"id":4,"title":"2 5 x"}}}}"#),
            Frame::Post {
                request: 1,
                id: 4,
                stamp: Some((2, 5))
            }
        );
        assert_eq!(
            orpc(r#"{"i":"2","p":{"b":{"json":{"id":1,"title":"a"}}}}"#),
            Frame::Post {
                request: 2,
                id: 1,
                stamp: None
            }
        );
        assert!(matches!(
            orpc(r#"{"i":"1","p":{"s":404,"b":"No procedure matched"}}"#),
            Frame::End {
                request: Some(1),
                ..
            }
        ));
        assert!(matches!(
            orpc(
                r#"{"i":"1","t":3,"p":{"e":"error","d":{"json":{"defined":false,"code":"BAD_REQUEST","status":400,"message":"nope","data":{"why":"x"}}}}}"#
            ),
            Frame::End {
                request: Some(1),
                ..
            }
        ));
        assert!(matches!(
            orpc(r#"{"i":"1","t":3,"p":{"e":"done","d":{"json":{"done":true}}}}"#),
            Frame::End {
                request: Some(1),
                ..
            }
        ));
        assert_eq!(orpc(r#"{"i":"1","t":4}"#), Frame::Other);
    }

    #[test]
    fn every_capture_of_post_live_reads_without_error() {
        // The server's frames in the captures of `post.live`, as recorded from the real servers.
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/reference-ws"
        );
        for (protocol, file) in [
            (Protocol::TrpcWs, "trpc/subscription-tracked.jsonl"),
            (Protocol::TrpcWs, "trpc/resubscribe-after-cut.jsonl"),
            (Protocol::OrpcWs, "orpc/post-live.jsonl"),
            (Protocol::OrpcWs, "orpc/resume-after-cut.jsonl"),
        ] {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            let mut posts = 0;
            for line in text.lines() {
                let record: serde_json::Value = serde_json::from_str(line).unwrap();
                if record["dir"] != "server" || record["type"] != "text" {
                    continue;
                }
                let data = record["data"].as_str().unwrap();
                if let Frame::Post { .. } = parse(protocol, data).unwrap() {
                    posts += 1;
                }
            }
            assert!(posts > 0, "{file}: no post read");
        }
    }
}
