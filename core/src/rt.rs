//! The runtime seam: the little the core needs from an async runtime and cannot do itself.
//!
//! Only a timer, for keep-alive comments, stream deadlines and retry delays, and optionally the
//! runtime's way to yield. Each adapter implements it in a few lines (`tokio::time::sleep`, `async_io::Timer`); tests use a
//! simulated clock. Spawning and sockets stay in the adapters.

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

/// A future that completes once its duration has passed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Makes sleeps. Implement it for your runtime:
///
/// ```
/// use core::time::Duration;
/// use outer_core::rt::{Sleep, Timer};
///
/// /// A timer that never fires: keep-alive off.
/// #[derive(Debug)]
/// struct Never;
/// impl Timer for Never {
///     fn sleep(&self, _: Duration) -> Sleep {
///         Box::pin(core::future::pending())
///     }
/// }
/// ```
pub trait Timer: Send + Sync + core::fmt::Debug + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// The time now, measured from any fixed origin, on the same clock as
    /// [`sleep`](Timer::sleep), if the timer can read one; `None` (the default) if not.
    ///
    /// With a clock, an event stream arms its keep-alive sleep once per interval: an event
    /// only records the time it went out, and a sleep that fires early for that reason is
    /// followed by one for the rest of the silence. Without one, each chunk arms a new sleep,
    /// which costs an allocation and a timer registration per event per subscriber. Both give
    /// the same keep-alives.
    fn now(&self) -> Option<Duration> {
        None
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
