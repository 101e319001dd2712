#!/usr/bin/env bash
# spid-harness check-rp -> the reference RP (PyPI spid-cie-oidc 1.6.3) in its CIE relying-party
# profile: their RP runs with OIDC_RP_PROFILE=cie (settings_rp.py: its callback validates the
# answer as CIE) and logs in through its CIE button (`&profile=cie`, CIE scopes
# `openid profile email`), as in oidc-cie-their-rp-to-our-op.sh, whose header lists why our OP
# needs the preset django-sdk-cie there. `check-rp --oidc-profile django-sdk-cie` runs the
# cie-oidc-rp catalogue: our OP (onboarded at their trust anchor) answers each case's fault plan
# while mario.rossi logs in at their RP through our pages. A login counts only as HTTP 200
# showing the fiscal number (`TINIT-`). Where their CIE RP deviates is
# fixtures/peers/spid-cie-oidc-rp-cie.toml, each entry with its reason: the pair passes only if
# check-rp exits 0 with it (every other case passes, every listed one fails as listed, the
# honest login works before and after).
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
export OIDC_RP_PROFILE=cie
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../oidc/federation.sh"

run_onboarded openid_provider check-rp \
  --login-url "$RP_ID/authorization?provider={op}&profile=cie&scope=openid%20profile%20email" \
  --trust-anchor "$TA_ID" --oidc-profile django-sdk-cie --accept-marker TINIT- \
  --peer "$interop_root/fixtures/peers/spid-cie-oidc-rp-cie.toml" --report-dir "$WORK/reports"
echo "OK: check-rp at the reference RP in its CIE profile meets fixtures/peers/spid-cie-oidc-rp-cie.toml"
