#!/usr/bin/env bash
# spid-harness check-rp -> the reference RP (PyPI spid-cie-oidc 1.6.3): our OP (inside
# `check-rp`, profile django-sdk as in oidc-their-rp-to-our-op.sh, whose header lists why) is
# onboarded at their trust anchor; every RP-side case logs mario.rossi in at their RP through
# our pages while our OP answers with that case's fault plan. Their RP's answer counts as a login
# only when it is HTTP 200 showing the user's fiscal number (`TINIT-`): it renders some
# refusals with 200. Where the reference RP deviates is fixtures/peers/spid-cie-oidc-rp.toml,
# each entry with its reason: the pair passes only if check-rp exits 0 with it (every other
# case passes, every listed one fails as listed, the honest login works before and after).
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../oidc/federation.sh"

run_onboarded openid_provider check-rp --login-url "$RP_ID/authorization?provider={op}&profile=spid" \
  --trust-anchor "$TA_ID" --oidc-profile django-sdk --accept-marker TINIT- \
  --peer "$interop_root/fixtures/peers/spid-cie-oidc-rp.toml" --report-dir "$WORK/reports"
echo "OK: check-rp at the reference RP meets fixtures/peers/spid-cie-oidc-rp.toml"
