//! TLS on smol: futures-rustls streams as hyper's I/O.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use smol::io::{AsyncRead, AsyncWrite};

/// The most bytes one read hands hyper: rustls decrypts a record of at most 16 KiB at a time.
const READ_CHUNK: usize = 16 * 1024;

/// A futures-io stream (a TLS stream over async-net) as hyper's I/O.
///
/// Reads go through a buffer on the stack and are copied into hyper's: that keeps this adapter
/// free of `unsafe` (hyper's buffer is uninitialized memory), and costs one copy of what rustls
/// has just decrypted, small beside the decryption itself.
#[derive(Debug)]
pub(crate) struct FuturesIo<T>(pub(crate) T);

impl<T: AsyncRead + Unpin> hyper::rt::Read for FuturesIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let len = buf.remaining().min(READ_CHUNK);
        let n = ready!(Pin::new(&mut self.0).poll_read(cx, &mut chunk[..len]))?;
        buf.put_slice(&chunk[..n]);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for FuturesIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // futures-rustls gathers vectored writes into its records.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
