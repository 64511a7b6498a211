//! The graceful-shutdown signal: one flag that open event streams, connections and the accept
//! loop all wait on, without naming a runtime.
//!
//! It is not a timer or a task: what "graceful" waits for, and for how long, is the server's
//! business (see [`crate::server::ServerControl::shutdown`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use event_listener::{Event, EventListener};

/// A one-way signal: once triggered, it stays triggered and every waiter, past and future,
/// wakes.
///
/// An [`OuterService`](crate::OuterService) carries one. Triggering it makes every open event
/// stream end between two events with the protocol's interruption instead of a `done` frame
/// (for oRPC, a retryable 503 `error` event), so clients reconnect and resume elsewhere, and
/// every new request get 503 `SERVICE_UNAVAILABLE`.
///
/// ```
/// use outer_http::Shutdown;
///
/// let shutdown = Shutdown::new();
/// let waiter = shutdown.wait();
/// assert!(!shutdown.is_triggered());
/// shutdown.trigger();
/// futures::executor::block_on(waiter); // returns at once
/// assert!(shutdown.is_triggered());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    inner: Arc<Signal>,
}

impl Shutdown {
    /// A signal not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Triggers it. Calling it again does nothing.
    pub fn trigger(&self) {
        self.inner.fire();
    }

    /// Whether it was triggered.
    pub fn is_triggered(&self) -> bool {
        self.inner.is_fired()
    }

    /// A future that completes once the signal is triggered (at once if it already was). It
    /// owns what it needs, so it can outlive `self`.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        Arc::clone(&self.inner).wait()
    }
}

/// A flag plus an event to wake waiters: event-listener's documented check, listen, check again
/// pattern, so a trigger between the two checks is never missed.
#[derive(Debug, Default)]
pub(crate) struct Signal {
    fired: AtomicBool,
    event: Event,
}

impl Signal {
    pub(crate) fn fire(&self) {
        if !self.fired.swap(true, Ordering::SeqCst) {
            self.event.notify(usize::MAX);
        }
    }

    pub(crate) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    pub(crate) fn wait(self: Arc<Self>) -> Wait {
        Wait {
            signal: self,
            listener: None,
            registered: None,
        }
    }
}

/// Waits for a [`Signal`]. Every event stream's body and connection polls one each time its task
/// wakes, so that poll is kept to one atomic load: the listener (whose poll locks the event's
/// list, shared by every connection) is polled only to register a task's waker, not again while
/// that same task polls.
pub(crate) struct Wait {
    signal: Arc<Signal>,
    listener: Option<EventListener>,
    /// The waker the listener holds, once it holds one.
    registered: Option<Waker>,
}

impl Future for Wait {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            // Fired before notifying: any wake from the notification finds the flag set.
            if this.signal.is_fired() {
                return Poll::Ready(());
            }
            let Some(listener) = this.listener.as_mut() else {
                // Check, listen, check again: a fire in between is seen by the loop.
                this.listener = Some(this.signal.event.listen());
                continue;
            };
            if this
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                return Poll::Pending;
            }
            match Pin::new(listener).poll(cx) {
                Poll::Pending => {
                    this.registered = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(()) => {
                    this.listener = None;
                    this.registered = None;
                }
            }
        }
    }
}

/// Counts things that are open (connections) and wakes waiters when none are left.
#[derive(Debug, Default)]
pub(crate) struct OpenCount {
    open: std::sync::atomic::AtomicUsize,
    event: Event,
    /// A gauge that follows the count (`outer_connections_open`), if any.
    gauge: Option<::metrics::Gauge>,
}

impl OpenCount {
    /// A count that `gauge` follows.
    pub(crate) fn gauged(gauge: ::metrics::Gauge) -> Self {
        Self {
            gauge: Some(gauge),
            ..Self::default()
        }
    }

    /// Counts one more; the count goes down when the guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> OpenGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        if let Some(gauge) = &self.gauge {
            gauge.increment(1);
        }
        OpenGuard(Arc::clone(self))
    }

    pub(crate) fn get(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Completes when nothing is open.
    pub(crate) async fn idle(self: Arc<Self>) {
        self.below(1).await;
    }

    /// Completes when fewer than `limit` are open.
    pub(crate) async fn below(self: Arc<Self>, limit: usize) {
        loop {
            if self.get() < limit {
                return;
            }
            let listener = self.event.listen();
            if self.get() < limit {
                return;
            }
            listener.await;
        }
    }
}

/// One open thing; dropping it closes it.
#[derive(Debug)]
pub(crate) struct OpenGuard(Arc<OpenCount>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        if let Some(gauge) = &self.0.gauge {
            gauge.decrement(1);
        }
        // Every close, not only the last: the accept loop waits for a place under its limit.
        // With no one waiting this is one atomic read.
        self.0.event.notify(usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::FutureExt;

    #[test]
    fn a_waiter_made_before_the_trigger_wakes_and_one_made_after_is_ready() {
        let shutdown = Shutdown::new();
        let mut before = Box::pin(shutdown.wait());
        assert!((&mut before).now_or_never().is_none());
        shutdown.clone().trigger();
        assert!(before.now_or_never().is_some());
        assert!(shutdown.wait().now_or_never().is_some());
        shutdown.trigger();
        assert!(shutdown.is_triggered());
    }

    #[test]
    fn a_waiter_wakes_the_task_that_polled_it_last() {
        use futures::task::{waker, ArcWake};
        struct Woken(AtomicBool);
        impl ArcWake for Woken {
            fn wake_by_ref(this: &Arc<Self>) {
                this.0.store(true, Ordering::SeqCst);
            }
        }
        let shutdown = Shutdown::new();
        let mut waiter = Box::pin(shutdown.wait());
        let (a, b) = (
            Arc::new(Woken(AtomicBool::new(false))),
            Arc::new(Woken(AtomicBool::new(false))),
        );
        let (waker_a, waker_b) = (waker(Arc::clone(&a)), waker(Arc::clone(&b)));
        for waker in [&waker_a, &waker_a, &waker_b, &waker_b] {
            let mut cx = Context::from_waker(waker);
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
        }
        shutdown.trigger();
        assert!(b.0.load(Ordering::SeqCst), "the last task to poll is woken");
        assert!(!a.0.load(Ordering::SeqCst));
        let mut cx = Context::from_waker(&waker_b);
        assert!(waiter.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn idle_completes_when_the_last_guard_drops() {
        let count = Arc::new(OpenCount::default());
        let a = count.enter();
        let b = count.enter();
        let mut idle = Box::pin(Arc::clone(&count).idle());
        assert!((&mut idle).now_or_never().is_none());
        drop(a);
        assert!((&mut idle).now_or_never().is_none());
        drop(b);
        block_on(idle);
        assert_eq!(count.get(), 0);
    }

    #[test]
    fn below_completes_when_one_under_the_limit_closes() {
        let count = Arc::new(OpenCount::default());
        let guards: Vec<_> = (0..3).map(|_| count.enter()).collect();
        let mut below = Box::pin(Arc::clone(&count).below(3));
        assert!(
            (&mut below).now_or_never().is_none(),
            "three open, limit three"
        );
        let mut guards = guards.into_iter();
        drop(guards.next());
        block_on(below);
        assert!(Arc::clone(&count).below(3).now_or_never().is_some());
        assert!(Arc::clone(&count).below(2).now_or_never().is_none());
    }
}
