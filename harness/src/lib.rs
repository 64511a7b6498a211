//! # outer-harness
//!
//! Tools to test realtime code built on Outer, and the property suites Outer's own crates run:
//!
//! - [`SimClock`]: a [`Timer`](outer_core::rt::Timer) whose time moves only when the test says,
//!   for keep-alives, deadlines and retry delays without real waiting.
//! - [`Session`]: a client subscription over an in-memory wire. The server side is your
//!   [`App`](outer_core::App) answering through the oRPC protocol; the client side is the
//!   core's decoder and resume logic. The test moves bytes and cuts the connection after any
//!   byte, so resume, cancellation and error handling are checked with no socket and no runtime.
//! - [`strategies`]: proptest strategies for schedules of publishes, byte moves and cuts.
//!
//! See `harness/README.md` for a walkthrough.
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod clock;
pub mod protocol;
pub mod strategies;
pub mod wire;

pub use clock::SimClock;
pub use protocol::Protocol;
pub use wire::{Seen, Session};

/// How many cases a property test runs: `PROPTEST_CASES` from the environment when set (run
/// many more with `PROPTEST_CASES=100000 cargo test -p outer-harness`), else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}
