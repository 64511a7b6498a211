//! Telling HTTP/2 from HTTP/1.1 by a connection's first bytes, then handing hyper the socket
//! with those bytes put back.
//!
//! An HTTP/2 client (with prior knowledge on cleartext, or after ALPN chose `h2` under TLS)
//! opens with a fixed 24-byte preface; no HTTP/1.1 request starts with it. Most connections are
//! told apart by their first read: an HTTP/1.1 request differs from the preface by its second
//! byte at the latest (`POST` against `PRI `).
//!
//! Written by hand rather than with hyper-util's `auto` server: that server cannot hand back an
//! HTTP/1.1 socket after a `101` (`poll_without_shutdown`), which is how Outer's servers run a
//! WebSocket in its connection's own task.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};

use super::hand_off::FlushSignal;

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocol a connection speaks, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Version {
    Http1,
    Http2,
}

/// The bytes read so far while telling the protocol, at most the preface's length.
#[derive(Debug, Default)]
pub(crate) struct Sniff {
    read: [u8; PREFACE.len()],
    len: usize,
}

impl Sniff {
    /// Reads until the bytes so far decide the protocol. A connection that closes first is
    /// left to HTTP/1.1, which answers nothing and closes.
    pub(crate) fn poll<I: Read + Unpin>(
        &mut self,
        io: &mut I,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<Version>> {
        loop {
            let mut buf = ReadBuf::new(&mut self.read[self.len..]);
            ready!(Pin::new(&mut *io).poll_read(cx, buf.unfilled()))?;
            let read = buf.filled().len();
            if read == 0 {
                return Poll::Ready(Ok(Version::Http1));
            }
            self.len += read;
            if !PREFACE.starts_with(&self.read[..self.len]) {
                return Poll::Ready(Ok(Version::Http1));
            }
            if self.len == PREFACE.len() {
                return Poll::Ready(Ok(Version::Http2));
            }
        }
    }

    /// `io` with the bytes read so far put back in front.
    pub(crate) fn rewind<I>(self, io: I) -> Rewind<I> {
        Rewind {
            read: self.read,
            start: 0,
            end: self.len,
            io,
            flushes: None,
        }
    }
}

/// A socket whose first bytes were read ahead: reads give those bytes again, then the
/// socket's. Writes go straight through.
#[derive(Debug)]
pub struct Rewind<I> {
    read: [u8; PREFACE.len()],
    start: usize,
    end: usize,
    io: I,
    /// Told of each flush, on an HTTP/1.1 connection whose event streams may be handed off.
    flushes: Option<Arc<FlushSignal>>,
}

impl<I> Rewind<I> {
    /// Tells `signal` of each flush from now on (`None`: no longer).
    pub(crate) fn signal_flushes(&mut self, signal: Option<Arc<FlushSignal>>) {
        self.flushes = signal;
    }
}

impl<I: Read + Unpin> Read for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.start < self.end {
            let this = &mut *self;
            let n = buf.remaining().min(this.end - this.start);
            buf.put_slice(&this.read[this.start..this.start + n]);
            this.start += n;
            if this.start < this.end || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            // The rest of what the socket holds in the same read: the request that followed
            // those bytes is usually there already. Handed over in pieces, the first read
            // would be a few bytes, and hyper's buffer would grow to twice its size to make
            // room for the next one, for the whole life of the connection.
            return match Pin::new(&mut this.io).poll_read(cx, buf) {
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                // The bytes put back are an answer already; the waker is registered for more.
                Poll::Ready(Ok(())) | Poll::Pending => Poll::Ready(Ok(())),
            };
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
        if let Some(signal) = &self.flushes {
            signal.flushed();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncWriteExt;

    /// Sends `chunks` one write at a time, then reads what the sniffer decided and what the
    /// rewound socket gives back.
    fn sniff(chunks: &[&[u8]]) -> (Version, Vec<u8>) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, server) = tokio::io::duplex(64);
            let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| c.to_vec()).collect();
            let writer = tokio::spawn(async move {
                let mut client = client;
                for chunk in chunks {
                    client.write_all(&chunk).await.unwrap();
                    tokio::task::yield_now().await;
                }
                client.shutdown().await.unwrap();
            });
            let mut io = TokioIo::new(server);
            let mut sniff = Sniff::default();
            let version = std::future::poll_fn(|cx| sniff.poll(&mut io, cx))
                .await
                .unwrap();
            let mut rewound = sniff.rewind(io);
            let mut all = Vec::new();
            loop {
                let mut storage = [0u8; 7];
                let mut buf = ReadBuf::new(&mut storage);
                std::future::poll_fn(|cx| Pin::new(&mut rewound).poll_read(cx, buf.unfilled()))
                    .await
                    .unwrap();
                if buf.filled().is_empty() {
                    break;
                }
                all.extend_from_slice(buf.filled());
            }
            writer.await.unwrap();
            (version, all)
        })
    }

    #[test]
    fn the_preface_is_http2_even_split_across_reads() {
        let mut frames = PREFACE.to_vec();
        frames.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        assert_eq!(sniff(&[&frames]), (Version::Http2, frames.clone()));
        assert_eq!(
            sniff(&[b"PRI * HT", b"TP/2.0\r\n\r\nSM", &frames[20..]]),
            (Version::Http2, frames)
        );
    }

    #[test]
    fn anything_else_is_http1_with_every_byte_given_back() {
        let get = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n";
        assert_eq!(sniff(&[get]), (Version::Http1, get.to_vec()));
        // Shares the preface's first byte, then differs.
        let post = b"POST /rpc/ping HTTP/1.1\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(sniff(&[b"P", &post[1..]]), (Version::Http1, post.to_vec()));
        // A connection that closes while its bytes still match the preface.
        assert_eq!(sniff(&[b"PRI * "]), (Version::Http1, b"PRI * ".to_vec()));
        assert_eq!(sniff(&[]), (Version::Http1, Vec::new()));
    }
}
