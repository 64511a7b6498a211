//! Tasks that wake themselves run again after the others, and after the runtime has looked for
//! I/O: for executors that would run them first.
//!
//! Outer's event streams, its cooperative budget ([`outer_core::coop`]) and hyper all hand the
//! thread back the same way: they wake their own task and answer `Pending`. That relies on the
//! executor running the tasks already waiting before it runs that one again. smol's does. Some
//! run a task that woke itself during its own poll again at once, ahead of the others: monoio
//! does (the front of its queue, with no cap), and it looks for new I/O and fires timers only
//! when no task is left. There, one stream read flat out would run alone, and no other
//! connection would be read, accepted or timed out.
//!
//! [`WakeBehind`] wraps a task for such an executor: it catches a wake that comes during the
//! task's own poll and defers it to a zero-length sleep on the runtime's [`Timer`], which the
//! runtime fires only on its next turn of the driver, after the tasks that were waiting. Wakes
//! from anywhere else go straight through. An adapter wraps what it spawns:
//!
//! ```
//! # #[derive(Debug, Clone, Copy)] struct MyRuntime;
//! # impl outer_core::rt::Timer for MyRuntime {
//! #     fn sleep(&self, _: std::time::Duration) -> outer_core::rt::Sleep { Box::pin(std::future::ready(())) }
//! #     fn now(&self) -> std::time::Duration { std::time::Duration::ZERO }
//! # }
//! use outer_http::fair::WakeBehind;
//! let task = WakeBehind::new(async { /* a connection, say */ }, MyRuntime);
//! # futures::executor::block_on(task);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use std::time::Duration;

use outer_core::rt::{Sleep, Timer};

/// A task whose wakes during its own poll are deferred to the runtime's next turn: see the
/// [module docs](self).
pub struct WakeBehind<F, T> {
    future: Pin<Box<F>>,
    timer: T,
    forward: Arc<Forward>,
    /// `forward` as the waker the wrapped future is polled with, made once.
    waker: Waker,
    /// Set when the task woke itself: the wake it asked for, deferred.
    deferred: Option<Sleep>,
}

// Nothing is pinned in place: the task is boxed, and the timer is only borrowed.
impl<F, T> Unpin for WakeBehind<F, T> {}

impl<F, T> std::fmt::Debug for WakeBehind<F, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeBehind")
            .field("deferred", &self.deferred.is_some())
            .finish_non_exhaustive()
    }
}

impl<F: Future<Output = ()>, T: Timer> WakeBehind<F, T> {
    /// Wraps `future`, deferring its own wakes to sleeps of zero on `timer`.
    pub fn new(future: F, timer: T) -> Self {
        let forward = Arc::new(Forward::default());
        Self {
            future: Box::pin(future),
            timer,
            waker: Waker::from(Arc::clone(&forward)),
            forward,
            deferred: None,
        }
    }
}

/// The waker the wrapped future sees: outside its poll it wakes the task; during the poll it
/// only notes the wake.
#[derive(Default)]
struct Forward {
    task: AtomicWaker,
    polling: AtomicBool,
    woken_while_polling: AtomicBool,
}

impl Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::Acquire) {
            self.woken_while_polling.store(true, Ordering::Release);
        } else {
            self.task.wake();
        }
    }
}

impl<F: Future<Output = ()>, T: Timer> Future for WakeBehind<F, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.forward.task.register(cx.waker());
        // Polled, for whatever reason: a deferred wake is no longer owed.
        this.deferred = None;
        this.forward.polling.store(true, Ordering::Release);
        let outcome = this
            .future
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker));
        this.forward.polling.store(false, Ordering::Release);
        if outcome.is_pending()
            && this
                .forward
                .woken_while_polling
                .swap(false, Ordering::AcqRel)
        {
            let mut turn = this.timer.sleep(Duration::ZERO);
            // Polled once to register the task with the timer; a timer that is ready at once
            // wakes the task at once.
            if turn.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            } else {
                this.deferred = Some(turn);
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// A timer whose sleeps stay pending until the test fires them.
    #[derive(Clone, Debug, Default)]
    struct Manual(Arc<Mutex<Vec<futures::channel::oneshot::Sender<()>>>>);

    impl Timer for Manual {
        fn sleep(&self, _: Duration) -> Sleep {
            let (fire, fired) = futures::channel::oneshot::channel();
            self.0.lock().unwrap().push(fire);
            Box::pin(async move {
                let _ = fired.await;
            })
        }
        fn now(&self) -> Duration {
            Duration::ZERO
        }
    }

    #[derive(Default)]
    struct CountWakes(AtomicUsize);

    impl Wake for CountWakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_wake_during_the_poll_waits_for_the_timer_and_others_go_straight_through() {
        let timer = Manual::default();
        let wakes = Arc::new(CountWakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let (outside, mut woken_from_outside) = futures::channel::mpsc::unbounded::<Waker>();
        let mut polls = 0;
        let mut task = WakeBehind::new(
            std::future::poll_fn(move |cx| {
                polls += 1;
                match polls {
                    1 => cx.waker().wake_by_ref(), // yields by waking itself
                    2 => outside.unbounded_send(cx.waker().clone()).unwrap(), // waits on I/O
                    _ => return Poll::Ready(()),
                }
                Poll::Pending
            }),
            timer.clone(),
        );
        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "not woken at once");
        assert_eq!(timer.0.lock().unwrap().len(), 1, "deferred to a sleep");
        timer.0.lock().unwrap().pop().unwrap().send(()).unwrap();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            1,
            "woken when the timer fires"
        );

        assert!(Pin::new(&mut task).poll(&mut cx).is_pending());
        woken_from_outside.try_recv().unwrap().wake();
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            2,
            "an outside wake goes straight through"
        );
        assert!(timer.0.lock().unwrap().is_empty());
        assert!(Pin::new(&mut task).poll(&mut cx).is_ready());
    }
}
