//! Links outer-core into a binary with no std at all. If any dependency of the core pulls in
//! std, its panic handler collides with ours and the build fails with E0152.
#![no_std]
#![no_main]

extern crate alloc;
extern crate outer_core;

use core::alloc::{GlobalAlloc, Layout};

/// Never used at run time: this binary is only built, never run.
struct NoAlloc;

// SAFETY: returning null is the documented way for an allocator to report failure.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        // Opaque, or the optimizer would see every allocation fail and drop all code after it.
        core::hint::black_box(core::ptr::null_mut())
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

/// What a board provides: outer-core's locks are critical sections, and the final binary picks
/// how they are made (`cortex-m`'s `critical-section-single-core` feature, `riscv`'s, an RTOS's).
/// This binary never runs, so its critical section does nothing; a real one must not.
struct NeverRuns;

critical_section::set_impl!(NeverRuns);

// SAFETY: never called: this binary is only built, to prove it links.
unsafe impl critical_section::Impl for NeverRuns {
    unsafe fn acquire() -> critical_section::RawRestoreState {
        false
    }
    unsafe fn release(_: critical_section::RawRestoreState) {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// Exported so the linker keeps it, and with it the core's publisher, streams and locks: a
/// missing symbol (a compare-and-swap the target lacks, a critical section) fails the link.
#[cfg(feature = "all")]
#[no_mangle]
pub extern "C" fn outer_nostd_exercise() -> usize {
    use core::pin::pin;
    use core::task::{Context, Waker};
    use futures_core::Stream;
    use outer_core::publisher::{MemoryPublisher, SubscribeOptions};

    let publisher = MemoryPublisher::<u32>::new();
    let Ok(subscription) = publisher.subscribe_now("t", SubscribeOptions::default()) else {
        return 0;
    };
    publisher.publish_now("t", 7);
    let mut subscription = pin!(subscription);
    let mut cx = Context::from_waker(Waker::noop());
    usize::from(subscription.as_mut().poll_next(&mut cx).is_ready())
}

/// The bare core (no features): an event iterator, its slot and its lock.
#[cfg(not(feature = "all"))]
#[no_mangle]
pub extern "C" fn outer_nostd_exercise() -> usize {
    use core::pin::pin;
    use core::task::{Context, Waker};
    use futures_core::Stream;

    let events = outer_core::event_iterator(|mut emit| async move {
        emit.send_value(7u32).await?;
        Ok(())
    });
    let mut events = pin!(events);
    let mut cx = Context::from_waker(Waker::noop());
    usize::from(events.as_mut().poll_next(&mut cx).is_ready())
}
