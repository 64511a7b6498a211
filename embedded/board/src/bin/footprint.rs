//! Prints the heap figures of `outer_embedded_scenario::footprint` on the board, one
//! `name bytes` line each, as `footprint_host` does on the host; then the heap's size, the
//! high-water mark of the whole run, and the deepest the stack went while the scenario ran
//! (its output dropped) and while the footprint was taken.
#![no_std]
#![no_main]

extern crate alloc;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use outer_embedded_board::{exit, paint_stack, stack_high_water, CountingHeap, HEAP_SIZE};
use outer_embedded_scenario::footprint;

#[global_allocator]
static HEAP: CountingHeap = CountingHeap::empty();

#[entry]
fn main() -> ! {
    HEAP.init();
    paint_stack();
    outer_embedded_scenario::run(&mut alloc::vec::Vec::new());
    let scenario_stack = stack_high_water();
    HEAP.meter.reset_peak();
    let figures = footprint(&HEAP.meter);
    let run_peak = HEAP.meter.peak();
    let stack = stack_high_water();
    for figure in figures {
        hprintln!("{}", figure);
    }
    hprintln!("heap_size {}", HEAP_SIZE);
    hprintln!("run_peak {}", run_peak);
    hprintln!("scenario_stack_peak {}", scenario_stack);
    hprintln!("stack_peak {}", stack);
    exit(true)
}
