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
source "$(dirname "$0")/../oidc/federation.sh"

run_onboarded openid_provider check-rp --login-url "$RP_ID/authorization?provider={op}&profile=spid" \
  --trust-anchor "$TA_ID" --oidc-profile django-sdk --accept-marker TINIT-
# Refused as SPID requires.
expect '^PASS +id-token-alg-none '
expect '^PASS +id-token-bad-signature '
expect '^PASS +authz-response-iss '
expect '^PASS +userinfo-unencrypted '
# Where the reference RP deviates (findings of this run, kept so a change shows).
expect '^FAIL +acr-l1 +200 '           # a SpidL1 ID token is accepted
expect '^FAIL +id-token-expired +200 ' # ID token exp not checked
expect '^FAIL +id-token-nonce +200 '   # ID token nonce not checked
echo "OK: check-rp ran against the reference RP; findings above"
