//! What the board's binaries share: a counting heap, output over semihosting, and the panic
//! handler. The board is QEMU's `lm3s6965evb` (Cortex-M3, 64 KiB of RAM); see `memory.x`.
//!
//! Outer's core asks three things of a board, and this crate is where they are given:
//! a global allocator (`embedded-alloc`'s linked-list heap, counted), a `critical-section`
//! implementation (cortex-m's single-core one, a feature of the `cortex-m` dependency), and
//! nothing for time: the scenario gives no timer, so no keep-alives and no deadlines.
#![no_std]

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m_semihosting::{debug, hio};
use embedded_alloc::LlffHeap;
use outer_embedded_scenario::HeapMeter;

/// The heap's size: 48 KiB of the 64 KiB of RAM, leaving 16 KiB for the stack and statics.
/// The footprint's run peaks at about 24 KiB of heap (100 subscribers take 16.5 KiB), and the
/// scenario's stack at about 7 KiB (the `footprint` binary prints both).
pub const HEAP_SIZE: usize = 48 * 1024;

/// The global allocator: `embedded-alloc`'s first-fit heap, counting the bytes asked for (not
/// the heap's own overhead, so the figures compare with the host's) and their high-water mark.
pub struct CountingHeap {
    heap: LlffHeap,
    /// Bytes in use and their high-water mark.
    pub meter: HeapMeter,
}

impl CountingHeap {
    /// An empty heap: call [`init`](Self::init) before the first allocation.
    pub const fn empty() -> Self {
        Self {
            heap: LlffHeap::empty(),
            meter: HeapMeter::new(),
        }
    }

    /// Gives the heap its memory, a static array of [`HEAP_SIZE`] bytes. Call it once, first
    /// thing in `main`; a second call does nothing.
    pub fn init(&self) {
        static mut MEMORY: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
        static DONE: AtomicUsize = AtomicUsize::new(0);
        if DONE.swap(1, Ordering::AcqRel) == 1 {
            return;
        }
        // SAFETY: the swap above lets this run once, so `MEMORY` is handed to the heap once
        // and nothing else ever touches it; its size is not zero.
        unsafe {
            self.heap
                .init(core::ptr::addr_of_mut!(MEMORY) as usize, HEAP_SIZE)
        }
    }

    /// What the heap itself counts as used, its own overhead and padding included.
    pub fn used_by_heap(&self) -> usize {
        self.heap.used()
    }
}

// SAFETY: allocation is `LlffHeap`'s, unchanged; the counters only observe.
unsafe impl GlobalAlloc for CountingHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `LlffHeap` has too.
        let ptr = unsafe { self.heap.alloc(layout) };
        if !ptr.is_null() {
            self.meter.grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { self.heap.dealloc(ptr, layout) };
        self.meter.shrank(layout.size());
    }
}

/// The word [`paint_stack`] fills the free stack with.
const PAINT: u32 = 0xDEAD_BEEF;

extern "C" {
    /// The end of the statics (`.bss`, `.uninit`): the lowest address the stack may reach.
    /// Defined by cortex-m-rt's `link.x`.
    static _stack_end: u32;
    /// The top of RAM, where the stack starts. Defined by cortex-m-rt's `link.x`.
    static _stack_start: u32;
}

/// Fills the stack below the current frame with a known word, so that
/// [`stack_high_water`] can tell how deep it has been since. Call it early in `main`.
pub fn paint_stack() {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    // Leave this function's own frame and a margin alone.
    let below = cortex_m::register::msp::read() as usize - 256;
    let mut at = bottom;
    while at < below {
        // SAFETY: between the end of the statics and the live stack frames lies RAM that
        // nothing uses yet: the stack grows down into it later, and overwrites the paint.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// The deepest the stack has been since [`paint_stack`], in bytes from the top of RAM: the
/// lowest word no longer painted.
pub fn stack_high_water() -> usize {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut at = bottom;
    // SAFETY: reads words of RAM between the statics and the top of the stack, all mapped.
    while at < top && unsafe { core::ptr::read_volatile(at as *const u32) } == PAINT {
        at += 4;
    }
    top - at
}

/// Writes `bytes` to the host's stdout over semihosting, all at once.
pub fn write_stdout(bytes: &[u8]) -> Result<(), ()> {
    hio::hstdout()?.write_all(bytes)
}

/// Ends the program: QEMU exits with 0 on success, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached without a debugger or semihosting to exit through.
    loop {
        cortex_m::asm::wfi();
    }
}

/// A panic is a failed run: its message goes to the host's stderr, and QEMU exits with 1.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m_semihosting::heprintln!("panic: {}", info);
    exit(false)
}
