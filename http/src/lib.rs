//! Outer over HTTP with hyper 1.x, independent of any runtime.
