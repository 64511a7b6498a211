//! The wire protocols as the load generator speaks them, for the chat router's two procedures
//! only: `post.create` (publish) and `post.live` (subscribe). The byte layouts are in
//! `shared/protocols/{orpc,trpc}.md`; the WebSocket frames of the `-ws` variants are in
//! [`crate::ws`] (captured in `tests/fixtures/reference-ws/NOTES.md`); the `-h2` variants send
//! the same requests over HTTP/2 ([`crate::http2`]).

use std::fmt;
use std::str::FromStr;

use crate::http::{request, HttpError, Url};

/// Which protocol a server is driven with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// oRPC: `POST {base}/post/live` with an envelope body, events named `message`.
    Orpc,
    /// tRPC v11: `GET {base}/post.live`, unnamed events for values.
    Trpc,
    /// oRPC's websocket adapter: subscribers on `ws://…{base}`, one request frame each; posts
    /// over HTTP as [`Protocol::Orpc`].
    OrpcWs,
    /// tRPC's `wsLink`: subscribers on `ws://…{base}`, one `subscription` frame each; posts over
    /// HTTP as [`Protocol::Trpc`].
    TrpcWs,
    /// [`Protocol::Orpc`]'s `post.live` over HTTP/2 with prior knowledge; posts over HTTP/1.1.
    OrpcH2,
    /// [`Protocol::Trpc`]'s `post.live` over HTTP/2 with prior knowledge; posts over HTTP/1.1.
    TrpcH2,
}

impl FromStr for Protocol {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "orpc" => Ok(Protocol::Orpc),
            "trpc" => Ok(Protocol::Trpc),
            "orpc-ws" => Ok(Protocol::OrpcWs),
            "trpc-ws" => Ok(Protocol::TrpcWs),
            "orpc-h2" => Ok(Protocol::OrpcH2),
            "trpc-h2" => Ok(Protocol::TrpcH2),
            other => Err(format!(
                "--protocol takes orpc, trpc, orpc-ws, trpc-ws, orpc-h2 or trpc-h2, not {other:?}"
            )),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Orpc => "orpc",
            Protocol::Trpc => "trpc",
            Protocol::OrpcWs => "orpc-ws",
            Protocol::TrpcWs => "trpc-ws",
            Protocol::OrpcH2 => "orpc-h2",
            Protocol::TrpcH2 => "trpc-h2",
        })
    }
}

impl Protocol {
    /// The protocol over HTTP/1.1: itself, or the one a `-ws` or `-h2` variant posts with.
    ///
    /// ```
    /// use outer_bench::protocol::Protocol;
    /// assert_eq!(Protocol::TrpcWs.http(), Protocol::Trpc);
    /// assert_eq!(Protocol::OrpcH2.http(), Protocol::Orpc);
    /// assert_eq!(Protocol::Orpc.http(), Protocol::Orpc);
    /// ```
    pub fn http(self) -> Protocol {
        match self {
            Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => Protocol::Orpc,
            Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => Protocol::Trpc,
        }
    }

    /// Whether subscribers read a WebSocket rather than an SSE response.
    pub fn is_websocket(self) -> bool {
        matches!(self, Protocol::OrpcWs | Protocol::TrpcWs)
    }

    /// Whether subscribers read their SSE response over HTTP/2 ([`crate::http2`]).
    pub fn is_http2(self) -> bool {
        matches!(self, Protocol::OrpcH2 | Protocol::TrpcH2)
    }

    /// The method, path and body of the request that opens a `post.live` stream (with `accept:
    /// text/event-stream`), whatever carries it.
    ///
    /// ```
    /// use outer_bench::{http::Url, protocol::Protocol};
    /// let url = Url::parse("http://127.0.0.1:3200/rpc").unwrap();
    /// assert_eq!(
    ///     Protocol::OrpcH2.subscribe_parts(&url),
    ///     ("POST", "/rpc/post/live".to_string(), &b"{}"[..])
    /// );
    /// ```
    pub fn subscribe_parts(self, url: &Url) -> (&'static str, String, &'static [u8]) {
        match self.http() {
            // An envelope without `json` is oRPC's `undefined` input, as the client sends it.
            Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => {
                ("POST", format!("{}/post/live", url.base), b"{}")
            }
            Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => {
                ("GET", format!("{}/post.live", url.base), b"")
            }
        }
    }

    /// The request that opens a `post.live` stream over SSE on HTTP/1.1 (for a `-ws` or `-h2`
    /// variant, the one its HTTP protocol would send).
    ///
    /// ```
    /// use outer_bench::{http::Url, protocol::Protocol};
    /// let url = Url::parse("http://127.0.0.1:3200/trpc").unwrap();
    /// let wire = Protocol::Trpc.subscribe_request(&url);
    /// assert!(wire.starts_with(b"GET /trpc/post.live HTTP/1.1\r\n"));
    /// ```
    pub fn subscribe_request(self, url: &Url) -> Vec<u8> {
        let (method, path, body) = self.subscribe_parts(url);
        request(
            method,
            &path,
            &url.authority,
            "accept: text/event-stream\r\n",
            body,
        )
    }

    /// The request that publishes a post with `title` (a JSON string's content: no escaping is
    /// done, so keep it to plain ASCII without quotes or backslashes).
    pub fn publish_request(self, url: &Url, title: &str) -> Vec<u8> {
        match self.http() {
            Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => request(
                "POST",
                &format!("{}/post/create", url.base),
                &url.authority,
                "",
                format!("{{\"json\":{{\"title\":\"{title}\"}}}}").as_bytes(),
            ),
            Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => request(
                "POST",
                &format!("{}/post.create", url.base),
                &url.authority,
                "",
                format!("{{\"title\":\"{title}\"}}").as_bytes(),
            ),
        }
    }

    /// The id of the post a `post.create` answer carries.
    ///
    /// ```
    /// use outer_bench::protocol::Protocol;
    /// assert_eq!(Protocol::Orpc.created_id(br#"{"json":{"id":7,"title":"x"}}"#).unwrap(), 7);
    /// assert_eq!(
    ///     Protocol::Trpc.created_id(br#"{"result":{"data":{"id":8,"title":"x"}}}"#).unwrap(),
    ///     8
    /// );
    /// ```
    pub fn created_id(self, body: &[u8]) -> Result<u64, HttpError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|err| HttpError(format!("post.create answered non-JSON: {err}")))?;
        let post = match self.http() {
            Protocol::Orpc | Protocol::OrpcWs | Protocol::OrpcH2 => &value["json"],
            Protocol::Trpc | Protocol::TrpcWs | Protocol::TrpcH2 => &value["result"]["data"],
        };
        post["id"].as_u64().ok_or_else(|| {
            HttpError(format!(
                "post.create answered without a post id: {}",
                String::from_utf8_lossy(body)
            ))
        })
    }

    /// Whether an SSE event of this type carries a post (rather than being the protocol's
    /// `connected`, `ping` or end event).
    pub fn is_post(self, event_type: &str) -> bool {
        // Both protocols leave the type at the default `message` for values: oRPC names it,
        // tRPC writes no `event:` line.
        event_type == "message"
    }
}

/// A post title that carries its phase and send time, padded to `len` bytes (at least what the
/// numbers need): `"<phase> <nanoseconds> xxxx..."`.
///
/// ```
/// use outer_bench::protocol::{parse_stamp, stamped_title};
/// let title = stamped_title(1, 123_456_789, 40);
/// assert_eq!(title.len(), 40);
/// let data = format!(r#"{{"json":{{"id":3,"title":"{title}"}}}}"#);
/// assert_eq!(parse_stamp(data.as_bytes()), Some((1, 123_456_789)));
/// ```
pub fn stamped_title(phase: u8, nanos: u64, len: usize) -> String {
    let mut title = format!("{phase} {nanos} ");
    while title.len() < len {
        title.push(char::from(b'a' + (title.len() % 26) as u8));
    }
    title
}

/// Finds the phase and send time in an event's data (`..."title":"<phase> <ns> ..."...`).
pub fn parse_stamp(data: &[u8]) -> Option<(u8, u64)> {
    const KEY: &[u8] = b"\"title\":\"";
    let at = memchr::memmem::find(data, KEY)? + KEY.len();
    parse_title(&data[at..])
}

/// Finds the phase and send time at the start of a title (`<phase> <ns> ...`).
///
/// ```
/// use outer_bench::protocol::{parse_title, stamped_title};
/// assert_eq!(parse_title(stamped_title(2, 42, 30).as_bytes()), Some((2, 42)));
/// assert_eq!(parse_title(b"hello"), None);
/// ```
pub fn parse_title(rest: &[u8]) -> Option<(u8, u64)> {
    let phase = rest.first()?.checked_sub(b'0').filter(|d| *d <= 9)?;
    if rest.get(1) != Some(&b' ') {
        return None;
    }
    let mut nanos: u64 = 0;
    let mut digits = 0;
    for &byte in &rest[2..] {
        match byte {
            b'0'..=b'9' => {
                nanos = nanos.checked_mul(10)?.checked_add(u64::from(byte - b'0'))?;
                digits += 1;
            }
            _ => break,
        }
    }
    (digits > 0).then_some((phase, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_found_in_both_envelopes_and_refused_elsewhere() {
        let title = stamped_title(2, 99, 10);
        let orpc = format!(r#"{{"json":{{"id":1,"title":"{title}"}}}}"#);
        let trpc = format!(r#"{{"id":1,"title":"{title}"}}"#);
        assert_eq!(parse_stamp(orpc.as_bytes()), Some((2, 99)));
        assert_eq!(parse_stamp(trpc.as_bytes()), Some((2, 99)));
        assert_eq!(parse_stamp(br#"{"title":"hello"}"#), None);
        assert_eq!(parse_stamp(br#"{"id":1}"#), None);
    }

    #[test]
    fn publish_requests_carry_the_envelope_each_protocol_expects() {
        let url = Url::parse("http://localhost:1/x").unwrap();
        let orpc = String::from_utf8(Protocol::Orpc.publish_request(&url, "t")).unwrap();
        assert!(orpc.starts_with("POST /x/post/create HTTP/1.1\r\n"));
        assert!(orpc.ends_with("\r\n\r\n{\"json\":{\"title\":\"t\"}}"));
        let trpc = String::from_utf8(Protocol::Trpc.publish_request(&url, "t")).unwrap();
        assert!(trpc.starts_with("POST /x/post.create HTTP/1.1\r\n"));
        assert!(trpc.ends_with("\r\n\r\n{\"title\":\"t\"}"));
    }
}
