#!/usr/bin/env bash
# spid-harness check-op -> the reference OP (PyPI spid-cie-oidc 1.6.3): the probe RP is
# onboarded at their trust anchor, logs in through their login and consent pages
# (tests/interop/check-op/django-op-driver.toml) and sends every OP-side case that applies to
# an external OP. The report is kept in the log; the pair passes when the run completes (the
# honest login, token and userinfo work before and after the cases: exit 0 or 1, never 2) and
# the lines asserted at the end hold: what the reference OP refuses, and where it deviates.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$(dirname "$0")/../oidc/federation.sh"

run_onboarded openid_relying_party check-op --op "$OP_ID" --trust-anchor "$TA_ID" \
  --driver "$here/check-op/django-op-driver.toml"
# Refused as SPID requires.
expect '^PASS +authz-request-missing '
expect '^PASS +authz-nonce-31 '
expect '^PASS +authz-pkce-method-plain '
expect '^PASS +token-verifier-wrong '
expect '^PASS +userinfo-tampered-token '
# Where the reference OP deviates (each line is a finding of this run, kept so a change shows).
expect '^FAIL +token-code-reuse +200 '            # a code works twice
expect '^FAIL +token-verifier-42 +200 '           # PKCE length unchecked
expect '^ERROR +authz-redirect-uri-unregistered +0 ' # error sent to it anyway
expect '^FAIL +authz-claims-id-token +200 '       # claims.id_token allowed
echo "OK: check-op ran against the reference OP; findings above"
