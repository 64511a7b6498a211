#!/usr/bin/env bash
# CI's fuzz smoke test: every cargo-fuzz target for FUZZ_SECONDS (60 s) of fuzzing, one after
# the other, each on a copy of its corpus and regressions in a temporary directory (new inputs
# and crash files go there, never into the repository). Fails when any target crashes, leaks,
# runs out of memory or hangs, after printing the input that did it.
#
# Needs a nightly toolchain (`cargo +nightly`, for the sanitizer flags); without one it says so
# and exits 0: the stable replay of the corpora (`cargo test -p outer-core --test fuzz_corpora`)
# still runs in `cargo test`. Installs cargo-fuzz when it is missing.
#
# Time on a 2-core machine: see "CI" in fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR=never
seconds=${FUZZ_SECONDS:-60}
start=$SECONDS
step() { echo "== fuzz: $1 ($((SECONDS - start)) s)"; }

if ! nightly=$(cargo +nightly --version 2>/dev/null); then
  echo "== fuzz: skipped, no nightly toolchain (cargo +nightly --version failed)"
  exit 0
fi
echo "== fuzz: $nightly"

if ! cargo fuzz --version >/dev/null 2>&1; then
  step "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

step "building the targets"
cargo +nightly fuzz build

tmp=$(mktemp -d "${TMPDIR:-/tmp}/outer-fuzz.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

failed=()
for file in fuzz_targets/*.rs; do
  target=$(basename "$file" .rs)
  work="$tmp/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp corpus/"$target"/* "$work/corpus/"
  if [ -d "regressions/$target" ]; then
    cp regressions/"$target"/* "$work/corpus/"
  fi
  step "$target for ${seconds} s"
  # -timeout: one input running 20 s is a hang (they take milliseconds), reported as a failure.
  if cargo +nightly fuzz run "$target" "$work/corpus" -- \
    -max_total_time="$seconds" -timeout=20 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$work/log" 2>&1; then
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$work/log" |
      sed 's/^stat:://' | tr '\n' ' ')
    cov=$(grep -oE 'cov: [0-9]+' "$work/log" | tail -1 || true)
    echo "   ok: $cov $stats"
  else
    failed+=("$target")
    echo "   FAILED: $target; the end of libFuzzer's output:"
    tail -n 60 "$work/log" | sed 's/^/   | /'
    for artifact in "$work"/artifacts/*; do
      [ -f "$artifact" ] || continue
      echo "   input $(basename "$artifact") ($(wc -c <"$artifact") bytes), base64:"
      base64 "$artifact" | sed 's/^/   | /'
    done
    echo "   keep it as fuzz/regressions/$target/<name> (replayed by cargo test), then fix the bug"
  fi
done

step "done"
if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzz: FAILED: ${failed[*]}"
  exit 1
fi
