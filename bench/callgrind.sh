#!/usr/bin/env bash
# User-space instructions per delivery, counted by callgrind: exact and the same on a busy
# machine as on a quiet one, unlike times. Each server runs under valgrind twice, driven by the
# same generator at a pace it keeps up with even there (100 subscribers, 5 posts a second, so no
# two events share a write), once for SHORT and once for LONG seconds of paced posts; the
# difference in instructions over the difference in deliveries leaves out start-up, connecting
# and warm-up.
#
#   bench/callgrind.sh                      # outer-tokio outer-smol outer-monoio floor
#   SERVERS="outer-tokio" bench/callgrind.sh
#   SERVERS="outer-tokio outer-tokio-trpc-ws outer-tokio-orpc-ws" bench/callgrind.sh   # SSE vs WebSocket
#   SERVERS="outer-tokio outer-tokio-h2 outer-tokio-h2-mux" bench/callgrind.sh   # HTTP/1.1 vs HTTP/2
#
# The -h2 entries are those of bench/run.sh: the same server, subscribers on HTTP/2 with prior
# knowledge, a connection each (outer-tokio-h2, outer-smol-h2) or all 100 streams on one
# connection (outer-tokio-h2-mux, outer-smol-h2-mux).
#
# Work done once whose instruction count depends on how long it runs rather than on the
# deliveries is left out of each run's total: the inclusive count of each function in EXCLUDE.
# By default quanta::Clock::new, the clock calibration of the chat's Prometheus recorder, which
# reads the clock until the TSC's rate settles: 11-13 million instructions under valgrind, a
# different number each run (up to ±150 per delivery in the difference if left in).
#
# Needs valgrind (Debian's package). About a minute and a half per server.
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=${SERVERS:-"outer-tokio outer-smol outer-monoio floor"}
SHORT=${SHORT:-10}
LONG=${LONG:-30}
RATE=5
SUBSCRIBERS=100
PORT=${PORT:-3720}
EXCLUDE=${EXCLUDE:-"quanta::Clock::new"}
OUT=target/bench/callgrind
mkdir -p "$OUT"
cargo build --release -q -p outer-bench -p outer-examples --bins

# Instructions (Ir) of one server run with SECONDS of paced posts; prints "IR POSTS".
run() {
  local server=$1 seconds=$2 file="$OUT/$1-$2.out" log="$OUT/$1-$2.log"
  local cmd url="http://127.0.0.1:$PORT/rpc" protocol=orpc extra=()
  case $server in
    outer-tokio) cmd=(target/release/chat --listen "127.0.0.1:$PORT" --runtime tokio) ;;
    # The same server; the subscribers speak WebSocket (see bench/run.sh).
    outer-tokio-trpc-ws) cmd=(target/release/chat --listen "127.0.0.1:$PORT" --runtime tokio)
      url="http://127.0.0.1:$PORT/trpc" protocol=trpc-ws ;;
    outer-tokio-orpc-ws) cmd=(target/release/chat --listen "127.0.0.1:$PORT" --runtime tokio)
      protocol=orpc-ws ;;
    outer-smol) cmd=(target/release/chat --listen "127.0.0.1:$PORT" --runtime smol) ;;
    # The same servers; the subscribers speak HTTP/2 (see bench/run.sh).
    outer-tokio-h2 | outer-smol-h2 | outer-tokio-h2-mux | outer-smol-h2-mux)
      local runtime=${server#outer-}
      cmd=(target/release/chat --listen "127.0.0.1:$PORT" --runtime "${runtime%%-*}")
      protocol=orpc-h2
      case $server in *-mux) extra=(--streams-per-connection "$SUBSCRIBERS") ;; esac ;;
    # valgrind does not follow io_uring: monoio on its epoll driver.
    outer-monoio) cmd=(target/release/chat --listen "127.0.0.1:$PORT" --runtime monoio-epoll) ;;
    floor) cmd=(target/release/floor --listen "127.0.0.1:$PORT") ;;
    *) echo "callgrind.sh: unknown server $server" >&2; exit 2 ;;
  esac
  rm -f "$file"
  valgrind --tool=callgrind --callgrind-out-file="$file" "${cmd[@]}" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do grep -q listening "$log" && break; sleep 0.2; done
  # A fixed load phase (20 posts), then the paced phase; warm-up posts are the same in both runs.
  target/release/load --url "$url" --protocol "$protocol" \
    --subscribers "$SUBSCRIBERS" --events 20 --window 4 --publishers 1 \
    --paced-rate "$RATE" --paced-duration "$seconds" --settle 1 --connect-timeout 60 \
    "${extra[@]}" >"$OUT/$server-$seconds.load" 2>&1
  kill -INT "$pid"
  wait "$pid" || true
  local ir name once
  ir=$(callgrind_annotate "$file" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
  for name in $EXCLUDE; do
    once=$(callgrind_annotate --inclusive=yes --threshold=100 "$file" 2>/dev/null |
      { grep -F ":$name [" || true; } | head -1 | sed -n 's/^ *\([0-9,]*\) .*/\1/p' | tr -d ,)
    ir=$(( ir - ${once:-0} ))
  done
  local paced
  paced=$(sed -n 's/.*"paced":{[^}]*"events":\([0-9]*\).*/\1/p' "$OUT/$server-$seconds.load")
  echo "$ir ${paced:-0}"
}

echo "| server | instructions per delivery | runs (Ir, paced posts) |"
echo "|---|---|---|"
for server in $SERVERS; do
  read -r ir_short posts_short < <(run "$server" "$SHORT")
  read -r ir_long posts_long < <(run "$server" "$LONG")
  deliveries=$(( (posts_long - posts_short) * SUBSCRIBERS ))
  if [ "$deliveries" -le 0 ]; then
    echo "callgrind.sh: $server: the long run delivered no more than the short one" >&2
    exit 1
  fi
  per=$(( (ir_long - ir_short) / deliveries ))
  echo "| $server | $per | $ir_short, $posts_short; $ir_long, $posts_long |"
done
