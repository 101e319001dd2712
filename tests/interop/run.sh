#!/usr/bin/env bash
# Runs every interop pair in tests/interop/pairs/*.sh and prints one PASS/FAIL line per pair.
# Each pair script gets HARNESS (the spid-harness binary), WORK (a scratch directory of its own)
# and PYTHON_VENV (a venv with the Python peers' packages); it starts its peers on loopback,
# runs the exchange, stops its peers, and exits 0 on success. Exit status: 1 if any pair failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile="${SPID_PROFILE:-dev}"
HARNESS="$(scripts/harness-bin.sh "$profile")"
export HARNESS
export PYTHON_VENV="${INTEROP_VENV:-$PWD/.venv/interop}"
if [ ! -x "$PYTHON_VENV/bin/python" ]; then
  python3 -m venv "$PYTHON_VENV"
fi
"$PYTHON_VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/interop/requirements.txt
logs="${REPORT_DIR:-reports}/interop"
mkdir -p "$logs"
# Two lanes run side by side: the pairs inside the reference OIDC federation (they install and
# share .venv/oidc-interop, so they stay in one lane) and all the others; within a lane, one
# pair at a time. INTEROP_LANES=1 runs everything in one lane; INTEROP_ONLY=GLOB runs the pairs
# whose name matches (e.g. INTEROP_ONLY='check-sp-*').
run_lane() { # OUT PAIR...: runs the pairs in turn, one result line each in OUT
  local out="$1" pair name start rc
  shift
  for pair in "$@"; do
    name="$(basename "$pair" .sh)"
    WORK="$(mktemp -d)"
    export WORK
    start=$(date +%s)
    rc=0
    bash "$pair" >"$logs/$name.log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
      echo "PASS $name ($(( $(date +%s) - start ))s)" >>"$out"
    else
      echo "FAIL $name ($(( $(date +%s) - start ))s) — see $logs/$name.log" >>"$out"
    fi
    rm -rf "$WORK"
  done
}
federation=() others=()
for pair in tests/interop/pairs/${INTEROP_ONLY:-*}.sh; do
  [ -e "$pair" ] || continue
  case "$(basename "$pair")" in
    oidc-* | check-op-* | check-rp-*) federation+=("$pair") ;;
    *) others+=("$pair") ;;
  esac
done
results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
if [ "${INTEROP_LANES:-2}" = 1 ]; then
  run_lane "$results/a" "${federation[@]}" "${others[@]}"
else
  run_lane "$results/a" "${federation[@]}" &
  lane=$!
  run_lane "$results/b" "${others[@]}"
  wait "$lane"
fi
failed=0
while read -r verdict name rest; do
  echo "$verdict $name $rest"
  if [ "$verdict" != PASS ]; then
    tail -n 15 "$logs/$name.log" | sed 's/^/    /'
    failed=1
  fi
done < <(cat "$results"/* | sort -k2)
[ "$(cat "$results"/* | wc -l)" = "$(( ${#federation[@]} + ${#others[@]} ))" ] || {
  echo "FAIL: a lane stopped before its last pair" >&2
  failed=1
}
exit "$failed"
