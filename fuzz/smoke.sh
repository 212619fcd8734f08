#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 20 s each), seeded with
# the golden vectors. Fails on the first crash. Usage: fuzz/smoke.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-20}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode_bolt decode_dubbo hessian_head decode_generic detect roundtrip)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs nightly-only flags (-Z sanitizer); RUSTC_BOOTSTRAP lets the
# pinned stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
vectors=../codecs/testdata/vectors
# seed TARGET PREFIX FILE...: copies each vector into the target's corpus
# behind PREFIX (the control bytes the target reads first, as printf escapes).
seed() {
  local dir="corpus/$1" prefix="$2"; shift 2
  mkdir -p "$dir"
  for f in "$@"; do
    [ -f "$f" ] || continue
    { printf "$prefix"; cat "$f"; } > "$dir/seed-$(basename "$f")"
  done
}
# Decode targets read a chunk-size byte first; decode_generic reads a layout
# byte before it (0 x_example, 1 Dubbo's header).
seed decode_bolt '\x40' "$vectors"/bolt/*.bin "$vectors"/tricky/bolt*.bin
seed decode_dubbo '\x40' "$vectors"/dubbo/*.bin "$vectors"/tricky/dubbo*.bin
seed decode_generic '\x00\x40' "$vectors"/xprotocol/*.bin "$vectors"/tricky/x_example*.bin
seed decode_generic '\x01\x40' "$vectors"/dubbo/*.bin
mkdir -p corpus/hessian_head corpus/detect corpus/roundtrip
for f in "$vectors"/dubbo/request_*.bin; do tail -c +17 "$f" > "corpus/hessian_head/seed-$(basename "$f")"; done
for f in "$vectors"/*/*.bin; do cp "$f" "corpus/detect/seed-$(basename "$f")"; done
cargo fuzz build --release
mkdir -p logs
for target in "${targets[@]}"; do
  echo "fuzz: $target for ${seconds}s" >&2
  rc=0
  cargo fuzz run --release "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 >"logs/$target.log" 2>&1 || rc=$?
  grep -E 'stat::number_of_executed_units|panicked|SUMMARY|ERROR' "logs/$target.log" >&2 || true
  if [ "$rc" -ne 0 ]; then
    tail -n 40 "logs/$target.log" >&2
    echo "fuzz: $target FAILED; reproduce with: cargo fuzz run $target fuzz/artifacts/$target/<file>" >&2
    exit 1
  fi
done
echo "fuzz: all targets ran ${seconds}s without a crash" >&2
