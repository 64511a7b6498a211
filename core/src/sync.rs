//! Locks, once-cells, reference counts and atomics for every target the core builds for.
//!
//! - With `std`: std's `Mutex` and `OnceLock`, which park a contended thread instead of spinning.
//! - Without: a critical section guards the lock, so a single-core, interrupt-driven target
//!   never spins on a lock an interrupted holder cannot release. The final binary provides the
//!   critical section (`cortex-m`'s `critical-section-single-core`, `riscv`'s, an RTOS's).
//! - Atomics come from `portable-atomic`: native where the target has them, critical sections
//!   where it has no compare-and-swap (Cortex-M0, RISC-V without the A extension). Nothing
//!   needs 64-bit atomics where the target lacks them (see `publisher::topic`).
//! - `Arc` is `alloc`'s wherever pointer-sized compare-and-swap exists, `portable-atomic-util`'s
//!   elsewhere. Unsized `Arc`s are made through [`arc_dyn`] so the same code builds with both.
//!
//! Critical sections in this crate are short, never await and never call user code, so every
//! lock here is held briefly; the closure API ([`Mutex::with`]) makes that shape the only one.

#[cfg(target_has_atomic = "ptr")]
pub(crate) use alloc::sync::Arc;
#[cfg(target_has_atomic = "ptr")]
pub(crate) use alloc::task::Wake;
#[cfg(not(target_has_atomic = "ptr"))]
pub(crate) use portable_atomic_util::task::Wake;
#[cfg(not(target_has_atomic = "ptr"))]
pub(crate) use portable_atomic_util::Arc;

#[cfg(feature = "publisher")]
pub(crate) use portable_atomic::AtomicUsize;
pub(crate) use portable_atomic::{AtomicBool, Ordering};

/// `arc_dyn!(value => dyn Trait)` makes an `Arc<dyn Trait>` on stable Rust with either `Arc`.
/// `alloc`'s coerces `Arc::new(value)`: one allocation. `portable-atomic-util`'s cannot (that
/// needs the unstable `CoerceUnsized`), so there it is made from a `Box<dyn Trait>`, which costs
/// a second allocation and a move, where things are built, never per call.
#[cfg(target_has_atomic = "ptr")]
macro_rules! arc_dyn {
    ($value:expr => $dyn:ty) => {
        $crate::sync::Arc::new($value) as $crate::sync::Arc<$dyn>
    };
}
#[cfg(not(target_has_atomic = "ptr"))]
macro_rules! arc_dyn {
    ($value:expr => $dyn:ty) => {
        $crate::sync::Arc::<$dyn>::from(alloc::boxed::Box::new($value) as alloc::boxed::Box<$dyn>)
    };
}
pub(crate) use arc_dyn;

#[cfg(feature = "std")]
mod imp {
    /// A mutual-exclusion lock, taken for the length of one closure.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::sync::Mutex::new(value))
        }

        /// Runs `f` with the value locked.
        pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            // A panic while holding the lock leaves plain data behind, never a broken invariant
            // we rely on across the panic, so poisoning is ignored.
            let mut guard = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        }
    }

    /// A cell written once, read by reference ever after.
    #[derive(Debug, Default)]
    pub(crate) struct OnceLock<T>(std::sync::OnceLock<T>);

    impl<T> OnceLock<T> {
        pub(crate) const fn new() -> Self {
            Self(std::sync::OnceLock::new())
        }

        /// The value, made by `f` on first use; a racing caller waits for it.
        pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
            self.0.get_or_init(f)
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    use core::cell::RefCell;
    use core::fmt;

    /// A mutual-exclusion lock: a critical section for the length of one closure.
    pub(crate) struct Mutex<T>(critical_section::Mutex<RefCell<T>>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(critical_section::Mutex::new(RefCell::new(value)))
        }

        /// Runs `f` with the value locked. Taking the same lock again inside `f` panics (under
        /// std it would deadlock); nothing in this crate does.
        pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            critical_section::with(|cs| f(&mut self.0.borrow_ref_mut(cs)))
        }
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Self::new(T::default())
        }
    }

    impl<T> fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Mutex { .. }")
        }
    }

    /// A cell written once, read by reference ever after.
    #[derive(Debug, Default)]
    pub(crate) struct OnceLock<T>(once_cell::sync::OnceCell<T>);

    impl<T> OnceLock<T> {
        pub(crate) const fn new() -> Self {
            Self(once_cell::sync::OnceCell::new())
        }

        /// The value, made by `f` on first use. `f` runs outside the critical section, so
        /// interrupts stay on while it works; of two racing callers the first to finish wins
        /// and the other's value is dropped.
        pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
            match self.0.get() {
                Some(value) => value,
                None => {
                    let value = f();
                    self.0.get_or_init(|| value)
                }
            }
        }
    }
}

pub(crate) use imp::Mutex;
pub(crate) use imp::OnceLock;
