#!/usr/bin/env bash
# The no_std proof, as CI runs it:
# 1. on the host, `cargo check` fails with E0152 if anything in the core's tree pulls in std;
# 2. cross-built and linked for three microcontroller targets that have no std at all:
#    - thumbv7em-none-eabihf (Cortex-M4F) and riscv32imac-unknown-none-elf: compare-and-swap,
#      but no 64-bit atomics;
#    - thumbv6m-none-eabi (Cortex-M0): no compare-and-swap, so no `alloc::sync` either;
#    each with every no_std feature (the binary's entry point uses the publisher, so its code
#    is linked, not discarded) and with none (the bare core).
set -euo pipefail
cd "$(dirname "$0")"
source ../scripts/cross-toolchain.sh
cross_toolchain_install

echo "== host: cargo check"
cargo check --quiet
cargo check --quiet --no-default-features

for target in thumbv7em-none-eabihf riscv32imac-unknown-none-elf thumbv6m-none-eabi; do
  for features in --features=all --no-default-features; do
    echo "== $target $features"
    RUSTFLAGS="-C link-arg=--entry=outer_nostd_exercise" \
      xcargo build --quiet --release -Zbuild-std=core,alloc --target "$target" "$features" \
      --target-dir ../target/nostd
  done
  llvm-size-22 "../target/nostd/$target/release/outer-nostd-check" | tail -1
done
