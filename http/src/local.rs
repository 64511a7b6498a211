//! Values that must stay on the thread that made them, carried through seams that ask for
//! `Send`: for thread-per-core runtimes (monoio, glommio, compio), whose sockets, sleeps and
//! handler futures are not `Send`.
//!
//! Outer's seams are `Send` where a work-stealing runtime needs it: an event stream holds a
//! [`Sleep`](outer_core::rt::Sleep) for its keep-alives and tokio may move the stream to
//! another worker; handlers' futures are boxed as `Send`; the client's calls can be spawned
//! anywhere. A thread-per-core runtime never moves them: each connection, its handler and its
//! sleeps live and die on the thread that accepted it. [`Local`] states that and checks it: it
//! is `Send`, and it panics, instead of misbehaving, if it is touched or dropped on another
//! thread. No `unsafe` in an adapter or in a handler.
//!
//! A handler that awaits something `!Send` (here an `Rc`, on a runtime such as monoio, a
//! runtime timer):
//!
//! ```
//! use std::rc::Rc;
//! use outer_core::{procedure, Router};
//! use outer_http::local::local;
//!
//! let router = Router::<()>::new().route(
//!     "greet",
//!     procedure::<()>().input::<String>().query(|req| {
//!         local(async move {
//!             let name = Rc::new(req.input); // not Send
//!             std::future::ready(()).await;
//!             Ok(format!("hello {name}"))
//!         })
//!     }),
//! );
//! # let _ = router;
//! ```
//!
//! Serve such a router only where each request is handled on one thread from start to end:
//! a thread-per-core runtime, a tokio `LocalSet`, a smol `LocalExecutor`. On a work-stealing
//! runtime the panic names the thread mismatch.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
// `send_wrapper` records the thread a value was made on and checks it at every access and at
// drop; that check is the whole of this module's safety argument, so it lives in a small crate
// made for exactly that rather than in `unsafe` here.
use send_wrapper::SendWrapper;

pin_project! {
    /// A value bound to the thread that made it, and `Send` for that: see the [module docs](self).
    ///
    /// A [`Local`] future, socket or sleep works only on its thread: polling, reading, writing
    /// or dropping it on another panics.
    ///
    /// ```
    /// use outer_http::local::Local;
    /// let here = Local::new(std::rc::Rc::new(5));
    /// fn sendable<T: Send>(_: &T) {}
    /// sendable(&here);
    /// assert_eq!(**here.get(), 5);
    /// ```
    pub struct Local<T> {
        #[pin]
        value: SendWrapper<T>,
    }
}

/// Binds `future` to this thread: the shape a `!Send` handler body takes. See the [module
/// docs](self).
pub fn local<F: Future>(future: F) -> Local<F> {
    Local::new(future)
}

impl<T> Local<T> {
    /// Binds `value` to the current thread.
    pub fn new(value: T) -> Self {
        Self {
            value: SendWrapper::new(value),
        }
    }

    /// Whether this is the thread `value` was made on.
    pub fn is_here(&self) -> bool {
        self.value.valid()
    }

    /// The value. Panics on another thread.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The value. Panics on another thread.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.value
    }

    /// The value back. Panics on another thread.
    pub fn into_inner(self) -> T {
        self.value.take()
    }
}

impl<T> std::fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("is_here", &self.is_here())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Local<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.project().value.poll(cx)
    }
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for Local<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(Pin::into_inner(self).get_mut()).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for Local<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(Pin::into_inner(self).get_mut()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(Pin::into_inner(self).get_mut()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(Pin::into_inner(self).get_mut()).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.get().is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(Pin::into_inner(self).get_mut()).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn a_local_future_runs_on_its_thread() {
        let shared = Rc::new(41);
        let future = local(async move { *shared + 1 });
        assert_eq!(futures::executor::block_on(future), 42);
    }

    #[test]
    fn polling_on_another_thread_panics_instead_of_racing() {
        let future = local(async { Rc::new(1) });
        let elsewhere = std::thread::spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                futures::executor::block_on(async {
                    let mut future = std::pin::pin!(future);
                    std::future::poll_fn(|cx| {
                        let _ = future.as_mut().poll(cx);
                        Poll::Ready(())
                    })
                    .await
                })
            }));
            outcome.is_err()
        });
        // The poll panics; the drop during that unwinding leaks the future instead of a
        // second panic, so the thread itself ends normally and reports the first.
        assert!(elsewhere.join().unwrap());
    }

    #[test]
    fn a_local_value_knows_its_thread() {
        let value = Local::new(Rc::new(()));
        assert!(value.is_here());
        let checked = std::thread::spawn({
            let probe = Local::new(());
            move || probe.is_here()
        });
        assert!(!checked.join().unwrap());
        assert_eq!(Rc::strong_count(&value.into_inner()), 1);
    }
}
