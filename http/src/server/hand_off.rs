//! An event stream's socket, taken back from hyper and written by Outer itself (HTTP/1.1).
//!
//! hyper drives a streaming response through all of its HTTP/1.1 machinery: the connection's
//! state, its read and write buffers, a dispatcher loop on every wake. An event stream needs
//! none of it once its head is out: it writes chunks until it ends, and reads the socket only to
//! learn that the client left. So when a response on HTTP/1.1 turns out to be an event stream,
//! the connection takes its socket back from hyper, as it does after a `101`, writes the head
//! itself and drives the body with a [`StreamWriter`]. hyper's buffers are freed for the life of
//! the stream (an idle subscriber is its socket and its stream's state), and each chunk is one
//! vectored write.
//!
//! The hand-over, step by step:
//! 1. the request's future ([`OnResponse`]) sees an event stream's response, keeps it in the
//!    connection's [`HandOff`] and waits;
//! 2. hyper flushes what it still had buffered (an earlier response on the connection) and, as
//!    it always does last, flushes the socket: [`Rewind`] tells the future;
//! 3. the future fails with [`HandedOff`], hyper's connection ends with that error without
//!    writing anything more, and the connection takes the socket (`into_parts`) and the kept
//!    response.
//!
//! The response keeps HTTP/1.1's chunked coding, so that a client tells a stream the server
//! cut (no last chunk) from one that ended. It does not say `connection: close`: undici (the
//! `fetch` of Node, under `@orpc/client`) takes the close of such a response for its clean end,
//! so a stream the server cut would look finished and never be resumed. After a stream that
//! ended, the connection goes back to hyper for the client's next request when that is safe:
//! the service read the whole request (Outer's marks its streams so, [`RequestRead`]), the
//! client did not ask to close, and nothing came after the request; otherwise the socket is
//! closed. Bytes a client sends after its request are read and dropped, up to [`MAX_IGNORED`],
//! only to see it leave.

use std::fmt;
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::task::AtomicWaker;
use http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBuf, Write};

use crate::stack::{BoxError, HttpService};

/// What a client may send after its request while its stream runs, at most: read only to see
/// it leave. Past this the socket is no longer read (a write will still fail once it is gone).
const MAX_IGNORED: usize = 64 * 1024;

/// Chunks written in one poll at most, before the writer lets the thread's other tasks run.
const CHUNKS_PER_POLL: usize = 16;

/// Tells a request's future that hyper has flushed everything it buffered: a [`Rewind`] socket
/// signals each flush of hyper's while one is awaited.
///
/// [`Rewind`]: super::Rewind
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    awaited: AtomicBool,
    flushed: AtomicBool,
    waker: AtomicWaker,
}

impl FlushSignal {
    /// Called by the socket after each flush hyper asked for.
    pub(crate) fn flushed(&self) {
        // One load per flush when nothing waits: the common case.
        if self.awaited.load(Ordering::Acquire) {
            self.awaited.store(false, Ordering::Relaxed);
            self.flushed.store(true, Ordering::Release);
            self.waker.wake();
        }
    }

    fn await_flush(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
        self.flushed.store(false, Ordering::Relaxed);
        self.awaited.store(true, Ordering::Release);
    }

    fn has_flushed(&self, cx: &Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.flushed.load(Ordering::Acquire)
    }
}

/// Where a request's future leaves an event stream's response for its connection, and how it
/// learns that hyper has flushed. One per HTTP/1.1 connection, shared with its requests.
pub(crate) struct HandOff<B> {
    pub(crate) flush: Arc<FlushSignal>,
    kept: Arc<Mutex<Option<Kept<B>>>>,
}

/// A kept response, and whether its connection may serve another request after it.
type Kept<B> = (Response<B>, bool);

impl<B> Clone for HandOff<B> {
    fn clone(&self) -> Self {
        Self {
            flush: Arc::clone(&self.flush),
            kept: Arc::clone(&self.kept),
        }
    }
}

impl<B> HandOff<B> {
    pub(crate) fn new() -> Self {
        Self {
            flush: Arc::default(),
            kept: Arc::default(),
        }
    }

    /// The response kept for the connection, if a request handed one off, and whether the
    /// connection may serve another request once its stream has ended.
    pub(crate) fn take(&self) -> Option<(Response<B>, bool)> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn keep(&self, response: Response<B>, reuse: bool) {
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some((response, reuse));
    }
}

impl<B> fmt::Debug for HandOff<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandOff").finish_non_exhaustive()
    }
}

/// The error that ends hyper's connection once it has flushed: the socket is the stream's now.
#[derive(Debug)]
pub struct HandedOff;

impl fmt::Display for HandedOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event stream's socket was handed to Outer's writer")
    }
}

impl std::error::Error for HandedOff {}

/// Put in an event stream's response by a service that read its request to the end before
/// answering (Outer's always does): the connection may then serve the client's next request
/// once the stream has ended, as no unread body is left on the socket to be taken for one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestRead;

/// Whether a request may have its response handed off: HTTP/1.1 (hyper answers HTTP/1.0 with a
/// body delimited by the close, which needs none of this), and a method with a body to answer.
pub(crate) fn may_hand_off<T>(request: &Request<T>) -> bool {
    request.version() == Version::HTTP_11 && request.method() != Method::HEAD
}

/// Whether a request says `connection: close`.
pub(crate) fn asks_to_close<T>(request: &Request<T>) -> bool {
    request
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("close"))
}

/// Whether a response is an event stream this module writes: `200 text/event-stream` with a
/// body of no known length and no transfer coding chosen by a layer.
fn is_event_stream<B: Body>(response: &Response<B>) -> bool {
    let headers = response.headers();
    response.status() == StatusCode::OK
        && headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"))
        && !headers.contains_key(CONTENT_LENGTH)
        && !headers.contains_key(TRANSFER_ENCODING)
        && !response.body().is_end_stream()
}

/// A request's future on a connection: the service's answer, or, for an event stream on
/// HTTP/1.1, the hand-off to Outer's own writer (see the [module docs](crate::server)).
pub struct OnResponse<S: HttpService> {
    // Boxed: hyper's HTTP/1.1 connection must be `Unpin` to hand its socket back, and a
    // layer's future need not be.
    call: Pin<Box<tower::util::Oneshot<S, Request<Incoming>>>>,
    hand_off: Option<HandOff<S::ResponseBody>>,
    /// Set once the response is kept: waiting for hyper's flush.
    kept: bool,
    /// The client asked to close the connection after this response.
    close: bool,
}

impl<S: HttpService> OnResponse<S> {
    pub(crate) fn new(
        call: Pin<Box<tower::util::Oneshot<S, Request<Incoming>>>>,
        hand_off: Option<HandOff<S::ResponseBody>>,
        close: bool,
    ) -> Self {
        Self {
            call,
            hand_off,
            kept: false,
            close,
        }
    }
}

impl<S: HttpService> fmt::Debug for OnResponse<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnResponse")
            .field("kept", &self.kept)
            .finish_non_exhaustive()
    }
}

impl<S: HttpService> Future for OnResponse<S> {
    type Output = Result<Response<S::ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Every field is Unpin.
        let this = self.get_mut();
        if let (true, Some(hand_off)) = (this.kept, &this.hand_off) {
            return if hand_off.flush.has_flushed(cx) {
                Poll::Ready(Err(Box::new(HandedOff)))
            } else {
                Poll::Pending
            };
        }
        let response = ready!(this.call.as_mut().poll(cx)).map_err(Into::into)?;
        match &this.hand_off {
            Some(hand_off) if is_event_stream(&response) => {
                let reuse = !this.close && response.extensions().get::<RequestRead>().is_some();
                hand_off.keep(response, reuse);
                // hyper flushes right after this poll: what it buffered before (an earlier
                // response) reaches the socket before the stream's head does.
                hand_off.flush.await_flush(cx);
                this.kept = true;
                Poll::Pending
            }
            _ => Poll::Ready(Ok(response)),
        }
    }
}

/// Writes an event stream's response on a socket hyper handed back: the head, then each chunk
/// of the body as it comes, then the last chunk; meanwhile it reads the socket to learn that
/// the client left. It completes with whether the stream ended whole, its socket fit for another
/// request. Dropping it drops the body (the handler's cleanup runs).
pub(crate) struct StreamWriter<I, B> {
    io: I,
    body: Pin<Box<B>>,
    out: Out,
    /// Bytes read from the client since its request (see [`MAX_IGNORED`]).
    ignored: usize,
    state: WriterState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriterState {
    /// Writing chunks as the body gives them.
    Streaming,
    /// The body ended: writing what is left, the last chunk with it.
    Ending,
    /// Cut short: the body failed or the client left.
    Cut,
}

impl<I, B> StreamWriter<I, B>
where
    I: Read + Write + Unpin,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// The socket back, once the writer has completed.
    pub(crate) fn into_io(self) -> I {
        self.io
    }

    pub(crate) fn new(io: I, response: Response<B>) -> Self {
        let (head, body) = response.into_parts();
        Self {
            io,
            body: Box::pin(body),
            out: Out {
                head: encode_head(&head),
                ..Out::default()
            },
            ignored: 0,
            state: WriterState::Streaming,
        }
    }

    /// Reads and drops what the client sends; `Ready` once it has gone (or failed).
    fn poll_client_left(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.ignored < MAX_IGNORED {
            let mut scratch = [0u8; 512];
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, buf.unfilled()) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => self.ignored += buf.filled().len(),
                Poll::Ready(Err(err)) => {
                    tracing::debug!(error = %err, "event stream's socket failed");
                    return Poll::Ready(());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Pending
    }

    /// Writes what `out` holds; `Ready(Err)` if the socket failed.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let vectored = self.io.is_write_vectored();
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); 4];
            let written = if vectored {
                let count = self.out.slices(&mut slices);
                ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?
            } else {
                ready!(Pin::new(&mut self.io).poll_write(cx, self.out.first()))?
            };
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out.advance(written);
        }
        // A TLS stream holds written bytes until flushed.
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<I, B> Future for StreamWriter<I, B>
where
    I: Read + Write + Unpin,
    B: Body,
    B::Error: Into<BoxError>,
{
    /// Whether the stream ended whole (its last chunk written).
    type Output = bool;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        // Every field is Unpin (the body is boxed).
        let this = self.get_mut();
        if this.state == WriterState::Streaming && this.poll_client_left(cx).is_ready() {
            tracing::debug!("client left its event stream");
            this.state = WriterState::Cut;
        }
        for _ in 0..CHUNKS_PER_POLL {
            match this.state {
                WriterState::Cut => return Poll::Ready(false),
                WriterState::Ending => {
                    return Poll::Ready(match ready!(this.poll_write_out(cx)) {
                        Ok(()) => this.ignored == 0,
                        Err(err) => {
                            tracing::debug!(error = %err, "event stream's last chunk not written");
                            false
                        }
                    });
                }
                WriterState::Streaming => {
                    if let Err(err) = ready!(this.poll_write_out(cx)) {
                        tracing::debug!(error = %err, "event stream's client is gone");
                        this.state = WriterState::Cut;
                        continue;
                    }
                    match ready!(this.body.as_mut().poll_frame(cx)) {
                        Some(Ok(frame)) => {
                            if let Ok(mut data) = frame.into_data() {
                                let data = data.copy_to_bytes(data.remaining());
                                this.out.chunk(data);
                            }
                        }
                        Some(Err(err)) => {
                            // Aborted: close without the last chunk, so the client sees a cut.
                            let err: BoxError = err.into();
                            tracing::debug!(error = %err, "event stream cut");
                            this.state = WriterState::Cut;
                        }
                        None => {
                            this.out.last_chunk();
                            this.state = WriterState::Ending;
                        }
                    }
                }
            }
        }
        // Still ready: let the thread's other tasks run first.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<I, B> fmt::Debug for StreamWriter<I, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamWriter")
            .field("state", &self.state)
            .field("unwritten", &self.out.len())
            .finish_non_exhaustive()
    }
}

/// The response head as hyper would write it for a chunked body.
fn encode_head(head: &http::response::Parts) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(head.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(head.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &head.headers {
        // The framing and the connection's fate are this writer's to say.
        if name == CONNECTION || name == TRANSFER_ENCODING || name == CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !head.headers.contains_key(DATE) {
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
    Bytes::from(out)
}

/// What is left to write: the head (at first), then one chunk: its size line, its data and the
/// CRLF that ends it, or the last chunk.
#[derive(Default)]
struct Out {
    head: Bytes,
    /// The size line, in hex with its CRLF, from `line_at` to `line_end`.
    line: [u8; 20],
    line_at: u8,
    line_end: u8,
    data: Bytes,
    tail: &'static [u8],
}

impl Out {
    fn len(&self) -> usize {
        self.head.len()
            + usize::from(self.line_end - self.line_at)
            + self.data.len()
            + self.tail.len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `data` as one chunk (nothing for empty data: an empty chunk would end the body).
    fn chunk(&mut self, data: Bytes) {
        debug_assert!(self.data.is_empty() && self.tail.is_empty());
        if data.is_empty() {
            return;
        }
        let mut line = [0u8; 20];
        let mut at = line.len() - 2;
        line[at..].copy_from_slice(b"\r\n");
        let mut size = data.len();
        loop {
            at -= 1;
            line[at] = b"0123456789abcdef"[size % 16];
            size /= 16;
            if size == 0 {
                break;
            }
        }
        self.line = line;
        // The line holds 20 bytes: these fit a u8.
        self.line_at = at as u8;
        self.line_end = line.len() as u8;
        self.data = data;
        self.tail = b"\r\n";
    }

    /// Queues the last chunk.
    fn last_chunk(&mut self) {
        self.tail = if self.tail.is_empty() {
            b"0\r\n\r\n"
        } else {
            b"\r\n0\r\n\r\n"
        };
    }

    /// The first bytes left, for a socket that writes one slice at a time.
    fn first(&self) -> &[u8] {
        let line = &self.line[usize::from(self.line_at)..usize::from(self.line_end)];
        [&self.head[..], line, &self.data[..], self.tail]
            .into_iter()
            .find(|part| !part.is_empty())
            .unwrap_or(&[])
    }

    fn slices<'a>(&'a self, slices: &mut [IoSlice<'a>; 4]) -> usize {
        let line = &self.line[usize::from(self.line_at)..usize::from(self.line_end)];
        let mut count = 0;
        for part in [&self.head[..], line, &self.data[..], self.tail] {
            if !part.is_empty() {
                slices[count] = IoSlice::new(part);
                count += 1;
            }
        }
        count
    }

    fn advance(&mut self, mut written: usize) {
        let head = written.min(self.head.len());
        consume(&mut self.head, head);
        written -= head;
        let line = written.min(usize::from(self.line_end - self.line_at));
        // At most the line's 20 bytes.
        self.line_at += line as u8;
        written -= line;
        let data = written.min(self.data.len());
        consume(&mut self.data, data);
        written -= data;
        self.tail = &self.tail[written.min(self.tail.len())..];
    }
}

/// Takes `n` bytes (at most all) off the front of `bytes`. Taking the last lets the buffer go:
/// an emptied `Bytes` would still hold it, and an idle stream would keep its head (about 200
/// bytes) and its last chunk.
fn consume(bytes: &mut Bytes, n: usize) {
    if n < bytes.len() {
        bytes.advance(n);
    } else if n > 0 {
        *bytes = Bytes::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(out: &mut Out, step: usize) -> Vec<u8> {
        let mut all = Vec::new();
        while !out.is_empty() {
            let mut slices = [IoSlice::new(&[]); 4];
            let count = out.slices(&mut slices);
            let joined: Vec<u8> = slices[..count].iter().flat_map(|s| s.to_vec()).collect();
            let n = step.min(joined.len());
            all.extend_from_slice(&joined[..n]);
            out.advance(n);
        }
        all
    }

    #[test]
    fn chunks_are_framed_whatever_the_socket_takes_per_write() {
        for step in [1, 2, 3, 7, 1000] {
            let mut out = Out {
                head: Bytes::from_static(b"HEAD\r\n\r\n"),
                ..Out::default()
            };
            out.chunk(Bytes::from(vec![b'x'; 300]));
            let mut all = drain(&mut out, step);
            out.chunk(Bytes::from_static(b"data: 1\n\n"));
            out.last_chunk();
            all.extend(drain(&mut out, step));
            let mut expected = b"HEAD\r\n\r\n12c\r\n".to_vec();
            expected.extend_from_slice(&[b'x'; 300]);
            expected.extend_from_slice(b"\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n");
            assert_eq!(all, expected, "written {step} bytes at a time");
            out.last_chunk();
            assert_eq!(drain(&mut out, step), b"0\r\n\r\n");
        }
    }

    #[test]
    fn what_was_written_is_not_kept() {
        /// A buffer that says when it is freed.
        struct Owned(Vec<u8>, Arc<AtomicBool>);
        impl AsRef<[u8]> for Owned {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        impl Drop for Owned {
            fn drop(&mut self) {
                self.1.store(true, Ordering::SeqCst);
            }
        }
        let head_freed = Arc::new(AtomicBool::new(false));
        let chunk_freed = Arc::new(AtomicBool::new(false));
        let mut out = Out {
            head: Bytes::from_owner(Owned(b"HEAD\r\n\r\n".to_vec(), Arc::clone(&head_freed))),
            ..Out::default()
        };
        out.chunk(Bytes::from_owner(Owned(
            b"data".to_vec(),
            Arc::clone(&chunk_freed),
        )));
        // Half the head, then the rest of it.
        out.advance(3);
        assert!(!head_freed.load(Ordering::SeqCst));
        out.advance(5);
        assert!(head_freed.load(Ordering::SeqCst), "the head, once written");
        drain(&mut out, 2);
        assert!(
            chunk_freed.load(Ordering::SeqCst),
            "the chunk, once written"
        );
    }

    #[test]
    fn the_first_slice_is_what_a_plain_write_takes() {
        let mut out = Out::default();
        out.chunk(Bytes::from_static(b"abc"));
        assert_eq!(out.first(), b"3\r\n");
        out.advance(3);
        assert_eq!(out.first(), b"abc");
        out.advance(3);
        assert_eq!(out.first(), b"\r\n");
        out.advance(2);
        assert!(out.is_empty() && out.first().is_empty());
    }

    #[test]
    fn the_head_takes_the_framing_and_keeps_the_rest() {
        let response = Response::builder()
            .status(200)
            .header(CONTENT_TYPE, "text/event-stream")
            .header("x-request-id", "7")
            .header(CONNECTION, "keep-alive")
            .header(DATE, "Mon, 07 Dec 2026 00:00:00 GMT")
            .body(())
            .unwrap();
        let (head, ()) = response.into_parts();
        let text = String::from_utf8(encode_head(&head).to_vec()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: 7\r\n\
             date: Mon, 07 Dec 2026 00:00:00 GMT\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }
}
