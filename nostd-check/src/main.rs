//! Links outer-core into a binary with no std at all. If any dependency of the core pulls in
//! std, its panic handler collides with ours and the build fails with E0152.
#![no_std]
#![no_main]

extern crate alloc;
extern crate outer_core;

use core::alloc::{GlobalAlloc, Layout};

/// Never used at run time: this binary is only type-checked.
struct NoAlloc;

// SAFETY: returning null is the documented way for an allocator to report failure.
unsafe impl GlobalAlloc for NoAlloc {
    unsafe fn alloc(&self, _: Layout) -> *mut u8 {
        core::ptr::null_mut()
    }
    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOC: NoAlloc = NoAlloc;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}
