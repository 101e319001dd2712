# Sourced (after ../lib.sh) by every pair that works inside the reference federation: starts
# their trust anchor, OP and RP on loopback (venv .venv/oidc-interop, installed from PyPI on
# first use), stops them whatever happens, loads their ids into the environment ($TA_ID,
# $OP_ID, $RP_ID, $OIDC_PY), and defines run_onboarded for check-op / check-rp.
oidc="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
trap 'cleanup; WORK="$WORK" bash "$oidc/stop.sh"' EXIT
bash "$oidc/bootstrap.sh"
set -a
# shellcheck disable=SC1091
source "$WORK/env"
set +a

# run_onboarded TYPE ARGS...: `$HARNESS ARGS...` with --trust-marks/--entity-id-out in $WORK,
# its entity onboarded as TYPE (openid_relying_party | openid_provider); the output is kept in
# $WORK/report.txt and printed; fails unless the harness exits 0 (with --peer: every case passes
# or fails as the peer file lists, and the honest login worked before and after the cases).
run_onboarded() {
  local type="$1"; shift
  "$HARNESS" "$@" --trust-marks "$WORK/tm.json" --entity-id-out "$WORK/entity_id" \
    >"$WORK/report.txt" 2>&1 &
  local check=$! rc=0 id
  for _ in $(seq 1 100); do [ -s "$WORK/entity_id" ] && break; sleep 0.1; done
  id="$(cat "$WORK/entity_id")"
  wait_for "$id/.well-known/openid-federation"
  (cd "$oidc/project" \
    && DJANGO_SETTINGS_MODULE=oidc_interop.settings_ta "$OIDC_PY" manage.py \
      interop_onboard --sub "$id" --type "$type" --out "$WORK/tm.json")
  wait "$check" || rc=$?
  cat "$WORK/report.txt"
  if [ "$rc" != 0 ]; then
    echo "FAIL: $1 exited $rc (1: a case failed unexpectedly, or an xpass; 2: setup error)" >&2
    return 1
  fi
}
