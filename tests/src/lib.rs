//! End-to-end tests across the Outer crates.
