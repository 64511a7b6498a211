//! Time for time-based retention, passed in because the core has no clock of its own (and tests
//! want one they control). Not a timer: nothing here sleeps or wakes.

/// A monotonic clock in milliseconds. Only differences matter; the origin is the clock's own.
///
/// Any `Fn() -> u64` is a clock, which is how tests drive time by hand:
///
/// ```
/// use core::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use outer_core::publisher::Clock;
///
/// let now = Arc::new(AtomicU64::new(0));
/// let clock = { let now = now.clone(); move || now.load(Ordering::Relaxed) };
/// now.store(1500, Ordering::Relaxed);
/// assert_eq!(clock.now_millis(), 1500);
/// ```
pub trait Clock: Send + Sync {
    /// Milliseconds since the clock's origin. Must never go backwards.
    fn now_millis(&self) -> u64;
}

impl<F: Fn() -> u64 + Send + Sync> Clock for F {
    fn now_millis(&self) -> u64 {
        self()
    }
}

/// The standard library's monotonic clock ([`std::time::Instant`]), counted from creation.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    origin: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }
}

#[cfg(feature = "std")]
impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "std")]
impl Clock for StdClock {
    fn now_millis(&self) -> u64 {
        // u64 milliseconds last 584 million years: saturating is only for form's sake.
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
