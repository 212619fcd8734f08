#!/usr/bin/env bash
# Instructions per proxied request, under callgrind: a release build with
# one listener (`processor: 1`, the harness's config from
# bench/harness/configs.py) in front of one mg-stub, loaded the way
# bench/run.sh loads it (HTTP/1: wrk -t1 -c64; h2c: h2load -t1 -c8 -m16;
# gRPC: the same h2load POSTing the harness's unary message)
# or, for bolt and Dubbo, by mg-load with 4 connections x 8 in flight,
# first for a 2 s warm-up, then callgrind's counters are zeroed and the
# measured run goes for SECONDS. Instructions per request = the measured
# run's user-space instructions / the requests the load generator counted
# (kernel work is not in it). Prints that, and keeps the profile and the
# inclusive / self listings (callgrind_annotate) in OUT.
# Usage: bench/callgrind.sh http1|h2c|grpc|bolt|dubbo [SECONDS] [OUT]
# (needs valgrind, wrk or h2load for HTTP, python3; build first:
#  cargo build --release -p meshgate -p meshgate-bench)
# Pins the gateway to CPU 0 and the stub and load to CPU 1; kills only the
# processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:?http1, h2c, grpc, bolt or dubbo}"
seconds="${2:-10}"
out="${3:-$(mktemp -d)}"
bin="${CARGO_TARGET_DIR:-target}/release"
case "$scenario" in
  http1) stub=http1 protocol=Http1 ;;
  h2c | grpc) stub=h2 protocol=Http2 ;;
  bolt | dubbo) stub=$scenario protocol=$scenario ;;
  *) echo "unknown scenario $scenario (http1, h2c, grpc, bolt or dubbo)" >&2; exit 2 ;;
esac
mkdir -p "$out"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

. bench/stub-and-config.sh
start_stub_and_config "$bin" "$stub" "$protocol" "$out"
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg.out" \
  "$bin/meshgate" start -c "$out/gw.json" >"$out/gateway.log" 2>&1 &
gateway=$!
pids+=($gateway)
for _ in $(seq 150); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.2; done

load() {
  case "$scenario" in
    http1) taskset -c 1 wrk -t1 -c64 "-d${1}s" --timeout 5s "http://127.0.0.1:$port/" ;;
    h2c) taskset -c 1 h2load -t1 -c8 -m16 "-D$1" "http://127.0.0.1:$port/" ;;
    grpc) taskset -c 1 h2load -t1 -c8 -m16 "-D$1" -d "$out/grpc-request.bin" \
      -H "content-type: application/grpc" -H "te: trailers" "http://127.0.0.1:$port/bench.Echo/Unary" ;;
    *) taskset -c 1 "$bin/mg-load" --protocol "$scenario" --target "127.0.0.1:$port" \
      --connections 4 --in-flight 8 --warmup 0s --duration "${1}s" --json ;;
  esac
}
python3 -c "import sys; sys.path.insert(0, 'bench/harness'); import loads, pathlib; loads.grpc_message(pathlib.Path('$out'))"
load 2 >"$out/warm-up.txt" 2>&1
callgrind_control -z "$gateway" >/dev/null
load "$seconds" >"$out/load.txt" 2>&1
callgrind_control -d "$gateway" >/dev/null
sleep 0.5
kill -TERM "$gateway"
wait "$gateway" || true

case "$scenario" in
  http1) requests=$(awk '/requests in/ {print $1}' "$out/load.txt") ;;
  h2c | grpc) requests=$(awk '/^requests:/ {print $2}' "$out/load.txt") ;;
  *) requests=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ok"])' "$out/load.txt") ;;
esac
profile=$(ls -t "$out"/cg.out.* | head -1)
instructions=$(awk '/^(summary|totals):/ {print $2; exit}' "$profile")
callgrind_annotate --inclusive=yes --threshold=100 "$profile" >"$out/inclusive.txt" 2>/dev/null || true
callgrind_annotate --threshold=100 "$profile" >"$out/self.txt" 2>/dev/null || true
echo "$scenario: $requests requests, $instructions instructions, $((instructions / requests)) per request (profile: $profile)"
