//! The footprint on the host: `outer_embedded_scenario::footprint` measured with a counting
//! global allocator over the system's, one `name bytes` line per figure, as the board's
//! `footprint` binary prints them. Bytes are those asked for, not the allocator's overhead.

use std::alloc::{GlobalAlloc, Layout, System};

use outer_embedded_scenario::{footprint, HeapMeter};

/// The system allocator, counting the bytes in use and their high-water mark.
struct Counting {
    meter: HeapMeter,
}

// SAFETY: every call is passed on to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, which `System` has too.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.meter.grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        self.meter.shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            self.meter.grew(new_size);
            self.meter.shrank(layout.size());
        }
        new
    }
}

#[global_allocator]
static HEAP: Counting = Counting {
    meter: HeapMeter::new(),
};

fn main() {
    HEAP.meter.reset_peak();
    let before = HEAP.meter.in_use();
    for figure in footprint(&HEAP.meter) {
        println!("{figure}");
    }
    // As the board prints it: the most the whole run held at once, above where it started.
    println!("run_peak {}", HEAP.meter.peak() - before);
}
