//! A TCP stream as hyper's I/O, on async-io's reactor.
//!
//! Hand-written instead of `smol_hyper::rt::FuturesIo` because that adapter measured 6–7 µs of
//! server CPU per SSE delivery against 1.3–2.0 µs on tokio (BENCHMARKS.md, "Side by side (bench
//! tool)"). Two costs dominated: it zeroes hyper's whole read buffer before every read, and it
//! calls `read()` on every poll. hyper's HTTP/1 dispatcher polls the read side each time a
//! response body yields, so each delivery cost a `read()` failing with `EAGAIN`, then often an
//! `epoll_ctl` to re-arm the poller. Here a read only happens when the socket may hold data:
//! after async-io reported it readable, or while the previous read filled its whole slice (so
//! more may be queued). Otherwise the poll is answered from async-io's registration, which
//! makes no syscall while the same task stays registered (`Source::poll_ready` only modifies
//! the poller when no waker was registered for that direction).

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_io::Async;

/// At most this many bytes per `read()`: the part of hyper's buffer that may need zeroing
/// before a read stays bounded, whatever the buffer has grown to.
const READ_CHUNK: usize = 16 * 1024;

/// A TCP stream for hyper's server and client: implements [`hyper::rt::Read`] and
/// [`hyper::rt::Write`] on async-io, calling `read()` only when the socket may have data.
///
/// ```
/// # smol::block_on(async {
/// use outer_smol::SmolIo;
/// let listener = async_net::TcpListener::bind("127.0.0.1:0").await?;
/// let stream = async_net::TcpStream::connect(listener.local_addr()?).await?;
/// let io = SmolIo::new(stream);
/// # drop(io);
/// # std::io::Result::Ok(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct SmolIo {
    stream: Arc<Async<TcpStream>>,
    /// The socket may hold unread bytes, so try `read()` before asking the reactor: true for a
    /// new stream (a request often arrives with the connection) and after a read that filled
    /// its whole slice.
    may_read: bool,
}

impl SmolIo {
    /// Wraps a connected async-net stream.
    pub fn new(stream: async_net::TcpStream) -> SmolIo {
        SmolIo {
            stream: stream.into(),
            may_read: true,
        }
    }
}

impl From<async_net::TcpStream> for SmolIo {
    fn from(stream: async_net::TcpStream) -> SmolIo {
        SmolIo::new(stream)
    }
}

impl hyper::rt::Read for SmolIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let len = buf.remaining().min(READ_CHUNK);
        if len == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if !this.may_read {
                ready!(this.stream.poll_readable(cx))?;
            }
            // Zeroes the bytes of this slice not initialized before: hyper hands its buffer over
            // as uninitialized each time, so up to READ_CHUNK bytes, and only when a read is due.
            let slice = buf.initialize_unfilled_to(len);
            match this.stream.get_ref().read(slice) {
                Ok(n) => {
                    // A short read most likely drained the socket: ask the reactor next time.
                    this.may_read = n == len;
                    // SAFETY: `read` wrote (and the line above initialized) the first `n <= len`
                    // bytes of the unfilled part.
                    unsafe { buf.advance(n) };
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => this.may_read = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl hyper::rt::Write for SmolIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let stream = &self.stream;
        poll_writing(stream, cx, || stream.get_ref().write(buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = &self.stream;
        poll_writing(stream, cx, || stream.get_ref().write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        // `TcpStream::write_vectored` is a real `writev` on the platforms we build for.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TCP socket has no user-space buffer: written bytes are already the kernel's.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.stream.get_ref().shutdown(Shutdown::Write) {
            // The peer may already have gone: the write side is closed either way.
            Err(err) if err.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            res => Poll::Ready(res),
        }
    }
}

/// Writes now if the socket takes it; otherwise waits for writability and tries again.
fn poll_writing(
    stream: &Async<TcpStream>,
    cx: &mut Context<'_>,
    mut write: impl FnMut() -> io::Result<usize>,
) -> Poll<io::Result<usize>> {
    loop {
        match write() {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            res => return Poll::Ready(res),
        }
        ready!(stream.poll_writable(cx))?;
    }
}
