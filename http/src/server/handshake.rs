//! A socket that must finish a handshake (TLS) before it carries HTTP, run lazily: the accept
//! loop hands it on at once, and the handshake runs in the connection's own task on its first
//! read, within the header read timeout, so a client that stalls its handshake holds neither
//! the accept loop nor more than its own connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// A connection still handshaking, then the stream the handshake made. Give it to
/// [`serve_connection`](super::serve_connection) or as an accepted socket to
/// [`accept_loop`](super::accept_loop) like any socket.
///
/// `F` is the handshake (`tokio_rustls::Accept`, mapped to hyper's I/O), `T` the stream.
#[derive(Debug)]
pub enum Handshake<F, T> {
    /// The handshake is running.
    Running(F),
    /// It finished: this is the stream.
    Done(T),
    /// It failed; the connection is over.
    Failed,
}

impl<F, T> Handshake<F, T> {
    /// A connection whose handshake is `handshake`.
    pub fn new(handshake: F) -> Self {
        Handshake::Running(handshake)
    }
}

impl<F, T> Handshake<F, T>
where
    F: Future<Output = io::Result<T>> + Unpin,
    T: Unpin,
{
    /// `op` on the stream, once the handshake has finished.
    fn on_stream<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        match self.poll_stream(cx) {
            Poll::Ready(Ok(stream)) => op(stream, cx),
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The stream, once the handshake has finished.
    fn poll_stream(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Pin<&mut T>>> {
        if let Handshake::Running(handshake) = self {
            match Pin::new(handshake).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(stream)) => *self = Handshake::Done(stream),
                Poll::Ready(Err(err)) => {
                    tracing::debug!(error = %err, "handshake failed");
                    *self = Handshake::Failed;
                    return Poll::Ready(Err(err));
                }
            }
        }
        match self {
            Handshake::Done(stream) => Poll::Ready(Ok(Pin::new(stream))),
            _ => Poll::Ready(Err(io::ErrorKind::NotConnected.into())),
        }
    }
}

impl<F, T> Read for Handshake<F, T>
where
    F: Future<Output = io::Result<T>> + Unpin,
    T: Read + Unpin,
{
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.get_mut()
            .on_stream(cx, |stream, cx| stream.poll_read(cx, buf))
    }
}

impl<F, T> Write for Handshake<F, T>
where
    F: Future<Output = io::Result<T>> + Unpin,
    T: Write + Unpin,
{
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .on_stream(cx, |stream, cx| stream.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .on_stream(cx, |stream, cx| stream.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Handshake::Done(stream) => stream.is_write_vectored(),
            _ => false,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Handshake::Done(stream) => Pin::new(stream).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Handshake::Done(stream) => Pin::new(stream).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
