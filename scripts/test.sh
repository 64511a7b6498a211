#!/usr/bin/env bash
# Every test, on a fresh machine: installs what the tests need, then runs `cargo test --workspace`
# (arguments are passed on to it). What it installs, only where it is missing:
# - Debian's redis-server (the Redis publisher's tests and the failover tests start their own
#   servers on free loopback ports), chromium (the browser tests; set CHROMIUM to use another
#   binary) and curl (tests/tests/tls.rs runs it over HTTP/2 and TLS), with apt-get, as root or
#   through sudo;
# - Debian's Rust 1.96 with its sources, lld and qemu-system-arm (scripts/cross-toolchain.sh):
#   the embedded example's test cross-builds it for a Cortex-M3 and runs it under QEMU;
# - the npm packages of the interop and browser tests (tests/interop) and of the two oRPC
#   reference servers the client suite runs against (v1 from ../shared/reference/orpc, copied to
#   target/reference-orpc; v2 from tests/reference/orpc-v2, copied to target/reference-orpc-v2),
#   with `npm ci` from their lockfiles.
# Node.js 20 or newer must be on the machine already: Debian's own is older.
# Then outer-core's own tests again without std, and typescript/check.sh, which checks the
# TypeScript clients' generated types (it builds the chat with the `typescript` feature, which
# `cargo test --workspace` leaves off).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "== $*"; }

source scripts/apt.sh
source scripts/cross-toolchain.sh

apt_install() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
    missing+=(chromium)
  fi
  apt_get_install "${missing[@]}"
}

check_node() {
  local major
  major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/') || major=0
  if [ "${major:-0}" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
    echo "scripts/test.sh: Node.js 20+ and npm are needed for the interop tests" >&2
    exit 1
  fi
}

apt_install
cross_toolchain_install
check_node
say "redis-server $(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/'), node $(node --version), $("${CHROMIUM:-chromium}" --version 2>/dev/null | tail -1), $(curl --version | head -1 | cut -d' ' -f1-2)"

say "npm packages (tests/interop/package-lock.json)"
(cd tests/interop && npm ci --no-audit --no-fund --loglevel=error)
# The client suite runs each reference server from a writable copy (the v1 folder may be read
# only), as harness/src/client_suite/reference.rs does when the packages are missing.
reference_install() {
  local from=$1 to=$2
  say "npm packages of the oRPC reference server ($from)"
  mkdir -p "$to"
  rm -f "$to"/{server.mjs,package.json,package-lock.json}
  cp "$from"/{server.mjs,package.json,package-lock.json} "$to"/
  chmod u+w "$to"/*
  (cd "$to" && npm ci --no-audit --no-fund --loglevel=error)
}
reference_install ../shared/reference/orpc target/reference-orpc
reference_install tests/reference/orpc-v2 target/reference-orpc-v2

say "cargo test --workspace $*"
cargo test --workspace "$@"

# The workspace builds the core with std (its servers need it). Its own tests again without:
# locks are then critical sections (critical-section's std implementation on the host) and
# `Published`'s cell once_cell's, as on a microcontroller. One thread: without std the
# cooperative budget is one global, which parallel tests would share.
say "outer-core's tests without std"
cargo test -p outer-core --no-default-features --features orpc,trpc,publisher,client --tests \
  -- --test-threads=1

bash typescript/check.sh
