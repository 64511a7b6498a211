//! Just enough HTTP/1.1 for a load generator: write a request, read a response head, undo
//! chunked transfer coding incrementally. Not a general client: no redirects, no TLS, no
//! pipelining, and the server is trusted to speak HTTP correctly.
//!
//! Hand-written rather than hyper's client so that each of 10,000 subscribers costs one socket,
//! one read buffer and a few bytes of parsing state, and reading an event costs one `read`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// An error talking to the server, with what was being done.
#[derive(Debug)]
pub struct HttpError(pub String);

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

impl From<std::io::Error> for HttpError {
    fn from(err: std::io::Error) -> Self {
        HttpError(err.to_string())
    }
}

fn bad(what: impl Into<String>) -> HttpError {
    HttpError(what.into())
}

/// A server's base URL, split: `http://127.0.0.1:3000/rpc` is host `127.0.0.1:3000`, base path
/// `/rpc`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// `host:port` as given, for the `host` header.
    pub authority: String,
    /// The path every procedure path is appended to, without a trailing `/`.
    pub base: String,
}

impl Url {
    /// Parses `http://host[:port][/path]`.
    ///
    /// ```
    /// use outer_bench::http::Url;
    /// let url = Url::parse("http://127.0.0.1:3000/rpc/").unwrap();
    /// assert_eq!((url.authority.as_str(), url.base.as_str()), ("127.0.0.1:3000", "/rpc"));
    /// ```
    pub fn parse(text: &str) -> Result<Self, HttpError> {
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| bad(format!("{text}: only http:// URLs are supported")))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad(format!("{text}: no host")));
        }
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Url {
            authority,
            base: path.trim_end_matches('/').to_string(),
        })
    }

    /// Resolves the host to a socket address.
    pub async fn resolve(&self) -> Result<SocketAddr, HttpError> {
        tokio::net::lookup_host(&self.authority)
            .await?
            .next()
            .ok_or_else(|| bad(format!("{}: no address", self.authority)))
    }
}

/// A request's bytes: `method path`, the host, `extra` header lines (each ending in CRLF) and
/// the body with its length.
pub fn request(method: &str, path: &str, host: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nhost: {host}\r\n{extra}");
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!(
            "content-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        ));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// What the generator needs from a response head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// `transfer-encoding: chunked`.
    pub chunked: bool,
    /// `content-length`, when given.
    pub content_length: Option<usize>,
}

/// Parses a response head from the start of `buf`: `Ok(None)` until its blank line has arrived,
/// else the head and its length in bytes.
///
/// ```
/// use outer_bench::http::parse_head;
/// let (head, len) = parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n")
///     .unwrap()
///     .unwrap();
/// assert_eq!((head.status, head.chunked, len), (200, true, 47));
/// ```
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HttpError> {
    let Some(end) = memchr::memmem::find(buf, b"\r\n\r\n") else {
        if buf.len() > 64 * 1024 {
            return Err(bad("a response head longer than 64 KiB"));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| bad("a response head not in UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad(format!("a bad status line: {status_line:?}")))?;
    let mut head = Head {
        status,
        chunked: false,
        content_length: None,
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().ok();
        }
    }
    Ok(Some((head, end + 4)))
}

/// Undoes chunked transfer coding, a piece at a time, with a few bytes of state.
#[derive(Clone, Debug, Default)]
pub struct Dechunker {
    state: Chunk,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk size in hex; `digits` says whether any digit came yet.
    #[default]
    SizeStart,
    Size {
        size: u64,
    },
    /// After the size: an extension up to the line end.
    SizeRest {
        size: u64,
    },
    Data {
        left: u64,
    },
    /// The CRLF after a chunk's data.
    DataEnd,
    /// After the last (empty) chunk: trailer lines up to an empty one.
    TrailerLineStart,
    TrailerLine,
    Done,
}

impl Dechunker {
    /// A decoder at the start of a chunked body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last chunk and the trailer have been read: the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == Chunk::Done
    }

    /// Reads `input` up to the next piece of body data and returns it, advancing `input` past
    /// it. `Ok(None)` when `input` is used up (or the body is done) without more data.
    ///
    /// ```
    /// use outer_bench::http::Dechunker;
    /// let mut d = Dechunker::new();
    /// let mut input: &[u8] = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
    /// let mut body = Vec::new();
    /// while let Some(piece) = d.next_piece(&mut input).unwrap() {
    ///     body.extend_from_slice(piece);
    /// }
    /// assert_eq!(body, b"abcde");
    /// assert!(d.is_done());
    /// ```
    pub fn next_piece<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, HttpError> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                Chunk::Data { left } => {
                    let take = input.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let (piece, rest) = input.split_at(take);
                    *input = rest;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data { left }
                    };
                    return Ok(Some(piece));
                }
                Chunk::Done => return Ok(None),
                _ => {}
            }
            *input = rest;
            self.state = match (self.state, byte) {
                (Chunk::SizeStart, _) => Chunk::Size {
                    size: hex(byte).ok_or_else(|| bad("a chunk size that is not hex"))?,
                },
                (Chunk::Size { size }, b'\r' | b';' | b' ' | b'\t') => Chunk::SizeRest { size },
                (Chunk::Size { size } | Chunk::SizeRest { size }, b'\n') if size == 0 => {
                    Chunk::TrailerLineStart
                }
                (Chunk::Size { size } | Chunk::SizeRest { size }, b'\n') => {
                    Chunk::Data { left: size }
                }
                (Chunk::Size { size }, _) => {
                    let digit = hex(byte).ok_or_else(|| bad("a chunk size that is not hex"))?;
                    if size >> 56 != 0 {
                        return Err(bad("a chunk size too large"));
                    }
                    Chunk::Size {
                        size: size * 16 + digit,
                    }
                }
                (Chunk::SizeRest { size }, _) => Chunk::SizeRest { size },
                (Chunk::DataEnd, b'\r') => Chunk::DataEnd,
                (Chunk::DataEnd, b'\n') => Chunk::SizeStart,
                (Chunk::DataEnd, _) => return Err(bad("no CRLF after a chunk")),
                (Chunk::TrailerLineStart, b'\r') => Chunk::TrailerLineStart,
                (Chunk::TrailerLineStart, b'\n') => Chunk::Done,
                (Chunk::TrailerLine, b'\n') => Chunk::TrailerLineStart,
                (Chunk::TrailerLineStart | Chunk::TrailerLine, _) => Chunk::TrailerLine,
                (Chunk::Data { .. } | Chunk::Done, _) => unreachable!("handled above"),
            };
        }
        Ok(None)
    }
}

fn hex(byte: u8) -> Option<u64> {
    (byte as char).to_digit(16).map(u64::from)
}

/// One keep-alive connection for unary calls: the publisher's.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Connection {
    /// A connection to `addr`, opened at the first call.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Sends `request` and reads the whole response: its status and body.
    ///
    /// If a kept-alive connection turns out closed before any byte of the answer (servers
    /// close idle connections: Node after 5 s), the request is sent once more on a new one.
    pub async fn call(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        let reused = self.stream.is_some();
        match self.try_call(request).await {
            Err(Retry::Fresh(_)) if reused => {}
            Err(Retry::Fresh(err) | Retry::Fatal(err)) => {
                self.stream = None;
                return Err(err);
            }
            Ok(answer) => return Ok(answer),
        }
        self.stream = None;
        self.try_call(request)
            .await
            .map_err(|(Retry::Fresh(err) | Retry::Fatal(err))| {
                self.stream = None;
                err
            })
    }

    async fn try_call(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>), Retry> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| Retry::Fatal(e.into()))?;
            stream
                .set_nodelay(true)
                .map_err(|e| Retry::Fatal(e.into()))?;
            self.stream = Some(stream);
        }
        let Some(stream) = self.stream.as_mut() else {
            unreachable!("set just above")
        };
        stream
            .write_all(request)
            .await
            .map_err(|e| Retry::Fresh(e.into()))?;
        self.buf.clear();
        let (head, start) = loop {
            if let Some(found) = parse_head(&self.buf).map_err(Retry::Fatal)? {
                break found;
            }
            let read = read_more(stream, &mut self.buf).await;
            match read {
                Ok(0) | Err(_) if self.buf.is_empty() => {
                    return Err(Retry::Fresh(bad("the connection closed before the answer")))
                }
                Ok(0) => return Err(Retry::Fatal(bad("the connection closed mid-answer"))),
                Err(err) => return Err(Retry::Fatal(err.into())),
                Ok(_) => {}
            }
        };
        let mut body = Vec::new();
        if head.chunked {
            let mut dechunker = Dechunker::new();
            let mut pending = self.buf[start..].to_vec();
            loop {
                let mut input = &pending[..];
                while let Some(piece) = dechunker.next_piece(&mut input).map_err(Retry::Fatal)? {
                    body.extend_from_slice(piece);
                }
                if dechunker.is_done() {
                    break;
                }
                pending.clear();
                if read_more(stream, &mut pending)
                    .await
                    .map_err(|e| Retry::Fatal(e.into()))?
                    == 0
                {
                    return Err(Retry::Fatal(bad("the connection closed mid-body")));
                }
            }
        } else {
            let length = head.content_length.unwrap_or(0);
            body.extend_from_slice(&self.buf[start..]);
            while body.len() < length {
                if read_more(stream, &mut body)
                    .await
                    .map_err(|e| Retry::Fatal(e.into()))?
                    == 0
                {
                    return Err(Retry::Fatal(bad("the connection closed mid-body")));
                }
            }
            body.truncate(length);
        }
        Ok((head.status, body))
    }
}

enum Retry {
    /// Nothing of the answer came: a new connection may be tried.
    Fresh(HttpError),
    Fatal(HttpError),
}

/// Opens a connection to `addr`: from `source` when given (the kernel still picks the port),
/// else from whatever address the kernel picks.
///
/// One source address reaches one server address and port from at most the ephemeral port
/// range (`net.ipv4.ip_local_port_range`, about 28,000 ports by default): more subscribers than
/// that connect from several source addresses (on Linux all of 127.0.0.0/8 is loopback). On
/// Linux the port is chosen at `connect` rather than at `bind` (`IP_BIND_ADDRESS_NO_PORT`), so
/// that each source address has the whole range for each destination, as an unbound socket does.
pub async fn connect(addr: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(addr).await;
    };
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(target_os = "linux")]
    if source.is_ipv4() {
        bind_address_no_port(&socket)?;
    }
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on `socket`: a `bind` to port 0 leaves the port to `connect`.
#[cfg(target_os = "linux")]
fn bind_address_no_port(socket: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is the socket's own, open for the call; the option's value is a
    // c_int that outlives the call, with its size given.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of_val(&on) as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Reads what is there into the spare capacity of `buf`, growing it if full.
pub async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 1024 {
        buf.reserve(4096);
    }
    stream.read_buf(buf).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dechunk_in_pieces(wire: &[u8], step: usize) -> Vec<u8> {
        let mut d = Dechunker::new();
        let mut body = Vec::new();
        for part in wire.chunks(step) {
            let mut input = part;
            while let Some(piece) = d.next_piece(&mut input).unwrap() {
                body.extend_from_slice(piece);
            }
            assert!(input.is_empty());
        }
        assert!(d.is_done());
        body
    }

    #[test]
    fn a_chunked_body_decodes_the_same_whatever_the_read_sizes() {
        let wire = b"4\r\n: \n\n\r\n1B\r\nevent: message\ndata: 1234\n\n\r\n0\r\nx-t: 1\r\n\r\n";
        for step in 1..wire.len() {
            assert_eq!(
                dechunk_in_pieces(wire, step),
                b": \n\nevent: message\ndata: 1234\n\n"
            );
        }
    }

    #[test]
    fn heads_wait_for_their_blank_line_and_read_the_framing() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let (head, len) = parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n\r\n{}")
            .unwrap()
            .unwrap();
        assert_eq!(head.status, 404);
        assert_eq!(head.content_length, Some(12));
        assert!(!head.chunked);
        assert_eq!(len, 46);
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn bad_chunk_sizes_are_errors() {
        let mut d = Dechunker::new();
        let mut input: &[u8] = b"zz\r\n";
        assert!(d.next_piece(&mut input).is_err());
    }
}
