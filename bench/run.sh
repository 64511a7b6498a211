#!/usr/bin/env bash
# End to end: fan-out over SSE (and, on request, WebSocket or SSE over HTTP/2), every server side
# by side on this machine.
#
#   bench/run.sh                      # all servers, N = 100, 1,000, 10,000 (about 14 minutes,
#                                     # plus up to 3 for trpc-ref at 10,000: see BENCHMARKS.md)
#   NS="100" SERVERS="outer-tokio floor" bench/run.sh
#   # Outer's subscribers over WebSocket beside SSE (not in the default SERVERS):
#   NS="100 1000" SERVERS="outer-tokio outer-tokio-trpc-ws outer-tokio-orpc-ws" bench/run.sh
#   # Outer's subscribers over HTTP/2 beside HTTP/1.1 (not in the default SERVERS either):
#   NS="100 1000 10000" SERVERS="outer-tokio outer-tokio-h2 outer-tokio-h2-mux outer-smol outer-smol-h2 floor" bench/run.sh
#   # N = 100,000 (opt-in, not in the default NS): needs `ulimit -Hn` of 100,100 or more, or
#   # the right to raise it (root with CAP_SYS_RESOURCE; a container started without it, as
#   # docker's default is, needs `--ulimit nofile=250000:250000` instead):
#   NS="100000" SERVERS="outer-tokio outer-smol floor" bench/run.sh
#
# N = 100,000 needs, on the generator's side and the server's each, a descriptor per subscriber:
# this script raises its own hard limit (`ulimit -Hn`, up to /proc/sys/fs/nr_open) to what the
# largest N needs where it may, and skips, saying why, an N the limit cannot hold. One source address
# reaches the server's port from at most the ephemeral port range (32768-60999 by default, about
# 28,000 ports), so the generator connects more than 25,000 subscribers from several loopback
# addresses, 127.0.0.2 up, ceil(N / 25,000) of them (load's --source-addresses auto;
# SOURCE_ADDRESSES=K uses K of them at any N, SOURCE_ADDRESSES=none never). Above
# 10,000 subscribers the chat server is started with --max-connections and --max-streams of N
# plus 1,000 (its defaults, 16,384 and 10,000, would refuse the rest); the floor (axum) has no
# limit of its own but the descriptors. The connect timeout grows with N (120 s, or N / 500 s).
#
# The WebSocket entries, outer-tokio-trpc-ws, outer-smol-trpc-ws and outer-tokio-orpc-ws, start
# the same chat server as outer-tokio / outer-smol; only the subscribers differ: each opens one
# WebSocket to ws://ADDR/trpc (tRPC wsLink) or ws://ADDR/rpc (oRPC's websocket link) and
# subscribes to post.live there (load's --protocol trpc-ws / orpc-ws). Posts go over HTTP as for
# the SSE entries, so every figure but the subscribers' transport is alike.
#
# The HTTP/2 entries likewise start the same chat server (which serves HTTP/2 beside HTTP/1.1 on
# its port, told by the connection's first bytes) and change only the subscribers: each sends
# oRPC's post.live request, as outer-tokio's subscribers do, over HTTP/2 with prior knowledge
# (load's --protocol orpc-h2, on the h2 crate's client) and reads the same SSE body from DATA
# frames. outer-tokio-h2 and outer-smol-h2 give each subscriber a connection of its own, as
# HTTP/1.1 does (the protocols' per-stream costs side by side); outer-tokio-h2-mux and
# outer-smol-h2-mux put STREAMS_PER_CONNECTION (default 100) subscribers' streams on each
# connection, as a browser's page or a gateway does; outer-tokio-trpc-h2 is tRPC's post.live
# (GET /trpc/post.live) on a connection each, beside outer-tokio-trpc. Posts go over HTTP/1.1.
#
# Each (server, N) gets a fresh server process (so its RSS before the subscribers is a clean
# baseline), then one `load` run: N subscribers connect, the server's RSS is sampled idle, then
# a load phase of DURATION seconds posting as fast as a window of WINDOW posts allows (PUBLISHERS
# posts in flight, each on its own keep-alive connection), then a
# paced phase of PACED_DURATION seconds at PACED_DELIVERIES / N posts per second: the same
# offered load for every N and every server, none of them saturated, so its server CPU per
# delivery compares the servers' costs with no scheduler in the way. Above PACED_DELIVERIES
# subscribers (N = 100,000) that is at least one post a second, N deliveries a second: each
# post's fan-out ends well before the next post, so the paced p50 and p99 are those of one
# post's delivery to its N subscribers (post to each subscriber's receipt).
#
# PUBLISHERS matters to saturated throughput: a first-in-first-out executor (smol's) gives each
# publisher connection about one turn per round of subscriber writes, so posts per round, and
# with them events per write, are capped by PUBLISHERS (see BENCHMARKS.md).
#
# With PIN=1 (the default) the server runs on CPU 1 and the generator on CPU 0, so that each has
# one core and neither steals the other's: the generator's CPU use then shows whether it kept
# up. PIN=0 lets the kernel place both.
#
# Writes target/bench/results-DATE.jsonl (one JSON line per run, plus one for the machine) and
# prints the table (bench/src/bin/table.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

NS=${NS:-"100 1000 10000"}
SERVERS=${SERVERS:-"outer-tokio outer-smol outer-monoio floor orpc-ref trpc-ref outer-tokio-trpc"}
DURATION=${DURATION:-10}
WINDOW=${WINDOW:-32}
PUBLISHERS=${PUBLISHERS:-4}
PACED_DURATION=${PACED_DURATION:-5}
PACED_DELIVERIES=${PACED_DELIVERIES:-20000}
PIN=${PIN:-1}
PORT=${PORT:-3710}
STREAMS_PER_CONNECTION=${STREAMS_PER_CONNECTION:-100}
SOURCE_ADDRESSES=${SOURCE_ADDRESSES:-auto}

# N subscribers need N sockets in each process, plus a few: raise the hard limit if that is
# allowed (root), then the soft one to it; an N the limit cannot hold is skipped below.
need_fds() { echo $(( $1 + 100 )); }
largest=0
for n in $NS; do [ "$n" -gt "$largest" ] && largest=$n; done
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$(need_fds "$largest")" ]; then
  ulimit -Hn "$(need_fds "$largest")" 2>/dev/null ||
    echo "run.sh: cannot raise the hard descriptor limit ($(ulimit -Hn)) to $(need_fds "$largest"): no CAP_SYS_RESOURCE" >&2
fi
ulimit -Sn "$(ulimit -Hn)"

if [ "${BUILD:-1}" = 1 ]; then
  cargo build --release -q -p outer-bench -p outer-examples --bins
fi
BIN=target/release
REF=target/bench/reference
for name in orpc trpc; do
  dir=$REF/$name
  mkdir -p "$dir"
  # A copy beside the build, so shared/ stays free of node_modules.
  cp ../shared/reference/$name/{server.mjs,package.json,package-lock.json} "$dir/"
  if [ ! -f "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
  fi
done

OUT=target/bench/results-$(date +%Y%m%d-%H%M%S).jsonl
model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p')
printf '{"machine":"%s","cores":%s,"load":"%s","node":"%s","rustc":"%s"}\n' \
  "$model" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(node --version)" \
  "$(rustc --version)" >"$OUT"
echo "machine: $model, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); results in $OUT"
# CPU pressure (share of time some runnable task waited for a core): other work on the machine.
pressure() { sed -n 's/^some //p' /proc/pressure/cpu 2>/dev/null || true; }
echo "cpu pressure at start: $(pressure)"

server_cpu=()
gen_cpu=()
if [ "$PIN" = 1 ]; then
  server_cpu=(taskset -c 1)
  gen_cpu=(taskset -c 0)
fi

SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT

# Starts server $1 on $PORT; sets SERVER_PID, URL, PROTOCOL and EXTRA (more arguments to load).
start_server() {
  local addr=127.0.0.1:$PORT
  PROTOCOL=orpc
  URL=http://$addr/rpc
  EXTRA=()
  case $1 in
    outer-tokio) "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime tokio >/dev/null & ;;
    outer-smol) "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime smol >/dev/null & ;;
    # One monoio thread per core the server may use: one with PIN=1, as many as cores without.
    outer-monoio) "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime monoio >/dev/null & ;;
    outer-monoio-epoll) "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime monoio-epoll >/dev/null & ;;
    outer-tokio-trpc)
      PROTOCOL=trpc
      URL=http://$addr/trpc
      "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime tokio >/dev/null &
      ;;
    # Subscribers on WebSocket (URL stays the HTTP base: load derives ws://ADDR/trpc from it).
    outer-tokio-trpc-ws)
      PROTOCOL=trpc-ws
      URL=http://$addr/trpc
      "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime tokio >/dev/null &
      ;;
    outer-smol-trpc-ws)
      PROTOCOL=trpc-ws
      URL=http://$addr/trpc
      "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime smol >/dev/null &
      ;;
    outer-tokio-orpc-ws)
      PROTOCOL=orpc-ws
      URL=http://$addr/rpc
      "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime tokio >/dev/null &
      ;;
    # Subscribers on HTTP/2 (prior knowledge), posts over HTTP/1.1.
    outer-tokio-h2 | outer-smol-h2 | outer-tokio-h2-mux | outer-smol-h2-mux)
      PROTOCOL=orpc-h2
      case $1 in *-mux) EXTRA=(--streams-per-connection "$STREAMS_PER_CONNECTION") ;; esac
      local runtime=${1#outer-}
      "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime "${runtime%%-*}" >/dev/null &
      ;;
    outer-tokio-trpc-h2)
      PROTOCOL=trpc-h2
      URL=http://$addr/trpc
      "${server_cpu[@]}" $BIN/chat --listen "$addr" "${CHAT_LIMITS[@]}" --runtime tokio >/dev/null &
      ;;
    floor) "${server_cpu[@]}" $BIN/floor --listen "$addr" >/dev/null & ;;
    orpc-ref) (cd $REF/orpc && PORT=$PORT exec "${server_cpu[@]}" node server.mjs) & ;;
    trpc-ref)
      PROTOCOL=trpc
      URL=http://$addr/trpc
      (cd $REF/trpc && PORT=$PORT exec "${server_cpu[@]}" node server.mjs) &
      ;;
    *)
      echo "run.sh: unknown server $1" >&2
      exit 1
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "run.sh: $1 did not start listening on $addr" >&2
  exit 1
}

for n in $NS; do
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$(need_fds "$n")" ]; then
    echo "run.sh: skipping N = $n: ulimit -n is $(ulimit -n), $n subscribers need at least $(need_fds "$n") (raise the hard limit: see the head of this script)" >&2
    continue
  fi
  paced_rate=$(( PACED_DELIVERIES / n ))
  [ "$paced_rate" -ge 1 ] || paced_rate=1
  connect_timeout=$(( n / 500 ))
  [ "$connect_timeout" -ge 120 ] || connect_timeout=120
  # The chat's defaults (16,384 connections, 10,000 streams) would refuse more subscribers.
  CHAT_LIMITS=()
  if [ "$n" -gt 10000 ]; then
    max_connections=$(( n + 1000 ))
    # Under the descriptor limit, less what else the server opens.
    if [ "$(ulimit -n)" != unlimited ] && [ "$max_connections" -gt $(( $(ulimit -n) - 64 )) ]; then
      max_connections=$(( $(ulimit -n) - 64 ))
    fi
    CHAT_LIMITS=(--max-connections "$max_connections" --max-streams $(( n + 1000 )))
  fi
  for server in $SERVERS; do
    PORT=$((PORT + 1))
    start_server "$server"
    sleep 0.5
    "${gen_cpu[@]}" $BIN/load --url "$URL" --protocol "$PROTOCOL" --label "$server" \
      --subscribers "$n" --duration "$DURATION" --window "$WINDOW" --publishers "$PUBLISHERS" \
      --paced-rate "$paced_rate" --paced-duration "$PACED_DURATION" \
      --connect-timeout "$connect_timeout" --source-addresses "$SOURCE_ADDRESSES" \
      --server-pid "$SERVER_PID" --settle 2 "${EXTRA[@]}" | tee -a "$OUT" | grep '^#' || true
    echo "#   uptime:$(uptime | sed 's/.*load average//'), cpu pressure $(pressure)"
    stop_server
  done
done

echo "cpu pressure at end: $(pressure); load $(cut -d' ' -f1-3 /proc/loadavg)"
$BIN/table "$OUT"
