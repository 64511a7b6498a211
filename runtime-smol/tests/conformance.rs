//! The conformance suite (outer-harness) on smol: every scenario and every loopback property
//! over a real socket.

outer_harness::conformance_suite!(outer_smol::testing::Smol);
