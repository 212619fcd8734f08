#!/usr/bin/env bash
# What the gateway's statistics cost per request, in instructions: the
# same bounded bolt load (mg-load, 4 connections x 8 in flight, 128-byte
# payloads) through two release builds of the gateway under callgrind,
# one of the tree as it is and one with the stats hooks removed
# (bench/stats-off.patch: the request-path calls in proxy/serve.rs and the
# byte counters). Instructions per request = (instructions of the run
# with load - instructions of an idle run) / replies; the difference
# between the builds is what counting costs. The run with stats also
# prints the attribution: the inclusive instructions of every call from
# outside meshgate::stats into it, per request, the idle run's subtracted
# (bench/callgrind_calls.py).
# Usage: bench/stats-cost.sh [SECONDS]   (needs valgrind, python3, git)
# CONNECTIONS / IN_FLIGHT: the load's shape (default 4 x 8). With 1 x 1
# every request costs one full wake-up cycle; with more in flight, how
# many requests share a wake-up depends on timing, so two builds that
# reach different reply counts also differ in instructions per request.
# STATS_BIN / NOSTATS_BIN / LOAD_DIR: use binaries built already (the
# two gateways, and the directory of mg-load and mg-stub) instead.
# Kills only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-10}"
work=$(mktemp -d)
pids=()
patched=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$patched" = 1 ]; then git apply -R bench/stats-off.patch; fi
  rm -rf "$work"
}
trap cleanup EXIT

# The two builds: the tree as it is, and the same tree with the patch.
if [ -n "${STATS_BIN:-}" ]; then
  cp "$STATS_BIN" "$work/meshgate-stats"; cp "$NOSTATS_BIN" "$work/meshgate-nostats"
  cp "$LOAD_DIR/mg-load" "$LOAD_DIR/mg-stub" "$work/"
else
  cargo build --release -q -p meshgate -p meshgate-bench
  target="${CARGO_TARGET_DIR:-target}"
  cp "$target/release/meshgate" "$work/meshgate-stats"
  cp "$target/release/mg-load" "$target/release/mg-stub" "$work/"
  # The same tree with the patch applied in place for one build (only the
  # meshgate crate recompiles), reverted at once, also on failure; the
  # next build of the tree recompiles meshgate once more.
  git apply --check bench/stats-off.patch
  patched=1; git apply bench/stats-off.patch
  cargo build --release -q -p meshgate --bin meshgate
  cp "$target/release/meshgate" "$work/meshgate-nostats"
  git apply -R bench/stats-off.patch; patched=0
fi

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stub=$(port)
"$work/mg-stub" --protocol bolt --listen "127.0.0.1:$stub" > "$work/stub.log" 2>&1 & pids+=($!)

# Runs one build under callgrind with (or without) load; prints
# "<instructions> <replies>".
run() {
  local bin=$1 load=$2 gw; gw=$(port)
  sed -e "s/GW_PORT/$gw/" -e "s/STUB_PORT/$stub/" > "$work/gw.json" <<'JSON'
{ "servers": [{ "default_log_level": "WARN",
    "routers": [{ "router_config_name": "r", "virtual_hosts": [{ "name": "all", "domains": ["*"],
      "routers": [{ "match": { "headers": [{ "name": "service", "value": ".*" }] }, "route": { "cluster_name": "bolt" } }] }] }],
    "listeners": [{ "name": "bolt", "address": "127.0.0.1:GW_PORT", "bind_port": true,
      "filter_chains": [{ "filters": [{ "type": "proxy", "config": { "downstream_protocol": "bolt", "router_config_name": "r" } }] }] }] }],
  "cluster_manager": { "clusters": [{ "name": "bolt", "lb_type": "LB_ROUNDROBIN", "hosts": [{ "address": "127.0.0.1:STUB_PORT" }] }] } }
JSON
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$bin" start -c "$work/gw.json" \
    > "$work/gw.log" 2>&1 &
  local vg=$!
  for _ in $(seq 1 300); do grep -q "meshgate running" "$work/gw.log" && break; sleep 0.1; done
  local replies=0
  if [ "$load" = load ]; then
    replies=$("$work/mg-load" --protocol bolt --target "127.0.0.1:$gw" --connections "${CONNECTIONS:-4}" --in-flight "${IN_FLIGHT:-8}" \
      --warmup 0s --duration "${seconds}s" --timeout 30s --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])')
  fi
  kill -TERM "$vg"; wait "$vg" || true
  local ir; ir=$(grep -m1 '^summary:' "$work/cg.out" | awk '{print $2}')
  cp "$work/cg.out" "$work/cg-$(basename "$bin")-$load.out"
  echo "$ir $replies"
}

for variant in stats nostats; do
  read -r idle _ < <(run "$work/meshgate-$variant" idle)
  read -r busy replies < <(run "$work/meshgate-$variant" load)
  python3 -c "print(f'$variant: {($busy - $idle) / $replies:,.0f} instructions/request ($replies replies)')"
  if [ "$variant" = stats ]; then
    python3 bench/callgrind_calls.py "$work/cg-meshgate-stats-load.out" 'meshgate::stats::' \
      "$replies" "$work/cg-meshgate-stats-idle.out"
  fi
done
