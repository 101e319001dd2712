#!/usr/bin/env bash
# Our OIDC relying party (spid-harness sp) -> the reference OP (PyPI spid-cie-oidc 1.6.3), both
# in THEIR federation: our RP is onboarded at their trust anchor (interop_onboard fetches our
# entity configuration, whose authority_hints already name their TA) and publishes the trust
# mark it issued. The login goes through their OP's login and consent pages
# (tests/interop/oidc/foreign_rp_login.py); the verdict is our RP's final answer:
#   - SpidL2 login (user/oidcuser): our RP must accept (HTTP 200);
#   - their OP forced to SpidL1 ($WORK/op_force_acr): our RP must refuse with HTTP 403 and
#     X-SPID-Rule oidc.acr.insufficient (foreign_rp_login.py ... 403 RULE exits 0 only then).
#
# Our RP runs with --oidc-profile django-sdk. The switches of that preset this pair needs, and
# the deviation of the reference implementation each one accommodates:
#   trust_mark_id_claim = Either       their trust marks name the mark `trust_mark_type`
#                                       (+ `trust_mark_id`), no `id` claim (SPID rules: `id`)
#   trust_mark_require_exp = false     their trust marks have no `exp` (same as our default)
#   trust_mark_status_jwt = true       /trust_mark_status answers a JWT signed by the TA
#                                       (`status: "active"`), not JSON {"active": true}
#   id_token_require_nbf = false       their ID token has no `nbf`
# (their ID token does carry `jti`, and its array `aud` is just [client_id], which our strict
# single-audience check accepts: the preset's id_token_require_jti / id_token_single_audience
# relaxations are not needed here. Their access token's `aud` [issuer, "/oidc/op/userinfo"] is
# opaque to our RP.)
#   userinfo_require_iss_aud_exp=false their inner userinfo JWS has only `sub` + claims
#   authz_response_iss_required = true they send `iss` in the authorization response (stricter)
# Our RP sends only SpidL2 in acr_values, so their "last acr_values entry wins" does not matter.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../oidc/federation.sh"

rp_port="$(free_port)"
rp="http://127.0.0.1:$rp_port/oidc/rp"
"$HARNESS" sp --listen "127.0.0.1:$rp_port" --oidc-profile django-sdk \
  --oidc-trust-anchor "$TA_ID" --oidc-trust-marks "$WORK/our_rp_tm.json" \
  --oidc-jwks-out "$WORK/our_rp_fed_jwks.json" &
pids+=($!)
wait_for "$rp/.well-known/openid-federation"

# Onboard our RP at their TA; the trust mark file is read by our RP at every EC request.
(cd "$oidc/project" && DJANGO_SETTINGS_MODULE=oidc_interop.settings_ta "$OIDC_PY" manage.py \
  interop_onboard --sub "$rp" --type openid_relying_party --out "$WORK/our_rp_tm.json")

login="$rp/login?op=$OP_ID"
echo "== SpidL2 login at their OP: our RP must accept"
(cd "$oidc" && "$OIDC_PY" foreign_rp_login.py "$login" user oidcuser)

echo "== their OP forced to SpidL1: our RP must refuse with oidc.acr.insufficient"
echo https://www.spid.gov.it/SpidL1 >"$WORK/op_force_acr"
ok=0
(cd "$oidc" && "$OIDC_PY" foreign_rp_login.py "$login" user oidcuser 403 oidc.acr.insufficient) || ok=$?
rm -f "$WORK/op_force_acr"
[ "$ok" = 0 ] || { echo "FAIL: expected our RP's 403 refusal with rule oidc.acr.insufficient" >&2; exit 1; }
echo "OK: L2 accepted, L1 refused (oidc.acr.insufficient)"
