//! # outer-core
//!
//! The runtime-free heart of Outer, a library for realtime RPC over Server-Sent Events: events
//! and their meta, event iterators, procedures and the router, errors, the publisher, the SSE
//! codec and the wire protocols as pure functions. It does no I/O and names no async runtime;
//! the adapters (`outer-tokio`, `outer-smol`) move the bytes.
//!
//! It builds with `#![no_std]` and `alloc`: turn off the default `std` feature.
#![no_std]
#![warn(missing_docs)]
// No unwrap in library code: every failure is a value (tests may unwrap).
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod client;
pub mod coop;
pub mod error;
pub mod event;
mod head;
pub mod iterator;
pub mod procedure;
pub mod protocol;
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
