#!/usr/bin/env bash
# A first speed reading: the same closed-loop load (mg-load: 16 connections
# x 8 in flight, 128-byte payloads, every reply checked) straight to a stub
# backend and through meshgate, for bolt and Dubbo. No CPU pinning: on a
# small machine the gateway, the load generator and the stubs share cores.
# (The full harness against Envoy and nginx is bench/run.sh's job.)
# Usage: bench/quick.sh [SECONDS]   Kills only the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
cargo build --release -q -p meshgate -p meshgate-bench
bin=target/release
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
gw=$(port); bolt=$(port); dubbo=$(port)
"$bin/mg-stub" --protocol bolt --listen "127.0.0.1:$bolt" > "$work/bolt.log" 2>&1 & pids+=($!)
"$bin/mg-stub" --protocol dubbo --listen "127.0.0.1:$dubbo" > "$work/dubbo.log" 2>&1 & pids+=($!)
cat > "$work/gw.json" <<JSON
{
  "servers": [{
    "default_log_level": "WARN",
    "routers": [{ "router_config_name": "r", "virtual_hosts": [{ "name": "all", "domains": ["*"], "routers": [
      { "match": { "headers": [{ "name": "service", "value": "org.apache.dubbo.samples.DemoService" }] }, "route": { "cluster_name": "dubbo" } },
      { "match": { "headers": [{ "name": "service", "value": ".*" }] }, "route": { "cluster_name": "bolt" } }
    ]}]}],
    "listeners": [{ "name": "auto", "address": "127.0.0.1:$gw", "bind_port": true,
      "filter_chains": [{ "filters": [{ "type": "proxy", "config": { "downstream_protocol": "Auto", "router_config_name": "r" } }] }] }]
  }],
  "cluster_manager": { "clusters": [
    { "name": "bolt", "lb_type": "LB_ROUNDROBIN", "hosts": [{ "address": "127.0.0.1:$bolt" }] },
    { "name": "dubbo", "lb_type": "LB_ROUNDROBIN", "hosts": [{ "address": "127.0.0.1:$dubbo" }] }
  ]}
}
JSON
"$bin/meshgate" start -c "$work/gw.json" > "$work/gw.log" 2>&1 & pids+=($!)
sleep 1
for proto in bolt dubbo; do
  backend=$bolt; [ "$proto" = dubbo ] && backend=$dubbo
  for target in "$backend" "$gw"; do
    label=direct; [ "$target" = "$gw" ] && label=meshgate
    printf '%-6s %-8s ' "$proto" "$label"
    RUST_BACKTRACE=0 "$bin/mg-load" --protocol "$proto" --target "127.0.0.1:$target" \
      --connections 16 --in-flight 8 --warmup 1s --duration "${seconds}s"
  done
done
