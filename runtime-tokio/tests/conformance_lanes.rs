//! The conformance suite (outer-harness) on tokio with event streams written from lanes
//! (`outer_tokio::serve_in_lanes`): every scenario and every loopback property over a real
//! socket, as smol's adapter always serves.

outer_harness::conformance_suite!(outer_tokio::testing::TokioLanes);
