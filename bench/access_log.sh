#!/usr/bin/env bash
# Usage: bench/access_log.sh [SECONDS]   Kills only the processes it started.
# Gateway throughput without and with an access log (default MOSN format, to a file).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
cargo build --release -q -p meshgate -p meshgate-bench
gwbin=target/release/meshgate
rel=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
bolt=$(port)
"$rel/mg-stub" --protocol bolt --listen "127.0.0.1:$bolt" > "$work/bolt.log" 2>&1 & pids+=($!)
for mode in none file; do
  gw=$(port)
  logs='[]'
  [ "$mode" = file ] && logs="[{\"log_path\": \"$work/access.log\"}]"
  cat > "$work/gw-$mode.json" <<JSON
{ "servers": [{ "default_log_level": "WARN",
    "routers": [{ "router_config_name": "r", "virtual_hosts": [{ "name": "all", "domains": ["*"], "routers": [
      { "match": { "headers": [{ "name": "service", "value": ".*" }] }, "route": { "cluster_name": "bolt" } } ]}]}],
    "listeners": [{ "name": "auto", "address": "127.0.0.1:$gw", "bind_port": true, "access_logs": $logs,
      "filter_chains": [{ "filters": [{ "type": "proxy", "config": { "downstream_protocol": "Auto", "router_config_name": "r" } }] }] }] }],
  "cluster_manager": { "clusters": [ { "name": "bolt", "lb_type": "LB_ROUNDROBIN", "hosts": [{ "address": "127.0.0.1:$bolt" }] } ]} }
JSON
  "$gwbin" start -c "$work/gw-$mode.json" > "$work/gw-$mode.log" 2>&1 & gpid=$!; pids+=($gpid)
  sleep 1
  printf 'access log %-5s ' "$mode"
  RUST_BACKTRACE=0 "$rel/mg-load" --protocol bolt --target "127.0.0.1:$gw" --connections 16 --in-flight 8 --warmup 1s --duration "${seconds}s"
  kill -TERM $gpid; wait $gpid || true
  if [ "$mode" = file ]; then echo "lines in access.log: $(wc -l < "$work/access.log")"; head -2 "$work/access.log"; fi
done
