#!/usr/bin/env bash
# Runs every interop pair in tests/interop/pairs/*.sh and prints one PASS/FAIL line per pair.
# Each pair script gets HARNESS (the spid-harness binary), WORK (a scratch directory of its own)
# and PYTHON_VENV (a venv with the Python peers' packages); it starts its peers on loopback,
# runs the exchange, stops its peers, and exits 0 on success. Exit status: 1 if any pair failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${SPID_PROFILE:-dev}"
cargo build -q --profile "$profile" -p spid-harness
case "$profile" in dev | test) bin_dir=debug ;; *) bin_dir="$profile" ;; esac
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
export HARNESS="$target_dir/$bin_dir/spid-harness"
export PYTHON_VENV="${INTEROP_VENV:-$PWD/.venv/interop}"
if [ ! -x "$PYTHON_VENV/bin/python" ]; then
  python3 -m venv "$PYTHON_VENV"
fi
"$PYTHON_VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/interop/requirements.txt
logs="${REPORT_DIR:-reports}/interop"
mkdir -p "$logs"
failed=0
for pair in tests/interop/pairs/*.sh; do
  name="$(basename "$pair" .sh)"
  WORK="$(mktemp -d)"
  export WORK
  start=$(date +%s)
  if bash "$pair" >"$logs/$name.log" 2>&1; then
    echo "PASS $name ($(( $(date +%s) - start ))s)"
  else
    echo "FAIL $name ($(( $(date +%s) - start ))s) — see $logs/$name.log"
    tail -n 15 "$logs/$name.log" | sed 's/^/    /'
    failed=1
  fi
  rm -rf "$WORK"
done
exit "$failed"
