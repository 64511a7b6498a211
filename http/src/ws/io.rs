//! A hyper socket as tokio's I/O traits, which tokio-tungstenite reads and writes through.
//!
//! `hyper_util::rt::TokioIo` does the same the other way round, and its `tokio` feature would
//! pull tokio's runtime into every adapter; this one is a few lines and needs no `unsafe`: it
//! reads into the initialized part of tokio's buffer (tungstenite's buffers are initialized
//! already, so that costs nothing).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// `I`, a hyper socket, as a tokio one.
#[derive(Debug)]
pub(crate) struct TokioIo<I>(pub(crate) I);

impl<I: hyper::rt::Read + Unpin> tokio::io::AsyncRead for TokioIo<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let unfilled = buf.initialize_unfilled();
        let mut read = hyper::rt::ReadBuf::new(unfilled);
        ready!(Pin::new(&mut self.0).poll_read(cx, read.unfilled()))?;
        let filled = read.filled().len();
        buf.advance(filled);
        Poll::Ready(Ok(()))
    }
}

impl<I: hyper::rt::Write + Unpin> tokio::io::AsyncWrite for TokioIo<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}
