//! The system allocator, counting per thread what the thread allocates: the bytes it holds, the
//! most it held, and the calls it made. Per thread, so the tests running beside one another do
//! not blur each other's figures. A test file that uses it installs it as its global allocator:
//!
//! ```ignore
//! #[path = "support/counting_alloc.rs"]
//! mod counting_alloc;
//! #[global_allocator]
//! static ALLOCATOR: counting_alloc::Counting = counting_alloc::Counting;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards every call to [`System`] and counts it on the calling thread.
pub struct Counting;

thread_local! {
    /// Bytes allocated and not yet freed by this thread (negative when it frees memory that
    /// another thread allocated).
    static HELD: Cell<isize> = const { Cell::new(0) };
    /// The most `HELD` reached since `peak_growth` last reset it.
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Calls to allocate or reallocate.
    static CALLS: Cell<usize> = const { Cell::new(0) };
}

fn grew(bytes: usize) {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = HELD.try_with(|held| {
        let now = held.get() + bytes as isize;
        held.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
    let _ = CALLS.try_with(|calls| calls.set(calls.get() + 1));
}

fn shrank(bytes: usize) {
    let _ = HELD.try_with(|held| held.set(held.get() - bytes as isize));
}

// SAFETY: every call is forwarded to `System` unchanged; the counting on the side allocates
// nothing (the thread-locals are const-initialised `Cell`s).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as it is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        new
    }
}

/// Bytes this thread has allocated and not freed.
#[allow(dead_code)] // each test file uses its own part
pub fn held_bytes() -> isize {
    HELD.with(Cell::get)
}

/// The most this thread held at once while `f` ran, above what it held before.
#[allow(dead_code)]
pub fn peak_growth(f: impl FnOnce()) -> usize {
    let base = HELD.with(Cell::get);
    PEAK.with(|peak| peak.set(base));
    f();
    (PEAK.with(Cell::get) - base).max(0) as usize
}

/// Calls to allocate or reallocate this thread made while `f` ran.
#[allow(dead_code)]
pub fn allocations(f: impl FnOnce()) -> usize {
    let before = CALLS.with(Cell::get);
    f();
    CALLS.with(Cell::get) - before
}
