#!/usr/bin/env bash
# spid-harness check-rp -> the reference RP (PyPI spid-cie-oidc 1.6.3): our OP (inside
# `check-rp`, profile django-sdk as in oidc-their-rp-to-our-op.sh, whose header lists why) is
# onboarded at their trust anchor; every RP-side case logs mario.rossi in at their RP through
# our pages while our OP answers with that case's fault plan. Their RP's answer counts as a login
# only when it is HTTP 200 showing the user's fiscal number (`TINIT-`): it renders some
# refusals with 200. The pair passes when the run completes (exit 0 or 1, never 2: the honest
# login works before and after the cases) and the lines asserted at the end hold.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
oidc="$here/oidc"
trap 'cleanup; WORK="$WORK" bash "$oidc/stop.sh"' EXIT

bash "$oidc/bootstrap.sh"
set -a; source "$WORK/env"; set +a

"$HARNESS" check-rp --login-url "$RP_ID/authorization?provider={op}&profile=spid" \
  --trust-anchor "$TA_ID" --trust-marks "$WORK/our_op_tm.json" --entity-id-out "$WORK/op_id" \
  --oidc-profile django-sdk --accept-marker TINIT- >"$WORK/report.txt" 2>&1 &
check=$!
for _ in $(seq 1 100); do [ -s "$WORK/op_id" ] && break; sleep 0.1; done
op="$(cat "$WORK/op_id")"
wait_for "$op/.well-known/openid-federation"
(cd "$oidc/project" && DJANGO_SETTINGS_MODULE=oidc_interop.settings_ta "$OIDC_PY" manage.py \
  interop_onboard --sub "$op" --type openid_provider --out "$WORK/our_op_tm.json")
rc=0; wait "$check" || rc=$?
cat "$WORK/report.txt"
if [ "$rc" -ge 2 ]; then
  echo "FAIL: check-rp did not complete (exit $rc)" >&2; exit 1
fi
expect() { grep -Eq "$1" "$WORK/report.txt" || { echo "FAIL: report lacks /$1/" >&2; exit 1; }; }
# Refused as SPID requires.
expect '^id-token-alg-none +reject .* pass$'
expect '^id-token-bad-signature +reject .* pass$'
expect '^authz-response-iss +reject .* pass$'
expect '^userinfo-unencrypted +reject .* pass$'
# Where the reference RP deviates (findings of this run, kept so a change shows).
expect '^acr-l1 +reject .* accept 200 .* FAIL$'           # a SpidL1 ID token is accepted
expect '^id-token-expired +reject .* accept 200 .* FAIL$' # ID token exp not checked
expect '^id-token-nonce +reject .* accept 200 .* FAIL$'   # ID token nonce not checked
echo "OK: check-rp ran against the reference RP; findings above"
