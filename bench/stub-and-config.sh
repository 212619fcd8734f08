# Sourced by bench/callgrind.sh and bench/ab.sh: starts one mg-stub
# speaking STUB_PROTOCOL on CPU 1 (its PID appended to the caller's
# `pids`), then writes the harness's meshgate config
# (bench/harness/configs.py) for a listener speaking GATEWAY_PROTOCOL on a
# free port in front of it. Sets `stub_port` and `port`.
# Usage: start_stub_and_config BIN_DIR STUB_PROTOCOL GATEWAY_PROTOCOL WORK_DIR
start_stub_and_config() {
  local bin="$1" stub_protocol="$2" gateway_protocol="$3" work="$4"
  taskset -c 1 "$bin/mg-stub" --protocol "$stub_protocol" --listen 127.0.0.1:0 >"$work/stub.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do grep -q READY "$work/stub.log" && break; sleep 0.1; done
  stub_port=$(grep -o 'port=[0-9]*' "$work/stub.log" | cut -d= -f2)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  python3 -c "import sys; sys.path.insert(0, 'bench/harness'); import configs; print(configs.meshgate($port, $stub_port, '$gateway_protocol'))" >"$work/gw.json"
}
