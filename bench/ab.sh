#!/usr/bin/env bash
# Two (or more) builds of meshgate against each other on CPU time per
# request, alternating run by run so drifts of a noisy machine fall on all
# of them alike: one stub on CPU 1, each binary in turn on CPU 0 with the
# harness's config (bench/harness/configs.py), 1 s of warm-up, then
# SECONDS of load (HTTP/1: wrk -t1 -c64; h2c: h2load -t1 -c8 -m16; bolt
# and Dubbo: mg-load, 16 connections x 8 in flight, as bench/run.sh), and
# utime + stime from /proc/PID/stat over the measured run ÷ requests.
# Prints one line per run and each binary's mean.
# Usage: bench/ab.sh http1|h2c|bolt|dubbo ROUNDS SECONDS BINARY...
# (build mg-stub and mg-load first: cargo build --release -p
#  meshgate-bench; needs wrk or h2load for HTTP). Kills only the processes
#  it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario="${1:?http1, h2c, bolt or dubbo}" rounds="${2:?rounds}" seconds="${3:?seconds}"
shift 3
[ $# -ge 1 ] || { echo "no binaries given" >&2; exit 2; }
case "$scenario" in
  http1) stub=http1 protocol=Http1 ;;
  h2c) stub=h2 protocol=Http2 ;;
  bolt | dubbo) stub=$scenario protocol=$scenario ;;
  *) echo "unknown scenario $scenario (http1, h2c, bolt or dubbo)" >&2; exit 2 ;;
esac
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
. bench/stub-and-config.sh
start_stub_and_config "${CARGO_TARGET_DIR:-target}/release" "$stub" "$protocol" "$work"

# Prints requests per second.
load() {
  case "$scenario" in
    http1) taskset -c 1 wrk -t1 -c64 "-d${1}s" "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}' ;;
    h2c) taskset -c 1 h2load -t1 -c8 -m16 "-D$1" "http://127.0.0.1:$port/" | awk -v s="$1" '/^requests:/ {print $8 / s}' ;;
    *) taskset -c 1 "${CARGO_TARGET_DIR:-target}/release/mg-load" --protocol "$scenario" \
      --target "127.0.0.1:$port" --connections 16 --in-flight 8 --warmup 0s \
      --duration "${1}s" --json | python3 -c "import json, sys; print(json.load(sys.stdin)['ok'] / $1)" ;;
  esac
}
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }

for _ in $(seq "$rounds"); do
  for binary in "$@"; do
    taskset -c 0 "$binary" start -c "$work/gw.json" >"$work/gateway.log" 2>&1 &
    gateway=$!
    pids+=($gateway)
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    load 1 >/dev/null
    before=$(ticks "$gateway")
    rps=$(load "$seconds")
    after=$(ticks "$gateway")
    kill "$gateway"
    wait "$gateway" 2>/dev/null || true
    python3 - "$binary" "$rps" "$seconds" "$before" "$after" "$(getconf CLK_TCK)" <<'PY'
import sys
binary, rps, seconds, before, after, tck = sys.argv[1:]
u0, s0 = map(int, before.split()); u1, s1 = map(int, after.split())
n = float(rps) * float(seconds); per = 1e6 / int(tck) / n
print(f"{binary}\t{float(rps):9.0f} req/s\tcpu {(u1 - u0 + s1 - s0) * per:6.2f} us/req\tuser {(u1 - u0) * per:5.2f}\tsys {(s1 - s0) * per:5.2f}")
PY
  done
done | tee "$work/runs.txt"
awk -F'\t' '{split($3, c, " "); sum[$1] += c[2]; n[$1]++} END {for (b in sum) printf "%s\tmean cpu %.2f us/req over %d runs\n", b, sum[b] / n[b], n[b]}' "$work/runs.txt"
