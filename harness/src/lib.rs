//! # outer-harness
//!
//! Tools to test realtime code built on Outer, and the property suites Outer's own crates run:
//!
//! - [`SimClock`]: a [`Timer`](outer_core::rt::Timer) whose time moves only when the test says,
//!   for keep-alives, deadlines and retry delays without real waiting.
//! - [`Session`]: a client subscription over an in-memory wire, in oRPC or tRPC. The server
//!   side is your [`App`](outer_core::App); the client side is the core's decoder and resume
//!   logic. The test moves bytes and cuts the connection after any byte, so resume,
//!   cancellation and error handling are checked with no socket and no runtime.
//! - [`loopback`]: the same over a real socket, with a blocking HTTP/1.1 client.
//! - [`http2`]: a blocking HTTP/2 client, many requests on one connection, with a say over
//!   flow control and a record of the server's control frames.
//! - [`properties`]: Outer's promises (resume, cancellation cleanup, error propagation) as
//!   routers to run and checks of what a client saw.
//! - [`conformance`]: the suite every runtime adapter runs, over loopback HTTP: implement
//!   [`conformance::Adapter`] and expand [`conformance_suite!`].
//! - [`strategies`]: proptest strategies for schedules of publishes, byte moves and cuts.
//!
//! See `harness/README.md` for a walkthrough.
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod client_suite;
mod clock;
pub mod conformance;
pub mod http2;
pub mod loopback;
pub mod properties;
pub mod protocol;
pub mod strategies;
mod subscriber;
pub mod websocket;
pub mod wire;

pub use clock::SimClock;
pub use properties::{cases, loopback_cases};
pub use protocol::Protocol;
pub use subscriber::Seen;
pub use wire::Session;

// The README's code is compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
