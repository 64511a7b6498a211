//! Outer on smol: HTTP server and client transport, timers, spawn.
