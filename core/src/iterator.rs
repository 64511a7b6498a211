//! Event iterators: the stream a streaming procedure returns, written like a generator.
//!
//! A handler is an async block that receives an [`Emitter`], sends events through it and ends
//! with a return value or an error. The [`EventIterator`] polls that block itself, inline, so it
//! needs no runtime and no spawned task. Dropping the iterator drops the block at once: that is
//! how a disconnected client cancels a handler, and the block's `Drop` guards are its `finally`.
//! This module does not encode anything for the wire; the protocols do.

use alloc::boxed::Box;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use futures_core::{FusedStream, Stream};

use crate::error::{ErrorCode, RpcError};
use crate::event::Event;
use crate::sync::{Arc, Mutex};

type BoxedHandler<R> = Pin<Box<dyn Future<Output = Result<R, RpcError>> + Send>>;

/// A stream of events that ends with a return value, an error, or by being dropped.
///
/// As a [`Stream`] it yields `Ok(event)` for each event and, if the handler fails, one `Err`
/// before it ends. After it ends, [`EventIterator::take_return`] gives the return value.
///
/// ```
/// use futures::StreamExt;
/// use outer_core::{event_iterator, tracked, RpcError};
///
/// let mut counter = event_iterator(|mut emit| async move {
///     for n in 1..=3u32 {
///         emit.send(tracked(n, n * 10)?).await?;
///     }
///     Ok("done")
/// });
///
/// futures::executor::block_on(async {
///     let mut seen = Vec::new();
///     while let Some(event) = counter.next().await {
///         let event = event.unwrap();
///         seen.push((event.id().unwrap().to_string(), *event.data()));
///     }
///     assert_eq!(seen, [("1".into(), 10), ("2".into(), 20), ("3".into(), 30)]);
///     assert_eq!(counter.take_return(), Some("done"));
/// });
/// ```
pub struct EventIterator<T, R = ()> {
    handler: Option<BoxedHandler<R>>,
    slot: Arc<Slot<T>>,
    returned: Option<R>,
    /// A handler error held back while an event sent just before it goes out.
    failed: Option<RpcError>,
    finished: bool,
}

/// Builds an [`EventIterator`] from a handler written like a generator: it gets an [`Emitter`]
/// to send events through and returns `Ok(value)` or `Err(error)` when it is done.
///
/// The handler runs only while the iterator is polled, and no further than its next `send`:
/// like a generator's `yield`, `send` waits until the consumer has taken the event.
pub fn event_iterator<T, R, F, Fut>(handler: F) -> EventIterator<T, R>
where
    T: Send + 'static,
    F: FnOnce(Emitter<T>) -> Fut,
    Fut: Future<Output = Result<R, RpcError>> + Send + 'static,
{
    let slot = Arc::new(Slot::new());
    let emitter = Emitter {
        slot: Arc::clone(&slot),
    };
    EventIterator {
        handler: Some(Box::pin(handler(emitter))),
        slot,
        returned: None,
        failed: None,
        finished: false,
    }
}

impl<T, R> EventIterator<T, R> {
    /// The handler's return value, once the stream has ended without error. `None` before that,
    /// after an error, or when taken already.
    pub fn take_return(&mut self) -> Option<R> {
        self.returned.take()
    }

    /// True once the handler has finished (returned or failed) and every event was taken.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl<T, R> EventIterator<T, R>
where
    T: Send + 'static,
    R: Send + 'static,
{
    /// An iterator that yields the events of `events` in order, then returns `returned`.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use outer_core::{EventIterator, Event, RpcError};
    /// let mut it: EventIterator<i32, &str> =
    ///     EventIterator::from_events([Event::new(1), Event::new(2)], "end");
    /// futures::executor::block_on(async {
    ///     assert_eq!(it.next().await.unwrap().unwrap().into_data(), 1);
    ///     assert_eq!(it.next().await.unwrap().unwrap().into_data(), 2);
    ///     assert!(it.next().await.is_none());
    ///     assert_eq!(it.take_return(), Some("end"));
    /// });
    /// ```
    pub fn from_events<I>(events: I, returned: R) -> Self
    where
        I: IntoIterator<Item = Event<T>>,
        I::IntoIter: Send + 'static,
    {
        let events = events.into_iter();
        event_iterator(move |mut emit| async move {
            for event in events {
                if emit.send(event).await.is_err() {
                    break;
                }
            }
            Ok(returned)
        })
    }

    /// An iterator that fails at once with `error`, without yielding.
    pub fn from_error(error: impl Into<RpcError>) -> Self {
        let error = error.into();
        event_iterator(move |_emit: Emitter<T>| async move { Err(error) })
    }
}

// Nothing in the iterator is pinned structurally: the handler is boxed and the return value and
// error are only ever moved out, so the iterator may move freely.
impl<T, R> Unpin for EventIterator<T, R> {}

impl<T, R> Stream for EventIterator<T, R> {
    type Item = Result<Event<T>, RpcError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        // An event sent before the handler finished (or by an emitter that outlived it in
        // another task) goes out before the end.
        if let Some(event) = this.slot.take(cx.waker()) {
            return Poll::Ready(Some(Ok(event)));
        }
        let Some(handler) = this.handler.as_mut() else {
            if this.finished {
                return Poll::Ready(None);
            }
            this.finished = true;
            return Poll::Ready(this.failed.take().map(Err));
        };
        match handler.as_mut().poll(cx) {
            Poll::Pending => match this.slot.take(cx.waker()) {
                Some(event) => Poll::Ready(Some(Ok(event))),
                None => Poll::Pending,
            },
            Poll::Ready(result) => {
                // Drop the handler now, so its cleanup runs when it ends, not when the
                // iterator is dropped.
                this.handler = None;
                this.slot.close();
                match result {
                    Ok(value) => this.returned = Some(value),
                    Err(error) => this.failed = Some(error),
                }
                if let Some(event) = this.slot.take(cx.waker()) {
                    return Poll::Ready(Some(Ok(event)));
                }
                this.finished = true;
                Poll::Ready(this.failed.take().map(Err))
            }
        }
    }
}

impl<T, R> FusedStream for EventIterator<T, R> {
    fn is_terminated(&self) -> bool {
        self.finished
    }
}

impl<T, R> Drop for EventIterator<T, R> {
    fn drop(&mut self) {
        // Drop the handler first: its Drop guards are the cancellation cleanup. Then tell an
        // emitter that lives on elsewhere that nobody listens any more.
        self.handler = None;
        self.slot.close();
    }
}

impl<T, R: fmt::Debug> fmt::Debug for EventIterator<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventIterator")
            .field("running", &self.handler.is_some())
            .field("returned", &self.returned)
            .field("finished", &self.finished)
            .finish()
    }
}

/// The sending half a handler gets from [`event_iterator`].
pub struct Emitter<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Emitter<T> {
    /// Sends one event and waits until the consumer has taken it, as a generator's `yield`.
    ///
    /// Fails with [`Closed`] when the iterator is gone (the client disconnected); a handler
    /// usually returns at once, which `?` does for it. Once the returned future has been polled,
    /// the event is delivered even if that future is then dropped.
    pub fn send(&mut self, event: Event<T>) -> SendEvent<'_, T> {
        SendEvent {
            slot: &self.slot,
            event: Some(event),
        }
    }

    /// Sends a value with no meta: `send(Event::new(value))`.
    pub fn send_value(&mut self, value: T) -> SendEvent<'_, T> {
        self.send(Event::new(value))
    }

    /// True when the iterator is gone: sending would fail.
    pub fn is_closed(&self) -> bool {
        self.slot.is_closed()
    }
}

impl<T> fmt::Debug for Emitter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emitter")
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The future of [`Emitter::send`].
#[must_use = "an event is sent only when the future is awaited"]
pub struct SendEvent<'a, T> {
    slot: &'a Slot<T>,
    event: Option<Event<T>>,
}

impl<T> Unpin for SendEvent<'_, T> {}

impl<T> Future for SendEvent<'_, T> {
    type Output = Result<(), Closed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match this.event.take() {
            Some(event) => match this.slot.offer(event, cx.waker()) {
                Offer::Placed => Poll::Pending,
                Offer::Busy(event) => {
                    this.event = Some(event);
                    Poll::Pending
                }
                Offer::Closed => Poll::Ready(Err(Closed)),
            },
            None => this.slot.poll_taken(cx.waker()),
        }
    }
}

impl<T> fmt::Debug for SendEvent<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendEvent")
            .field("placed", &self.event.is_none())
            .finish()
    }
}

/// The consumer of an [`EventIterator`] is gone: the client disconnected or stopped listening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the event stream's consumer is gone")
    }
}

impl core::error::Error for Closed {}

impl From<Closed> for RpcError {
    fn from(_: Closed) -> Self {
        RpcError::new(
            ErrorCode::CLIENT_CLOSED_REQUEST,
            "the client closed the stream",
        )
    }
}

/// A one-event rendezvous between an [`Emitter`] and its [`EventIterator`].
///
/// Hand-written rather than a channel crate's: the iterator polls the handler inline, so the
/// common case needs neither a queue nor a wake-up, and `send` must wait for the *take*, not for
/// buffer space, to behave like `yield`.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    event: Option<Event<T>>,
    /// Set once the placed event has been taken, until the sender sees it.
    taken: bool,
    closed: bool,
    consumer: Option<Waker>,
    sender: Option<Waker>,
}

enum Offer<T> {
    Placed,
    Busy(Event<T>),
    Closed,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Self {
            state: Mutex::new(SlotState {
                event: None,
                taken: false,
                closed: false,
                consumer: None,
                sender: None,
            }),
        }
    }

    fn offer(&self, event: Event<T>, waker: &Waker) -> Offer<T> {
        let consumer = self.state.with(|state| {
            if state.closed {
                return Err(Offer::Closed);
            }
            if state.event.is_some() {
                // A send dropped after placing its event: this one waits for that take.
                store_waker(&mut state.sender, waker);
                return Err(Offer::Busy(event));
            }
            // The emitter is not Clone and `send` borrows it mutably, so this is the only
            // send in flight: a `taken` left over belongs to a dropped send and is stale.
            state.taken = false;
            state.event = Some(event);
            store_waker(&mut state.sender, waker);
            Ok(state.consumer.take())
        });
        let consumer = match consumer {
            Ok(consumer) => consumer,
            Err(refused) => return refused,
        };
        if let Some(consumer) = consumer {
            // The consumer polled while the slot was empty and is waiting: an emitter in
            // another task must wake it. Inline, this is the same task and costs one re-poll.
            if !consumer.will_wake(waker) {
                consumer.wake();
            }
        }
        Offer::Placed
    }

    fn poll_taken(&self, waker: &Waker) -> Poll<Result<(), Closed>> {
        self.state.with(|state| {
            if state.taken {
                state.taken = false;
                return Poll::Ready(Ok(()));
            }
            if state.event.is_none() {
                // Neither placed nor taken: the slot was closed and cleared.
                return Poll::Ready(Err(Closed));
            }
            if state.closed {
                // The iterator is gone with the event still in the slot: it was never delivered.
                state.event = None;
                return Poll::Ready(Err(Closed));
            }
            store_waker(&mut state.sender, waker);
            Poll::Pending
        })
    }

    fn take(&self, waker: &Waker) -> Option<Event<T>> {
        let (event, sender) = self.state.with(|state| match state.event.take() {
            Some(event) => {
                state.taken = true;
                Some((event, state.sender.take()))
            }
            None => {
                store_waker(&mut state.consumer, waker);
                None
            }
        })?;
        if let Some(sender) = sender {
            if !sender.will_wake(waker) {
                sender.wake();
            }
        }
        Some(event)
    }

    fn close(&self) {
        let sender = self.state.with(|state| {
            state.closed = true;
            state.consumer = None;
            state.sender.take()
        });
        if let Some(sender) = sender {
            sender.wake();
        }
    }

    fn is_closed(&self) -> bool {
        self.state.with(|state| state.closed)
    }
}

fn store_waker(slot: &mut Option<Waker>, waker: &Waker) {
    match slot {
        Some(old) if old.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use futures::executor::block_on;
    use futures::StreamExt;

    struct Guard(Arc<AtomicBool>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn yields_events_in_order_then_the_return_value() {
        let mut it = event_iterator(|mut emit| async move {
            emit.send_value(1).await?;
            emit.send(Event::new(2).with_retry(5)).await?;
            Ok::<_, RpcError>(42)
        });
        let events: Vec<_> = block_on(it.by_ref().collect());
        let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(events[0], Event::new(1));
        assert_eq!(events[1].meta().retry(), Some(5));
        assert_eq!(it.take_return(), Some(42));
        assert!(it.is_finished());
        assert!(
            block_on(it.next()).is_none(),
            "a finished iterator stays finished"
        );
    }

    #[test]
    fn an_error_ends_the_stream_after_the_events_before_it() {
        let mut it = event_iterator(|mut emit| async move {
            emit.send_value(1).await?;
            Err::<(), _>(RpcError::new(ErrorCode::BAD_REQUEST, "nope"))
        });
        assert_eq!(block_on(it.next()).unwrap().unwrap().into_data(), 1);
        let err = block_on(it.next()).unwrap().unwrap_err();
        assert_eq!((err.code(), err.message()), ("BAD_REQUEST", "nope"));
        assert!(block_on(it.next()).is_none());
        assert_eq!(it.take_return(), None);
    }

    #[test]
    fn send_waits_for_the_consumer_like_yield() {
        let progress = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&progress);
        let mut it = event_iterator(move |mut emit| async move {
            for n in 0..3 {
                emit.send_value(n).await?;
                seen.store(n + 1, Ordering::SeqCst);
            }
            Ok::<_, RpcError>(())
        });
        block_on(async {
            it.next().await;
            // The handler is parked in its first send until the next poll.
            assert_eq!(progress.load(Ordering::SeqCst), 0);
            it.next().await;
            assert_eq!(progress.load(Ordering::SeqCst), 1);
        });
    }

    #[test]
    fn dropping_the_iterator_mid_stream_runs_the_handlers_cleanup_at_once() {
        let cleaned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cleaned);
        let mut it = event_iterator(move |mut emit| async move {
            let _guard = Guard(flag);
            let mut n = 0u64;
            loop {
                emit.send_value(n).await?;
                n += 1;
            }
            #[allow(unreachable_code)]
            Ok::<(), RpcError>(())
        });
        block_on(async {
            assert_eq!(it.next().await.unwrap().unwrap().into_data(), 0);
            assert_eq!(it.next().await.unwrap().unwrap().into_data(), 1);
        });
        assert!(!cleaned.load(Ordering::SeqCst));
        drop(it);
        assert!(
            cleaned.load(Ordering::SeqCst),
            "Drop guard must run on cancel"
        );
    }

    #[test]
    fn dropping_before_the_first_poll_runs_cleanup_of_moved_in_values() {
        let cleaned = Arc::new(AtomicBool::new(false));
        let guard = Guard(Arc::clone(&cleaned));
        let it = event_iterator(move |_emit: Emitter<()>| async move {
            let _guard = guard;
            Ok::<(), RpcError>(())
        });
        drop(it);
        assert!(cleaned.load(Ordering::SeqCst));
    }

    #[test]
    fn the_handler_is_dropped_as_soon_as_it_returns() {
        let cleaned = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cleaned);
        let mut it = event_iterator(move |mut emit| async move {
            let _guard = Guard(flag);
            emit.send_value(1).await?;
            Ok::<_, RpcError>(())
        });
        block_on(async {
            it.next().await;
            assert!(!cleaned.load(Ordering::SeqCst));
            assert!(it.next().await.is_none());
        });
        assert!(
            cleaned.load(Ordering::SeqCst),
            "cleanup runs at the end, not at drop"
        );
    }

    #[test]
    fn an_emitter_in_another_thread_learns_the_consumer_is_gone() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut it = event_iterator(move |emit: Emitter<u32>| async move {
            tx.send(emit).ok();
            // Stays pending: the events come from the other thread.
            core::future::pending::<()>().await;
            Ok::<(), RpcError>(())
        });
        let first = block_on(async { futures::poll!(it.next()) });
        assert!(first.is_pending());
        let mut emit = rx.recv().unwrap();
        let sender = std::thread::spawn(move || {
            let ok = block_on(emit.send_value(7));
            let after_drop = block_on(emit.send_value(8));
            (ok, after_drop)
        });
        let event = block_on(it.next()).unwrap().unwrap();
        assert_eq!(event.into_data(), 7);
        // Let the sender see its event taken before the iterator goes away.
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(it);
        let (ok, after_drop) = sender.join().unwrap();
        assert_eq!(ok, Ok(()));
        assert_eq!(after_drop, Err(Closed));
    }

    #[test]
    fn a_send_that_is_not_taken_fails_when_the_iterator_goes() {
        let slot: Slot<u8> = Slot::new();
        let waker = futures::task::noop_waker();
        assert!(matches!(slot.offer(Event::new(1), &waker), Offer::Placed));
        slot.close();
        assert_eq!(slot.poll_taken(&waker), Poll::Ready(Err(Closed)));
    }

    #[test]
    fn a_send_dropped_after_placing_still_delivers_and_the_next_send_works() {
        let mut it = event_iterator(|mut emit| async move {
            {
                let mut first = emit.send_value(1);
                assert!(futures::poll!(&mut first).is_pending());
            }
            emit.send_value(2).await?;
            emit.send_value(3).await?;
            Ok::<_, RpcError>(())
        });
        let got: Vec<i32> = block_on(it.by_ref().map(|e| e.unwrap().into_data()).collect());
        assert_eq!(got, [1, 2, 3]);
    }

    #[test]
    fn closed_becomes_client_closed_request() {
        let err = RpcError::from(Closed);
        assert_eq!((err.code(), err.status()), ("CLIENT_CLOSED_REQUEST", 499));
    }

    #[test]
    fn from_error_fails_without_yielding() {
        let mut it: EventIterator<u8, ()> = EventIterator::from_error(RpcError::internal("x"));
        assert!(block_on(it.next()).unwrap().is_err());
        assert!(block_on(it.next()).is_none());
    }
}
