//! The conformance suite (outer-harness) on tokio with each event stream written from its
//! connection's task (`outer_tokio::serve_in_lanes` with no lanes): every scenario and every
//! loopback property over a real socket. `conformance.rs` runs it as `serve` serves, in lanes.

outer_harness::conformance_suite!(outer_tokio::testing::TokioTaskPerStream);
