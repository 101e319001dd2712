#!/usr/bin/env bash
# The reference RP (PyPI spid-cie-oidc 1.6.3) -> our OpenID Provider (spid-harness idp), both in
# THEIR federation: our OP is onboarded at their trust anchor (interop_onboard fetches our
# entity configuration, whose authority_hints already name their TA) and publishes the trust
# mark it issued. Their RP resolves our OP through their TA (automatic registration needs no
# configuration on their side), and logs mario.rossi in through our OP's login, OTP and
# consent pages (tests/interop/oidc/their_rp_login.py); their RP must show the user's claims
# (HTTP 200 on /oidc/rp/echo_attributes with the fiscal_number).
#
# Our OP runs with --oidc-profile django-sdk. The switches of that preset this pair needs, and
# the deviation of the reference implementation each one accommodates:
#   authz_id_token_claims_allowed=true their RP requests claims.id_token (given_name, email),
#                                       which SPID forbids; our OP ignores it instead of
#                                       answering invalid_request
#   trust_mark_id_claim = Either       their RP's trust mark names the mark `trust_mark_type`
#                                       (+ `trust_mark_id`), no `id` claim
#   trust_mark_status_jwt = true       their TA's /trust_mark_status answers a signed JWT
#                                       (`status: "active"`), not JSON {"active": true}
# The rest of the preset shapes what our OP issues (1980 s token lifetimes, access-token aud
# [issuer, userinfo], 403 on bad client auth, SHA-512-hex codes); their RP does not check those.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../oidc/federation.sh"

idp_port="$(free_port)"
op="http://127.0.0.1:$idp_port/oidc/op"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --oidc-profile django-sdk \
  --oidc-trust-anchor "$TA_ID" --oidc-trust-marks "$WORK/our_op_tm.json" \
  --oidc-jwks-out "$WORK/our_op_fed_jwks.json" &
pids+=($!)
wait_for "$op/.well-known/openid-federation"

# Onboard our OP at their TA; the trust mark file is read by our OP at every EC request.
(cd "$oidc/project" && DJANGO_SETTINGS_MODULE=oidc_interop.settings_ta "$OIDC_PY" manage.py \
  interop_onboard --sub "$op" --type openid_provider --out "$WORK/our_op_tm.json")

echo "== their RP logs mario.rossi in at our OP (login, OTP, consent)"
(cd "$oidc" && "$OIDC_PY" their_rp_login.py "$op" mario.rossi password123 123456)
echo "OK: their RP shows the user's claims from our OP"
