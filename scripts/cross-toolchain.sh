#!/usr/bin/env bash
# Installs what cross-building the core for microcontrollers needs, where it is missing:
# Debian's rustc-web and cargo-web (1.96, at /usr/bin: the rustup toolchain has no rust-src and
# cannot download targets here), rust-web-src (for `-Zbuild-std=core,alloc`), rust-web-llvm and
# lld-22 (its /usr/bin/rust-lld links to lld-22, which nothing pulls in) and qemu-system-arm
# (to run the embedded example). rustup's toolchain stays first on PATH; the
# cross builds call /usr/bin/cargo with RUSTC=/usr/bin/rustc explicitly (see xcargo below).
# Sourced by nostd-check/run.sh and scripts/test.sh.

source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

cross_toolchain_install() {
  local missing=()
  [ -x /usr/bin/rustc ] || missing+=(rustc-web)
  [ -x /usr/bin/cargo ] || missing+=(cargo-web)
  [ -d /usr/lib/rustlib/src/rust/library/core ] || missing+=(rust-web-src)
  [ -e /usr/bin/rust-lld ] || missing+=(rust-web-llvm)
  [ -x /usr/lib/llvm-22/bin/lld ] || missing+=(lld-22)
  command -v qemu-system-arm >/dev/null 2>&1 || missing+=(qemu-system-arm)
  apt_get_install "${missing[@]}"
}

# Debian's cargo and rustc, with core and alloc built from source for the target.
xcargo() {
  PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "$@"
}
