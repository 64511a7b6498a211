//! Replays the saved fuzz corpora on stable: every input under `fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/` goes through the same target body libFuzzer runs
//! (`fuzz/src/targets.rs`, included here), so each property the fuzzers checked, and every
//! crash they found, is checked again by `cargo test`.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every file of the corpus and of the regressions (both, so a broken corpus
/// does not hide a regression), then fails naming each input that panicked.
fn replay_target(name: &str) {
    let (_, target) = targets::ALL
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a target of that name");
    let corpus = inputs(&fuzz_dir().join("corpus").join(name));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{name} is empty or missing: the replay would prove nothing"
    );
    let mut files = corpus;
    files.extend(inputs(&fuzz_dir().join("regressions").join(name)));
    let mut failed = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("a readable corpus file");
        if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
            failed.push(file.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{name}: {} of {} inputs broke a property:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
}

#[test]
fn every_target_has_a_replayed_corpus() {
    let listed = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for (name, _) in targets::ALL {
        assert!(
            listed.contains(&format!("name = \"{name}\"")),
            "{name} is not a bin of fuzz/Cargo.toml"
        );
        assert!(fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{name}.rs"))
            .is_file());
    }
    // A folder no target claims would never be replayed.
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("a readable directory entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                targets::ALL.iter().any(|(n, _)| *n == name),
                "fuzz/{dir}/{name} belongs to no target"
            );
        }
    }
}

#[test]
fn sse_decoder_corpus_holds() {
    replay_target("sse_decoder");
}

#[test]
fn orpc_request_corpus_holds() {
    replay_target("orpc_request");
}

#[test]
fn orpc_client_corpus_holds() {
    replay_target("orpc_client");
}

#[test]
fn trpc_request_corpus_holds() {
    replay_target("trpc_request");
}

#[test]
fn last_event_id_corpus_holds() {
    replay_target("last_event_id");
}

#[test]
fn rpc_handle_corpus_holds() {
    replay_target("rpc_handle");
}

#[test]
fn ws_messages_corpus_holds() {
    replay_target("ws_messages");
}
