//! Writes exactly the bytes of `outer_embedded_scenario::run` to the host's stdout, then exits
//! with 0. `tests/qemu.rs` in the scenario crate compares them with the host's.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use outer_embedded_board::{exit, write_stdout, CountingHeap};

extern crate alloc;

#[global_allocator]
static HEAP: CountingHeap = CountingHeap::empty();

#[entry]
fn main() -> ! {
    HEAP.init();
    let mut out = alloc::vec::Vec::new();
    outer_embedded_scenario::run(&mut out);
    exit(write_stdout(&out).is_ok())
}
