#!/usr/bin/env bash
# spid-harness check-op --oidc-profile django-sdk-cie -> the reference OP (PyPI spid-cie-oidc
# 1.6.3) in its CIE provider profile (OIDC_OP_PROFILE=cie; settings_op.py also lets it issue
# and renew refresh tokens, see there): the probe RP is onboarded at their trust anchor, logs in
# through their login and consent pages (tests/interop/check-op/django-op-driver.toml) and sends
# the cie-oidc-op catalogue (a CIE reading runs it instead of oidc-op). Where their CIE OP
# deviates is fixtures/peers/spid-cie-oidc-op-cie.toml, each entry with its reason: the pair
# passes only if check-op exits 0 with it (every other case passes, every listed one fails as
# listed, the honest login works before and after the cases). The report is kept in the log
# and in $WORK/reports.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
export OIDC_OP_PROFILE=cie
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$(dirname "$0")/../oidc/federation.sh"

run_onboarded openid_relying_party check-op --op "$OP_ID" --trust-anchor "$TA_ID" \
  --driver "$here/check-op/django-op-driver.toml" --oidc-profile django-sdk-cie \
  --peer "$interop_root/fixtures/peers/spid-cie-oidc-op-cie.toml" --report-dir "$WORK/reports"
echo "OK: check-op (cie-oidc-op) at the reference OP in its CIE profile meets fixtures/peers/spid-cie-oidc-op-cie.toml"
