//! The runtime seam: the little Outer needs from an async runtime and cannot do itself.
//!
//! One seam, shaped like hyper's `rt`, implemented once per adapter (`outer_tokio::TokioRuntime`,
//! `outer_smol::SmolRuntime`; tests use the harness's simulated clock):
//! - [`Timer`]: sleeps, the time now, and the runtime's way to yield. Event streams use it for
//!   keep-alives and deadlines, the server for header timeouts, the client for backoff, the
//!   publishers for retention by age and reconnect delays.
//! - [`Spawn`]: starting a background task, for the pieces that run one (the Redis
//!   publisher's readers).
//! - [`Runtime`]: both, what an adapter gives.
//!
//! Sockets stay in the adapters.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

/// A future that completes once its duration has passed.
///
/// `Send`, because an event stream holds one for its keep-alives and a work-stealing runtime
/// moves streams between threads. A thread-per-core runtime, whose sleeps are not `Send`, hands
/// them over in `outer_http::local::Local`, which checks that they stay on their thread.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A background task handed to [`Spawn`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Makes sleeps and reads the time. Implement it for your runtime:
///
/// ```
/// use core::time::Duration;
/// use outer_core::rt::{Sleep, Timer};
///
/// /// A timer that never fires and whose time stands still: keep-alives off.
/// #[derive(Debug)]
/// struct Never;
/// impl Timer for Never {
///     fn sleep(&self, _: Duration) -> Sleep {
///         Box::pin(core::future::pending())
///     }
///     fn now(&self) -> Duration {
///         Duration::ZERO
///     }
/// }
/// ```
pub trait Timer: Send + Sync + core::fmt::Debug + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// The time now, measured from any fixed origin, on the same clock as
    /// [`sleep`](Timer::sleep). Monotonic: it never goes back.
    fn now(&self) -> Duration;

    /// A future that completes once [`now`](Timer::now) reaches `deadline`, at once if it has.
    fn sleep_until(&self, deadline: Duration) -> Sleep {
        self.sleep(deadline.saturating_sub(self.now()))
    }

    /// A future that hands the thread to the runtime's other tasks once, then completes: how an
    /// event stream that is always ready lets the rest run. `None` (the default): the stream
    /// wakes its own task and answers `Pending`, which puts it behind the others on executors
    /// that run tasks first in, first out (smol's). Tokio runs a task that woke itself during
    /// its poll next, ahead of the others, so its adapter gives `tokio::task::yield_now()`.
    fn yield_now(&self) -> Option<Sleep> {
        None
    }
}

/// A shared timer is a timer, so an `Arc<dyn Timer>` goes wherever a [`Timer`] is taken.
impl<T: Timer + ?Sized> Timer for crate::sync::Arc<T> {
    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn sleep_until(&self, deadline: Duration) -> Sleep {
        (**self).sleep_until(deadline)
    }
    fn yield_now(&self) -> Option<Sleep> {
        (**self).yield_now()
    }
}

/// Starts a task in the background and lets it run to completion (or until the runtime stops).
///
/// ```
/// use outer_core::rt::{Spawn, Task};
/// /// Each task on a thread of its own.
/// struct Threads;
/// impl Spawn for Threads {
///     fn spawn(&self, task: Task) {
///         std::thread::spawn(move || futures::executor::block_on(task));
///     }
/// }
/// ```
pub trait Spawn: Send + Sync + 'static {
    /// Runs `task` in the background.
    fn spawn(&self, task: Task);
}

/// A shared spawner is a spawner, so an `Arc<dyn Runtime>` is a [`Runtime`].
impl<S: Spawn + ?Sized> Spawn for crate::sync::Arc<S> {
    fn spawn(&self, task: Task) {
        (**self).spawn(task)
    }
}

/// A runtime as Outer uses it: a [`Timer`] that can also [`Spawn`]. Each adapter has one
/// (`outer_tokio::TokioRuntime`, `outer_smol::SmolRuntime`); any type that is both is one.
pub trait Runtime: Timer + Spawn {}

impl<R: Timer + Spawn> Runtime for R {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Arc;
    use std::sync::Mutex;
    use std::vec::Vec;

    /// Records the sleeps asked of it and the tasks handed to it; its clock reads 10 s.
    #[derive(Debug, Default)]
    struct Recording {
        sleeps: Mutex<Vec<Duration>>,
        tasks: Mutex<usize>,
    }

    impl Timer for Recording {
        fn sleep(&self, duration: Duration) -> Sleep {
            self.sleeps.lock().unwrap().push(duration);
            Box::pin(core::future::ready(()))
        }
        fn now(&self) -> Duration {
            Duration::from_secs(10)
        }
    }

    impl Spawn for Recording {
        fn spawn(&self, _: Task) {
            *self.tasks.lock().unwrap() += 1;
        }
    }

    #[test]
    fn sleep_until_sleeps_what_is_left_and_nothing_for_a_past_deadline() {
        let timer = Recording::default();
        drop(timer.sleep_until(Duration::from_millis(12_500)));
        drop(timer.sleep_until(Duration::from_secs(3)));
        assert_eq!(
            *timer.sleeps.lock().unwrap(),
            [Duration::from_millis(2_500), Duration::ZERO]
        );
    }

    #[test]
    fn a_shared_runtime_is_a_runtime_and_passes_every_call_on() {
        fn takes(runtime: impl Runtime) -> impl Runtime {
            runtime
        }
        let recording = Arc::new(Recording::default());
        let shared: Arc<dyn Runtime> = recording.clone();
        let runtime = takes(shared);
        runtime.spawn(Box::pin(async {}));
        drop(runtime.sleep(Duration::from_secs(1)));
        assert_eq!(runtime.now(), Duration::from_secs(10));
        assert_eq!(*recording.tasks.lock().unwrap(), 1);
        assert_eq!(*recording.sleeps.lock().unwrap(), [Duration::from_secs(1)]);
    }
}
