//! The conformance suite (outer-harness) on monoio: every scenario and every loopback property
//! over a real socket, on each of its drivers.

mod io_uring {
    outer_harness::conformance_suite!(outer_monoio::testing::IoUring);
}

mod epoll {
    outer_harness::conformance_suite!(outer_monoio::testing::Epoll);
}
