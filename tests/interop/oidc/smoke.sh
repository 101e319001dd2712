#!/usr/bin/env bash
# Smoke test of the reference federation: bootstrap, print the TA's Entity
# Configuration and its trust chain resolution of the OP, then two complete
# browser-like logins of the reference RP at the reference OP (the second with
# the OP forced to SpidL1). Stops every server it started, whatever happens.
# WORK may be given (kept afterwards); otherwise a temp dir is used and removed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
own_work=""
if [ -z "${WORK:-}" ]; then WORK="$(mktemp -d)"; own_work=1; fi
export WORK PYTHONDONTWRITEBYTECODE=1
finish() {
  rc=$?
  bash "$here/stop.sh"
  if [ "$rc" != 0 ]; then tail -n 40 "$WORK"/log/*.log 2>/dev/null || true; fi
  if [ -n "$own_work" ]; then rm -rf "$WORK"; fi
  exit "$rc"
}
trap finish EXIT

t0=$(date +%s.%N)
bash "$here/bootstrap.sh"
t1=$(date +%s.%N)
# shellcheck disable=SC1091
source "$WORK/env"
drive() { "$OIDC_PY" "$here/login_driver.py" "$@"; }

echo "== TA entity configuration ($TA_ID/.well-known/openid-federation)"
drive ec "$TA_ID/.well-known/openid-federation"
echo "== TA trust chain resolution of the OP ($TA_ID/resolve?sub=$OP_ID&trust_anchor=$TA_ID)"
drive resolve "$OP_ID"

passed=0
echo "== login 1: reference RP at reference OP, as asked (SpidL2)"
drive login user oidcuser --expect-acr https://www.spid.gov.it/SpidL2
passed=$((passed + 1))
echo "== login 2: OP forced to answer SpidL1 (the reference RP accepts it: it does not check acr)"
echo https://www.spid.gov.it/SpidL1 >"$WORK/op_force_acr"
drive login user2 oidcuser2 --expect-acr https://www.spid.gov.it/SpidL1
rm -f "$WORK/op_force_acr"
passed=$((passed + 1))
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "timings: bootstrap %.1fs, checks and logins %.1fs\n", b - a, c - b }'
echo "oidc smoke: $passed passed, 0 failed"
