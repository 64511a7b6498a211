//! # outer-core
//!
//! The runtime-free heart of Outer, a library for realtime RPC over Server-Sent Events: events
//! and their meta, event iterators, procedures and the router, errors, the publisher, the SSE
//! codec and the wire protocols as pure functions. It does no I/O and names no async runtime;
//! the adapters (`outer-tokio`, `outer-smol`) move the bytes.
//!
//! It builds with `#![no_std]` and `alloc`, for microcontrollers too (Cortex-M0 to M4F,
//! RISC-V): turn off the default features and take the parts you use.
//!
//! - `std`: std's locks instead of critical sections, and `std::error::Error`.
//! - `orpc`, `trpc`: each protocol's requests, answers and SSE framing ([`protocol`]).
//! - `publisher`: the publisher trait and the in-memory publisher.
//! - `client`: the oRPC client's protocol state (with `orpc`).
//! - `typescript`: TypeScript types from the procedures (with `std`).
//!
//! Without `std` the final binary provides a global allocator and a `critical-section`
//! implementation: the locks here are critical sections (never spin locks), and so are the
//! atomics a target lacks. The README's "On microcontrollers" says what else a board needs.
#![no_std]
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

extern crate alloc;
// Tests use std (threads, channels) even when the library is built without it.
#[cfg(any(feature = "std", test))]
extern crate std;

#[cfg(feature = "client")]
pub mod client;
pub mod coop;
pub mod error;
pub mod event;
mod head;
pub mod iterator;
pub mod procedure;
pub mod protocol;
#[cfg(feature = "publisher")]
pub mod publisher;
pub mod router;
pub mod rt;
pub mod sse;
mod sync;
#[cfg(feature = "typescript")]
pub mod typescript;

pub use error::{ErrorCode, IntoRpcError, RpcError};
pub use event::{tracked, Event, EventId, EventMeta, IntoEventId, MetaError};
pub use head::{Extensions, RequestHead};
pub use iterator::{event_iterator, Closed, Emitter, EventIterator, SendEvent};
pub use procedure::{
    events, procedure, IntoEventStream, Procedure, ProcedureBuilder, ProcedureKind, Reply, Request,
};
pub use router::{App, Router};
