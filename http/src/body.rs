//! Bodies in and out: reading a request body under a cap, and the response body that writes an
//! event stream chunk by chunk as the handler yields.
//!
//! No buffering of streams happens here: each chunk the core's `SseBody` produces becomes one
//! data frame, written and flushed before the body is polled for the next: by hyper over
//! HTTP/2, by Outer's own writer over HTTP/1.1 on its servers (`server::hand_off`). A chunk is
//! `Bytes`: a published event alone in its chunk is the frame every subscriber shares, written
//! without a copy.

use std::fmt;
use std::future::poll_fn;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use http_body::{Body, Frame, SizeHint};
use outer_core::protocol::SseBody;
use outer_core::rt::Timer;
use outer_core::{ErrorCode, RpcError};

use crate::metrics::{StreamMetrics, Transport};

/// The body of every response an [`OuterService`](crate::OuterService) gives: whole bytes, or
/// an event stream sent as it happens.
///
/// Dropping it while a stream is open (the client went away) drops the procedure's handler, so
/// its cleanup runs, and frees the stream's place under `max_streams`.
pub struct OuterBody {
    state: State,
}

// One per response, held in its connection's task: boxing the stream would cost every stream an
// allocation and every poll a pointer hop, to save bytes on short-lived whole bodies.
#[allow(clippy::large_enum_variant)]
enum State {
    Full(Option<Bytes>),
    Events {
        events: SseBody,
        /// Completes when the stream must be cut as if the network failed.
        abort: Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
        /// Held for as long as the stream is open: it is what `active_streams` counts.
        _slot: StreamSlot,
        span: tracing::Span,
        metrics: StreamMetrics,
        /// The clock of the publish-to-write latency.
        timer: Arc<dyn Timer>,
        /// Events counted so far (the body's own count runs ahead between chunks).
        counted: u64,
    },
    Ended,
}

impl OuterBody {
    /// A whole body.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self {
            state: State::Full(Some(bytes.into())),
        }
    }

    /// An event stream, holding its place under the stream limit until it ends or is dropped,
    /// and counting what it writes in `metrics`.
    pub(crate) fn events(
        events: SseBody,
        slot: StreamSlot,
        abort: impl std::future::Future<Output = ()> + Send + 'static,
        span: tracing::Span,
        metrics: StreamMetrics,
        timer: Arc<dyn Timer>,
    ) -> Self {
        Self {
            state: State::Events {
                events: if crate::metrics::time_this_stream() {
                    events.time_wakes()
                } else {
                    events
                },
                abort: Box::pin(abort),
                _slot: slot,
                span,
                metrics,
                timer,
                counted: 0,
            },
        }
    }

    /// Whether this is an event stream (still open).
    pub fn is_stream(&self) -> bool {
        matches!(self.state, State::Events { .. })
    }
}

/// An empty body: what a layer answers with on its own (a CORS preflight, say).
impl Default for OuterBody {
    fn default() -> Self {
        Self {
            state: State::Ended,
        }
    }
}

impl fmt::Debug for OuterBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.state {
            State::Full(bytes) => f
                .debug_tuple("OuterBody::Full")
                .field(&bytes.as_ref().map_or(0, Bytes::len))
                .finish(),
            State::Events { .. } => f.write_str("OuterBody::Events"),
            State::Ended => f.write_str("OuterBody::Ended"),
        }
    }
}

impl Drop for OuterBody {
    fn drop(&mut self) {
        if let State::Events {
            events, metrics, ..
        } = &mut self.state
        {
            // Dropped open: the client went away, unless the stream had written its end.
            metrics.ended(events.end());
        }
    }
}

/// The error an aborted stream ends with, so that hyper closes the connection without the
/// response's final chunk (see [`OuterService::abort_streams`](crate::OuterService::abort_streams)).
#[derive(Debug)]
pub struct Aborted;

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the server aborted the event stream")
    }
}

impl std::error::Error for Aborted {}

impl Body for OuterBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        let this = &mut *self;
        match &mut this.state {
            State::Full(bytes) => {
                let frame = bytes.take().map(|b| Ok(Frame::data(b)));
                this.state = State::Ended;
                Poll::Ready(frame)
            }
            State::Events {
                events,
                span,
                abort,
                metrics,
                timer,
                counted,
                ..
            } => {
                // Entered so that what the handler logs while it runs belongs to its call.
                let entered = span.enter();
                if abort.as_mut().poll(cx).is_ready() {
                    tracing::debug!("event stream aborted");
                    drop(entered);
                    metrics.cut();
                    // Drops the handler (its cleanup runs) and frees the stream's place.
                    this.state = State::Ended;
                    return Poll::Ready(Some(Err(Aborted)));
                }
                match Pin::new(&mut *events).poll_next(cx) {
                    Poll::Ready(Some(chunk)) => {
                        let sent = events.events_sent();
                        if sent > *counted {
                            metrics.delivered(sent - *counted);
                            *counted = sent;
                            if let Some(woken) = events.woken_at() {
                                metrics.waited(timer.now().saturating_sub(woken));
                            }
                        }
                        metrics.wrote(chunk.len());
                        metrics.behind(events.is_behind());
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Poll::Ready(None) => {
                        tracing::debug!("event stream ended");
                        drop(entered);
                        metrics.ended(events.end());
                        // Free the stream's place now rather than whenever hyper drops us.
                        this.state = State::Ended;
                        Poll::Ready(None)
                    }
                    Poll::Pending => {
                        metrics.behind(events.is_behind());
                        Poll::Pending
                    }
                }
            }
            State::Ended => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Full(bytes) => bytes.is_none(),
            State::Events { .. } => false,
            State::Ended => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            State::Full(None) | State::Ended => SizeHint::with_exact(0),
            State::Events { .. } => SizeHint::default(),
        }
    }
}

/// A place under the stream limit; the count (and the `outer_streams_open` gauge of its
/// transport) goes down when it drops.
#[derive(Debug)]
pub(crate) struct StreamSlot(Arc<AtomicUsize>, ::metrics::Gauge);

impl StreamSlot {
    /// Takes a place if fewer than `max` are taken.
    pub(crate) fn acquire(
        count: &Arc<AtomicUsize>,
        max: usize,
        transport: Transport,
    ) -> Option<Self> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| {
                let open = crate::metrics::streams_open(transport);
                open.increment(1);
                Self(Arc::clone(count), open)
            })
    }

    /// Takes a place, or gives the refusal a stream past the limit gets, over SSE and over
    /// WebSocket alike: 503 `SERVICE_UNAVAILABLE`, retryable.
    pub(crate) fn take(
        count: &Arc<AtomicUsize>,
        max: usize,
        transport: Transport,
    ) -> Result<Self, RpcError> {
        Self::acquire(count, max, transport).ok_or_else(|| {
            RpcError::new(
                ErrorCode::SERVICE_UNAVAILABLE,
                format!("Too many open event streams (the limit is {max}); retry later"),
            )
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        self.1.decrement(1);
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// It is larger than the cap.
    TooLarge,
    /// The connection failed or the framing was broken.
    Failed(Box<dyn std::error::Error + Send + Sync>),
    /// It did not arrive in time ([`ServerConfig::body_read_timeout`](crate::ServerConfig::body_read_timeout)).
    TimedOut,
}

/// Reads a whole body, refusing as soon as it passes `cap` bytes: at most one frame past the
/// cap is ever looked at, and none of it is kept.
pub(crate) async fn read_capped<B>(body: B, cap: usize) -> Result<Vec<u8>, ReadError>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.size_hint().lower() > cap as u64 {
        return Err(ReadError::TooLarge);
    }
    let mut body = pin!(body);
    let mut bytes = Vec::new();
    while let Some(frame) = poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|err| ReadError::Failed(err.into()))?;
        // Trailers carry nothing a procedure reads.
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        if bytes.len().saturating_add(data.remaining()) > cap {
            return Err(ReadError::TooLarge);
        }
        while data.has_remaining() {
            let chunk = data.chunk();
            bytes.extend_from_slice(chunk);
            let read = chunk.len();
            data.advance(read);
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use http_body_util::{BodyExt, Full, StreamBody};

    #[test]
    fn a_body_under_the_cap_is_read_whole() {
        let bytes = block_on(read_capped(Full::new(Bytes::from_static(b"hello")), 5)).unwrap();
        assert_eq!(bytes, b"hello");
    }

    #[test]
    fn a_body_over_the_cap_is_refused_from_its_size_before_any_read() {
        // A body whose length is known and whose frames would fail if read.
        struct Declared;
        impl Body for Declared {
            type Data = Bytes;
            type Error = std::io::Error;
            fn poll_frame(
                self: Pin<&mut Self>,
                _: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
                panic!("the body was read")
            }
            fn size_hint(&self) -> SizeHint {
                SizeHint::with_exact(10)
            }
        }
        assert!(matches!(
            block_on(read_capped(Declared, 9)),
            Err(ReadError::TooLarge)
        ));
    }

    #[test]
    fn a_streamed_body_is_refused_at_the_frame_that_passes_the_cap() {
        let polled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&polled);
        let frames = futures::stream::iter(0..100).map(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(Frame::data(Bytes::from_static(&[0; 4])))
        });
        use futures::StreamExt;
        let body = StreamBody::new(frames);
        assert!(matches!(
            block_on(read_capped(body, 10)),
            Err(ReadError::TooLarge)
        ));
        assert_eq!(
            polled.load(Ordering::SeqCst),
            3,
            "read no further than the cap"
        );
    }

    #[test]
    fn a_full_body_is_one_frame_with_its_exact_size() {
        let body = OuterBody::full("abc");
        assert_eq!(body.size_hint().exact(), Some(3));
        let collected = block_on(body.collect()).unwrap().to_bytes();
        assert_eq!(collected, "abc");
    }

    #[test]
    fn a_stream_slot_is_refused_at_the_limit_and_freed_on_drop() {
        let count = Arc::new(AtomicUsize::new(0));
        let a = StreamSlot::acquire(&count, 2, Transport::Sse).unwrap();
        let _b = StreamSlot::acquire(&count, 2, Transport::Sse).unwrap();
        assert!(StreamSlot::acquire(&count, 2, Transport::Sse).is_none());
        drop(a);
        assert!(StreamSlot::acquire(&count, 2, Transport::Sse).is_some());
    }
}
