//! A mutex that works with and without std: std's where there is one (it parks instead of
//! spinning), a spin lock where there is not. Critical sections in this crate are short and
//! never await, so either is sound; neither changes behaviour.

#[cfg(feature = "std")]
mod imp {
    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(std::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, T> {
            // A panic while holding the lock leaves plain data behind, never a broken invariant
            // we rely on across the panic, so poisoning is ignored.
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }
}

#[cfg(not(feature = "std"))]
mod imp {
    /// A mutual-exclusion lock.
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(spin::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(spin::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> spin::MutexGuard<'_, T> {
            self.0.lock()
        }
    }
}

#[allow(unused_imports)]
pub(crate) use imp::Mutex;
