//! Outer on tokio: HTTP server and client transport, timers, spawn.
