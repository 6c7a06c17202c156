#!/usr/bin/env bash
# The black-box table of docs/benchmarks.md: starts the built binary (or
# $AGENTOS) on loopback ports in a temp dir with a fake OpenAI-compatible
# upstream (`agentos bench upstream`), runs `agentos bench` against it, and
# stops both. Rates and duration: RATES_GW, RATES_RUNS, DURATION.
set -euo pipefail
BIN=${AGENTOS:-./bin/agentos}
BENCH=${BENCH_BIN:-$BIN}
DURATION=${DURATION:-20s}
RATES_GW=${RATES_GW:-"1000 3000"}
RATES_RUNS=${RATES_RUNS:-"1000 1500"}
dir=$(mktemp -d)
# Run from the temp dir: a .agentos.env in the caller's directory would
# otherwise configure the nodes (its store, its ports).
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
BENCH=$(cd "$(dirname "$BENCH")" && pwd)/$(basename "$BENCH")
cd "$dir"
up_port=${UP_PORT:-19099}
a=127.0.0.1:18180 b=127.0.0.1:18181 f=127.0.0.1:18182
cat > "$dir/providers.json" <<JSON
{"providers":[{"name":"fake","kind":"openai","base_url":"http://127.0.0.1:$up_port/v1","timeout_ms":30000,
  "models":[{"model_id":"bench-1","capabilities":["chat"],"tier":"balanced"}]}]}
JSON
"$BENCH" bench upstream --addr 127.0.0.1:$up_port > "$dir/upstream.log" 2>&1 &
up=$!
# Limits set for a load test, stated here rather than hidden: `bench runs`
# follows every run it creates with its own event stream, so at 1,000+ runs/s
# the one bench tenant holds far more than the default 100 streams per tenant
# (a hardening limit against one key taking the node's slots). The tenant may
# use the node's whole stream allowance; everything else stays at its default
# (the in-flight cap, body budget, per-tenant quotas sized by `agentos bench`
# for the rate it drives).
"$BIN" serve --data-dir "$dir/node" --providers-file "$dir/providers.json" \
  --stack-a-addr $a --stack-b-addr $b --fed-addr $f \
  --max-event-streams 1000 --max-event-streams-per-tenant 1000 > "$dir/node.log" 2>&1 &
node=$!
trap 'kill $node $up 2>/dev/null; wait $node $up 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do [ -f "$dir/node/node.json" ] && break; sleep 0.1; done
[ -f "$dir/node/node.json" ] || { echo "node did not start:"; cat "$dir/node.log"; exit 1; }
echo "machine: $(nproc) cores, $(uptime)"
sleep 2
# VmRSS, and the anonymous part of it (heap, stacks, runtime): the rest is
# file pages of the binary, whose count depends on the kernel's readahead and
# page-cache folio sizes as much as on the node.
echo "idle rss: $(awk '/VmRSS/ {r=$2/1024} /RssAnon/ {a=$2/1024} END {print r " MiB (anonymous " a " MiB)"}' /proc/$node/status)"
common=(--data-dir "$dir/node" --duration "$DURATION" --warmup 2s)
# RATES_GW=none skips the gateway (runs only, on a node no gateway load
# has grown).
[ "$RATES_GW" = none ] && RATES_GW=""
for r in $RATES_GW; do
  echo "== direct to the upstream (baseline), $r/s"
  "$BENCH" bench gateway "${common[@]}" --direct http://127.0.0.1:$up_port/v1 --model bench-1 --rate "$r"
  echo "== gateway, proxied to the upstream, $r/s"
  "$BENCH" bench gateway "${common[@]}" --model fake/bench-1 --rate "$r"
done
if [ -n "$RATES_GW" ]; then
  echo "== gateway, builtin model, 1000/s"
  "$BENCH" bench gateway "${common[@]}" --model builtin/echo-1 --rate 1000
fi
for r in $RATES_RUNS; do
  echo "== runs, $r/s"
  "$BENCH" bench runs "${common[@]}" --rate "$r" --timeout 30s
done
