//! # outer-bench
//!
//! End-to-end benchmarks of fan-out over SSE and WebSocket: a load generator that drives any
//! server speaking the chat router's `post.create` and `post.live` over oRPC or tRPC (subscribers
//! on SSE, on WebSocket with the `-ws` protocols, [`ws`], or on SSE over HTTP/2 with the `-h2`
//! protocols, [`http2`]), and the *floor*,
//! a minimal axum + `tokio::sync::broadcast` server to measure Outer against, and the *write
//! floor* ([`write_floor`]): what the socket writes alone cost, with no HTTP. The core's micro
//! benchmarks live in `core/benches`; results and commands are in `BENCHMARKS.md`.
//!
//! ```text
//! cargo run --release -p outer-bench --bin floor -- --listen 127.0.0.1:3300
//! cargo run --release -p outer-bench --bin load -- --url http://127.0.0.1:3300/rpc \
//!     --protocol orpc --subscribers 1000 --duration 10 --server-pid PID
//! # the chat's subscribers on WebSocket (ws://127.0.0.1:3000/trpc), its posts over HTTP:
//! cargo run --release -p outer-bench --bin load -- --url http://127.0.0.1:3000/trpc \
//!     --protocol trpc-ws --subscribers 1000 --duration 10
//! # on HTTP/2 with prior knowledge, 100 subscribers' streams to a connection:
//! cargo run --release -p outer-bench --bin load -- --url http://127.0.0.1:3000/rpc \
//!     --protocol orpc-h2 --streams-per-connection 100 --subscribers 1000 --duration 10
//! bench/run.sh            # every server, N = 100, 1,000, 10,000, and the table
//! # what one socket write costs here, the bound under every server (no HTTP at all):
//! cargo run --release -p outer-bench --bin write_floor -- --sockets 1000 --rate 20 --pin 1,0
//! bench/callgrind.sh      # user-space instructions per delivery, per server (valgrind)
//! ```
//!
//! Not part of `cargo test`: the runs take minutes and want a quiet machine. The crate's tests
//! check the generator itself: that it reads both protocols' streams from live in-process
//! servers (Outer and the floor) and counts every delivery, and, against a scripted server that
//! delays, drops or repeats events, that latency, lost, repeated and stalled posts come out as
//! the script dictates.
#![warn(missing_docs)]

pub mod floor;
pub mod histogram;
pub mod http;
pub mod http2;
pub mod load;
pub mod procfs;
pub mod protocol;
pub mod write_floor;
pub mod ws;
