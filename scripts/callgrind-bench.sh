#!/usr/bin/env bash
# Instruction-count benchmarks of the hot paths (in the style of rustls's ci-bench): each of
# `sign` (our IdP builds and signs one Response, Assertion and Response signatures), `validate`
# (our SP validates it) and `login` (one whole L2 login over loopback, IdP + SP + user agent on
# one thread) runs in crates/spid-harness/examples/hot_paths.rs under
# `valgrind --tool=callgrind`, counting only the measured iterations (--toggle-collect). Counts
# hold on a noisy shared machine where wall time does not.
#
# Prints each count per iteration beside the stored baseline (bench/callgrind-baseline.toml) and
# exits 1 if any is more than CALLGRIND_THRESHOLD percent (default 10) above it.
#
#   scripts/callgrind-bench.sh             # compare with the baseline
#   scripts/callgrind-bench.sh --update    # measure and write the baseline (commit it)
#   scripts/callgrind-bench.sh --build-only  # build the release example only
#
# Environment: CALLGRIND_ITERATIONS (default 3), CALLGRIND_THRESHOLD (default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=bench/callgrind-baseline.toml
iterations="${CALLGRIND_ITERATIONS:-3}"
threshold="${CALLGRIND_THRESHOLD:-10}"
update=0
[ "${1:-}" = "--update" ] && update=1

command -v valgrind >/dev/null || scripts/setup.sh
cargo build -q --release -p spid-harness --example hot_paths
# Only the build (CI builds early, in the background, and measures later).
[ "${1:-}" = "--build-only" ] && exit 0
bin="${CARGO_TARGET_DIR:-target}/release/examples/hot_paths"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The baseline's count for a bench, or nothing.
stored() {
  [ -f "$baseline" ] && sed -n "s/^$1 *= *\([0-9][0-9]*\).*/\1/p" "$baseline" | head -n 1
}

declare -A counts
status=0
printf '%-10s %15s %15s %9s\n' bench "instr/iter" baseline change
for bench in sign validate login; do
  out="$tmp/$bench.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect='hot_paths::measured*' "$bin" "$bench" "$iterations" >"$tmp/$bench.log" 2>&1 || {
    echo "callgrind-bench: $bench failed:" >&2
    tail -n 20 "$tmp/$bench.log" >&2
    exit 1
  }
  total="$(sed -n 's/^totals: *\([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)"
  [ -n "$total" ] || total="$(sed -n 's/^summary: *\([0-9][0-9]*\).*/\1/p' "$out" | head -n 1)"
  [ -n "$total" ] || { echo "callgrind-bench: no count for $bench" >&2; exit 1; }
  per=$((total / iterations))
  counts[$bench]=$per
  base="$(stored "$bench" || true)"
  if [ -n "$base" ] && [ "$base" -gt 0 ]; then
    change="$(awk -v a="$per" -v b="$base" 'BEGIN { printf "%+.1f%%", 100 * (a - b) / b }')"
    over="$(awk -v a="$per" -v b="$base" -v t="$threshold" 'BEGIN { print (a > b * (1 + t / 100)) ? 1 : 0 }')"
    if [ "$over" = 1 ] && [ "$update" = 0 ]; then
      change="$change  REGRESSION (> +$threshold%)"
      status=1
    fi
  else
    base="-"
    change="(no baseline)"
  fi
  printf '%-10s %15s %15s %9s\n' "$bench" "$per" "$base" "$change"
done

if [ "$update" = 1 ]; then
  mkdir -p "$(dirname "$baseline")"
  {
    echo "# Instructions per iteration of each hot path under callgrind (scripts/callgrind-bench.sh)."
    echo "# Refresh with: scripts/callgrind-bench.sh --update (and commit). Measured $(date -u +%Y-%m-%d),"
    echo "# $(nproc) cores, valgrind $(valgrind --version | sed 's/valgrind-//'), release build, $iterations iterations."
    for bench in sign validate login; do
      echo "$bench = ${counts[$bench]}"
    done
  } >"$baseline"
  echo "callgrind-bench: wrote $baseline" >&2
fi
exit "$status"
