//! A simulated clock: a [`Timer`] whose time moves only when the test says so.
//!
//! Sleeps complete when [`SimClock::advance`] carries the clock past their deadline, so
//! keep-alives, stream deadlines and retry delays run in any order a test chooses, with no real
//! waiting and the same result every run.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use outer_core::rt::{Sleep, Timer};

/// A clock for tests. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use outer_core::rt::Timer;
/// use outer_harness::SimClock;
///
/// let clock = SimClock::new();
/// let mut sleep = clock.sleep(Duration::from_secs(5));
/// let waker = futures::task::noop_waker();
/// let mut cx = std::task::Context::from_waker(&waker);
/// assert!(sleep.as_mut().poll(&mut cx).is_pending());
/// clock.advance(Duration::from_secs(5));
/// assert!(sleep.as_mut().poll(&mut cx).is_ready());
/// ```
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    now: Duration,
    next_id: u64,
    /// Sleeps not yet due, by (deadline, id), with the waker of their last poll.
    waiting: BTreeMap<(Duration, u64), Option<Waker>>,
}

impl SimClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// The time since the clock started.
    pub fn now(&self) -> Duration {
        self.lock().now
    }

    /// Moves time forward by `by`, waking every sleep that is now due.
    pub fn advance(&self, by: Duration) {
        let due: Vec<Waker> = {
            let mut state = self.lock();
            state.now += by;
            let now = state.now;
            let later = state.waiting.split_off(&(now, u64::MAX));
            let due = std::mem::replace(&mut state.waiting, later);
            due.into_values().flatten().collect()
        };
        for waker in due {
            waker.wake();
        }
    }

    /// How long until the next sleep is due, if any is waiting.
    pub fn next_deadline(&self) -> Option<Duration> {
        let state = self.lock();
        state
            .waiting
            .keys()
            .next()
            .map(|(deadline, _)| deadline.saturating_sub(state.now))
    }

    /// How many sleeps are waiting. A dropped sleep is forgotten at once, so this returning to
    /// zero shows that nothing still holds a timer: a cancelled stream left no keep-alive or
    /// deadline behind.
    pub fn pending(&self) -> usize {
        self.lock().waiting.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Timer for SimClock {
    fn sleep(&self, duration: Duration) -> Sleep {
        let mut state = self.lock();
        let deadline = state.now + duration;
        let id = state.next_id;
        state.next_id += 1;
        state.waiting.insert((deadline, id), None);
        Box::pin(SimSleep {
            clock: self.clone(),
            key: (deadline, id),
        })
    }

    fn now(&self) -> Duration {
        SimClock::now(self)
    }
}

struct SimSleep {
    clock: SimClock,
    key: (Duration, u64),
}

impl Future for SimSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.clock.lock();
        if state.now >= self.key.0 {
            state.waiting.remove(&self.key);
            return Poll::Ready(());
        }
        state.waiting.insert(self.key, Some(cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        self.clock.lock().waiting.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll(sleep: &mut Sleep) -> bool {
        let waker = futures::task::noop_waker();
        sleep
            .as_mut()
            .poll(&mut Context::from_waker(&waker))
            .is_ready()
    }

    #[test]
    fn sleeps_complete_in_deadline_order_only_when_time_reaches_them() {
        let clock = SimClock::new();
        let mut short = clock.sleep(Duration::from_millis(10));
        let mut long = clock.sleep(Duration::from_millis(30));
        assert!(!poll(&mut short) && !poll(&mut long));
        assert_eq!(clock.next_deadline(), Some(Duration::from_millis(10)));
        clock.advance(Duration::from_millis(10));
        assert!(poll(&mut short));
        assert!(!poll(&mut long));
        clock.advance(Duration::from_millis(25));
        assert!(poll(&mut long));
        assert_eq!(clock.now(), Duration::from_millis(35));
        assert_eq!(clock.next_deadline(), None);
    }

    #[test]
    fn a_dropped_sleep_is_forgotten() {
        let clock = SimClock::new();
        let sleep = clock.sleep(Duration::from_secs(1));
        drop(sleep);
        assert_eq!(clock.next_deadline(), None);
    }
}
