//! The conformance suite (outer-harness) on tokio: every scenario and every loopback property
//! over a real socket.

outer_harness::conformance_suite!(outer_tokio::testing::Tokio);
