//! A task that wakes itself runs again after the others and after the driver, not before them.
//!
//! monoio runs a task that woke itself during its own poll again at once, ahead of the tasks
//! already waiting (the front of its queue: tokio's LIFO slot, without tokio's cap on it), and
//! it looks for new I/O readiness (on io_uring, for poll-style sockets such as hyper's) and
//! fires timers only when its queue is empty. Outer's event streams, its cooperative budget and
//! hyper all hand the thread back by waking their own task and answering `Pending`; on monoio,
//! one always-ready stream would then run alone, and no other connection would be read, accepted
//! or timed out. [`BehindOthers`] catches that wake and defers it to a timer that is already
//! due: monoio fires it only once it has run the waiting tasks and polled its driver.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// `future`, woken behind the others when it wakes itself. See the [module docs](self).
pub(crate) struct BehindOthers<F> {
    future: Pin<Box<F>>,
    waker: Arc<Forward>,
    /// Set when the future woke itself: the wake it asked for, deferred.
    driver_turn: Option<Pin<Box<monoio::time::Sleep>>>,
}

impl<F> BehindOthers<F> {
    pub(crate) fn new(future: F) -> Self {
        Self {
            future: Box::pin(future),
            waker: Arc::new(Forward::default()),
            driver_turn: None,
        }
    }
}

/// The waker the wrapped future sees: outside its poll it wakes the task; during the poll it
/// only notes the wake.
#[derive(Default)]
struct Forward {
    task: Mutex<Option<Waker>>,
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
        } else if let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner) {
            task.wake_by_ref();
        }
    }
}

impl<F: Future<Output = ()>> Future for BehindOthers<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        {
            let mut task = this
                .waker
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        // Polled, for whatever reason: a deferred wake is no longer owed.
        this.driver_turn = None;
        this.waker.polling.store(true, Ordering::Release);
        let waker = Waker::from(Arc::clone(&this.waker));
        let outcome = this.future.as_mut().poll(&mut Context::from_waker(&waker));
        this.waker.polling.store(false, Ordering::Release);
        if outcome.is_pending() && this.waker.woken_while_polling.swap(false, Ordering::AcqRel) {
            let mut turn = Box::pin(monoio::time::sleep(Duration::ZERO));
            // Registers this task with the timer, which fires when the driver next parks.
            if turn.as_mut().poll(cx).is_ready() {
                cx.waker().wake_by_ref();
            } else {
                this.driver_turn = Some(turn);
            }
        }
        outcome
    }
}
