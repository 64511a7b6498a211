#![no_main]
// The body and its properties live in src/targets.rs, shared with the stable corpus replay.
libfuzzer_sys::fuzz_target!(|data: &[u8]| outer_fuzz::targets::ws_messages(data));
