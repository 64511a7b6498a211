//! Proptest strategies, a deterministic test runtime and the conformance suite every Outer adapter runs.
