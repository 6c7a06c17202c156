#!/usr/bin/env bash
# Completed runs/s of a cluster with 1, 2 and 3 nodes on one PostgreSQL, as
# a client sees it (docs/benchmarks.md, "Cluster"): for each size, a fresh
# database, N `agentos serve` processes on loopback, then `agentos bench
# runs` creating runs round robin over the nodes and following each run's
# stream from the next node (so with N > 1 every event crosses nodes).
# Node CPU is the sum over the N processes, from /proc.
#
# PostgreSQL: $AGENTOS_BENCH_POSTGRES_URL (a server where this user may
# create databases), else a throwaway one started with .ci/postgres.
# Knobs: NODES ("1 2 3"), RATES ("100 200 400"), DURATION (15s).
# The bench follows every run with one event stream, so the per-tenant
# stream cap is raised to the node cap for the bench tenant's sake
# (--max-event-streams-per-tenant 1000): stated here, not hidden.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${AGENTOS:-$here/bin/agentos}
NODES=${NODES:-"1 2 3"}
RATES=${RATES:-"100 200 400"}
DURATION=${DURATION:-15s}
dir=$(mktemp -d)
# Run from the temp dir: a .agentos.env in the caller's directory would
# otherwise configure the nodes (its store, its ports).
cd "$dir"
pids=()
pgdir=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "$pgdir" ] && bash "$here/.ci/postgres" stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
url=${AGENTOS_BENCH_POSTGRES_URL:-}
if [ -z "$url" ]; then
  pgdir=$dir/pg
  [ "$(id -u)" = 0 ] && chmod 755 "$dir"
  eval "$(bash "$here/.ci/postgres" start "$pgdir" "${PG_PORT:-55490}")"
  url=$AGENTOS_TEST_POSTGRES_URL
fi
cpu_ticks() { # utime+stime of the given pids, in clock ticks
  local t=0
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
echo "machine: $(nproc) cores, $(uptime)"
echo "binary:  $BIN ($("$BIN" version 2>/dev/null | head -1))"
for n in $NODES; do
  db="agentos_bench_${n}_$$"
  psql "$url" -qc "CREATE DATABASE $db" >/dev/null
  store=$(echo "$url" | sed -E "s#/[^/?]+(\?|$)#/$db\1#")
  pids=() urls=()
  for i in $(seq 1 "$n"); do
    "$BIN" serve --data-dir "$dir/n$n-$i" --store "$store" --node-id "bench-$n-$i" \
      --max-event-streams 1000 --max-event-streams-per-tenant 1000 \
      --stack-a-addr 127.0.0.1:0 --stack-b-addr 127.0.0.1:0 --fed-addr 127.0.0.1:0 >"$dir/n$n-$i.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do [ -f "$dir/n$n-$i/node.json" ] && break; sleep 0.1; done
    [ -f "$dir/n$n-$i/node.json" ] || { echo "node $i did not start:"; cat "$dir/n$n-$i.log"; exit 1; }
    urls+=("$(sed -nE 's/.*"stack_a_url": *"([^"]+)".*/\1/p' "$dir/n$n-$i/node.json")")
  done
  list=$(IFS=,; echo "${urls[*]}")
  for r in $RATES; do
    echo "== $n node(s), runs at $r/s"
    before=$(cpu_ticks "${pids[@]}")
    start=$(date +%s.%N)
    "$BIN" bench runs --data-dir "$dir/n$n-1" --url-a "$list" --rate "$r" --duration "$DURATION" --warmup 2s --timeout 30s --pid "${pids[0]}" | grep -v '^node '
    after=$(cpu_ticks "${pids[@]}")
    end=$(date +%s.%N)
    awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$end" \
      'BEGIN { printf "nodes cpu   %.2f s over %.1f s (all %d node processes, /proc)\n", t / hz, e - s, '"$n"' }'
  done
  for p in "${pids[@]}"; do kill "$p"; done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
  psql "$url" -qc "DROP DATABASE $db" >/dev/null || true
done
