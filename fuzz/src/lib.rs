//! The fuzz targets of outer-core. Their bodies live in [`targets`], a plain module with no
//! fuzzing dependency, so `core/tests/fuzz_corpora.rs` includes the same file and replays every
//! saved input on stable.

pub mod targets;
