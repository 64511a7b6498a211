//! Cooperative yielding: a budget of ready answers for one turn of a task, so that a handler
//! looping over futures that are always ready still hands its thread back to the runtime.
//!
//! A future that answers at once every time it is polled (a publisher subscription that reports
//! a gap on its first poll, say) never returns `Pending`, so a handler that loops over it never
//! gives its thread back: on a single-threaded executor nothing else is served, and shutdown
//! never runs. Tokio solves this for its own sockets and channels with a budget per task turn;
//! this is the same idea for Outer's futures, with no runtime. The server polls each request's
//! and each stream's work inside [`budgeted`]; Outer's publisher subscriptions spend from it with
//! [`poll_proceed`], and once it is spent they wake their task and answer `Pending`, so the
//! task runs again after the others. Outside [`budgeted`], nothing is limited.
//!
//! It cannot stop a handler that spins without awaiting anything, or that only awaits futures of
//! its own that are always ready: async Rust has no preemption. Such a handler should await
//! something that yields now and then.
//!
//! ```
//! use core::task::{Context, Poll};
//! use outer_core::coop;
//!
//! // A future that is always ready, as a leaf that spends the budget.
//! fn poll_ready_thing(cx: &mut Context<'_>) -> Poll<u32> {
//!     let progress = core::task::ready!(coop::poll_proceed(cx));
//!     progress.made_progress();
//!     Poll::Ready(7)
//! }
//!
//! let mut cx = Context::from_waker(core::task::Waker::noop());
//! let ready = coop::budgeted(|| {
//!     (0..1000).take_while(|_| poll_ready_thing(&mut cx).is_ready()).count()
//! });
//! assert_eq!(ready, coop::BUDGET as usize); // then it yields
//! assert!(poll_ready_thing(&mut cx).is_ready()); // no budget outside `budgeted`
//! ```

use core::task::{Context, Poll};

/// How many ready answers a task turn may get from Outer's futures before they yield: tokio's
/// figure, a few microseconds of work at most.
pub const BUDGET: u32 = 128;

/// The budget store's value outside any [`budgeted`] call.
const UNLIMITED: u32 = u32::MAX;

#[cfg(feature = "std")]
mod store {
    use core::cell::Cell;

    std::thread_local! {
        static LEFT: Cell<u32> = const { Cell::new(super::UNLIMITED) };
    }

    pub(super) fn get() -> u32 {
        // During thread teardown the budget is gone: nothing is limited then.
        LEFT.try_with(Cell::get).unwrap_or(super::UNLIMITED)
    }

    pub(super) fn set(left: u32) {
        let _ = LEFT.try_with(|cell| cell.set(left));
    }
}

/// Without std there are no thread-locals: one global budget, read and written with plain loads
/// and stores (which every target with 32-bit atomics has, Cortex-M0 included). A no_std target
/// usually runs one executor thread; with several, they share the budget, which only moves when
/// tasks yield, never whether the work is done.
#[cfg(not(feature = "std"))]
mod store {
    use core::sync::atomic::{AtomicU32, Ordering};

    static LEFT: AtomicU32 = AtomicU32::new(super::UNLIMITED);

    pub(super) fn get() -> u32 {
        LEFT.load(Ordering::Relaxed)
    }

    pub(super) fn set(left: u32) {
        LEFT.store(left, Ordering::Relaxed);
    }
}

/// Puts the budget back as it was before [`budgeted`], even if the closure panics.
struct Restore(u32);

impl Drop for Restore {
    fn drop(&mut self) {
        store::set(self.0);
    }
}

/// Runs `poll` with a fresh budget of [`BUDGET`] for the Outer futures it polls, and restores
/// the budget before it afterwards. Inside another `budgeted` call it keeps the outer budget,
/// so that a task turn has one budget however its polls nest.
///
/// The HTTP layer calls it around every poll of a request's answer and of an event stream; call
/// it yourself where you poll Outer's futures in a task of your own.
pub fn budgeted<R>(poll: impl FnOnce() -> R) -> R {
    let before = store::get();
    let _restore = Restore(before);
    if before == UNLIMITED {
        store::set(BUDGET);
    }
    poll()
}

/// Spends one unit of the budget before a future answers.
///
/// `Ready` with a [`Progress`] while the budget lasts (always, outside [`budgeted`]); once it is
/// spent, wakes the task and answers `Pending`, so the task yields and is polled again later. A
/// future that then turns out to have nothing to answer drops the [`Progress`] unused, which
/// gives the unit back: only ready answers count.
pub fn poll_proceed(cx: &mut Context<'_>) -> Poll<Progress> {
    match store::get() {
        UNLIMITED => Poll::Ready(Progress { refund: false }),
        0 => {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
        left => {
            store::set(left - 1);
            Poll::Ready(Progress { refund: true })
        }
    }
}

/// Polls a future's answer with [`poll_proceed`] around it: the unit is spent when `poll` answers
/// `Ready`, given back when it answers `Pending`. What a leaf future of a publisher does in its
/// `poll_next`.
pub fn poll_spending<T>(
    cx: &mut Context<'_>,
    poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
) -> Poll<T> {
    let progress = core::task::ready!(poll_proceed(cx));
    let answer = poll(cx);
    if answer.is_ready() {
        progress.made_progress();
    }
    answer
}

/// A unit taken by [`poll_proceed`]: call [`made_progress`](Self::made_progress) when the future
/// answers `Ready`; dropped without that, the unit goes back.
#[derive(Debug)]
#[must_use = "dropping it gives the unit back: call made_progress() when answering Ready"]
pub struct Progress {
    /// Whether dropping it gives a unit back: it took one, and no answer was made with it.
    refund: bool,
}

impl Progress {
    /// The future answered: the unit stays spent.
    pub fn made_progress(mut self) {
        self.refund = false;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if self.refund {
            let left = store::get();
            if left != UNLIMITED {
                store::set(left.saturating_add(1).min(BUDGET));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::task::Waker;

    #[test]
    fn a_spent_budget_yields_once_and_wakes_the_task() {
        use alloc::sync::Arc;
        use alloc::task::Wake;
        use core::sync::atomic::{AtomicUsize, Ordering};
        struct Count(AtomicUsize);
        impl Wake for Count {
            fn wake(self: Arc<Self>) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&waker);
        budgeted(|| {
            for _ in 0..BUDGET {
                match poll_proceed(&mut cx) {
                    Poll::Ready(progress) => progress.made_progress(),
                    Poll::Pending => panic!("yielded before the budget was spent"),
                }
            }
            assert!(poll_proceed(&mut cx).is_pending());
            assert_eq!(count.0.load(Ordering::SeqCst), 1, "woken to run again");
        });
        // The next turn starts afresh.
        budgeted(|| assert!(poll_proceed(&mut cx).is_ready()));
    }

    #[test]
    fn an_answer_that_was_not_ready_gives_its_unit_back() {
        let mut cx = Context::from_waker(Waker::noop());
        budgeted(|| {
            for _ in 0..BUDGET * 4 {
                // Polled, but nothing to answer: the unit is not spent.
                let Poll::Ready(progress) = poll_proceed(&mut cx) else {
                    panic!("a future with nothing to answer spent the budget")
                };
                drop(progress);
            }
        });
    }

    #[test]
    fn nested_calls_share_the_outer_budget_and_restore_it() {
        let mut cx = Context::from_waker(Waker::noop());
        budgeted(|| {
            let Poll::Ready(progress) = poll_proceed(&mut cx) else {
                panic!()
            };
            progress.made_progress();
            budgeted(|| assert_eq!(store::get(), BUDGET - 1, "the outer budget"));
            assert_eq!(store::get(), BUDGET - 1);
        });
        assert_eq!(store::get(), UNLIMITED, "unlimited again outside");
    }
}
