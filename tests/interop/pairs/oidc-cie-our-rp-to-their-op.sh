#!/usr/bin/env bash
# Our OIDC relying party in its CIE reading (spid-harness sp --oidc-profile django-sdk-cie) ->
# the reference OP (PyPI spid-cie-oidc 1.6.3) in its CIE provider profile, both in THEIR
# federation (our RP onboarded at their trust anchor, as in oidc-our-rp-to-their-op.sh).
# Their OP runs the CIE profile with OIDC_OP_PROFILE=cie (settings_op.py sets both names the
# package reads: OIDCFED_PROVIDER_PROFILE and OIDCFED_DEFAULT_PROVIDER_PROFILE): the CIE
# request schema (AuthenticationRequestCie: scopes profile/email, CLAIMS_CIE with id_token),
# the CIE OP metadata schema (OPMetadataCie) and the CIE ID-token claims. Each login goes
# through their login and consent pages (tests/interop/oidc/foreign_rp_login.py):
#   - SpidL2 login (user/oidcuser): our RP must accept (HTTP 200 showing the fiscal number
#     and the name); their OP's record of it (manage.py interop_op_session) must show the CIE
#     profile, the request our RP sent (scope `openid profile email`, claims asked in
#     id_token and userinfo) and an ID token carrying given_name/family_name;
#   - the user declines at their consent page ("DO NOT AGREE"): their OP redirects
#     `error=invalid_request` WITHOUT `iss`; CIE requires `iss` on error responses too
#     (RFC 9207; AuthenticationErrorResponseCie, their own schema), so our RP must refuse
#     with 403 X-SPID-Rule oidc.error-response.iss-missing;
#   - their OP forced to SpidL1 ($WORK/op_force_acr): 403 X-SPID-Rule oidc.acr.insufficient.
#
# Our RP runs with --oidc-profile django-sdk-cie = Profile::cie() with these switches relaxed,
# each for a deviation of the reference implementation (paths in site-packages/spid_cie_oidc/):
#   trust_mark_id_claim = Either        their trust marks name the mark `trust_mark_type`
#                                        (+ `trust_mark_id`), no `id` (authority/models.py,
#                                        "Draft 48: trust_mark_type"); the strict cie preset
#                                        refuses their OP: oidc.op.untrusted "trust mark has no
#                                        identifier"
#   trust_mark_status_jwt = true        /trust_mark_status answers a JWT signed by the TA
#                                        (`status: "active"`; authority/views.py
#                                        trust_mark_status), not JSON {"active": true}
#   id_token_require_nbf = false        their ID token has exp/iat, no `nbf`
#                                        (provider/views/__init__.py get_jwt_common_data)
#   userinfo_require_iss_aud_exp=false  the inner userinfo JWS holds only `sub` + the claims
#                                        (provider/views/userinfo_endpoint.py)
#   id_token_encrypted_on_request=false their OP never encrypts the ID token, whatever the RP
#                                        declares (provider/views/__init__.py
#                                        get_iss_token_data: create_jws only), so our RP must
#                                        not declare id_token_encrypted_response_alg
# Kept strict: authz_error_iss_required (the decline case above shows their error redirects
# lack `iss`: provider/views/consent_page_view.py oidc_provider_not_consent, and every
# redirect_response_data(error=...) in provider/views/authz_request_view.py).
# Seen and harmless to this pair: their CIE ID-token allow-list names the fiscal number
# `fiscal_number` (provider/settings.py OIDCFED_PROVIDER_ATTRIBUTES_CIE_MAP) while their CIE
# metadata schema names it `https://attributes.eid.gov.it/fiscal_number`
# (entity/schemas/op_metadata.py ClaimsSupported): asked in claims.id_token by its URI it is
# silently left out of the ID token and arrives through userinfo only. The `profile`/`email`
# scopes release nothing by themselves: only the claims parameter does.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
export OIDC_OP_PROFILE=cie
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../oidc/federation.sh"

rp_port="$(free_port)"
rp="http://127.0.0.1:$rp_port/oidc/rp"
"$HARNESS" sp --listen "127.0.0.1:$rp_port" --oidc-profile django-sdk-cie \
  --oidc-trust-anchor "$TA_ID" --oidc-trust-marks "$WORK/our_rp_tm.json" \
  --oidc-jwks-out "$WORK/our_rp_fed_jwks.json" &
pids+=($!)
wait_for "$rp/.well-known/openid-federation"

m() { (cd "$oidc/project" && DJANGO_SETTINGS_MODULE="oidc_interop.settings_$1" "$OIDC_PY" manage.py "${@:2}"); }
# Onboard our RP at their TA; the trust mark file is read by our RP at every EC request.
m ta interop_onboard --sub "$rp" --type openid_relying_party --out "$WORK/our_rp_tm.json" >/dev/null

login="$rp/login?op=$OP_ID"
echo "== SpidL2 login at their CIE OP: our RP must accept and show the claims"
(cd "$oidc" && "$OIDC_PY" foreign_rp_login.py --expect TINIT-RSSMRA80A01H501U --expect Mario \
  "$login" user oidcuser)

echo "== their OP's record of that login: CIE profile, CIE request, claims in the ID token"
m op interop_op_session >"$WORK/op_session.json"
"$OIDC_PY" - "$WORK/op_session.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
req, idt = s["request"], s["id_token"] or {}
scope = req["scope"].split() if isinstance(req["scope"], str) else req["scope"]
checks = {
    "their OP runs the cie provider profile": s["profile"] == "cie",
    "our RP asked scope profile and email": {"openid", "profile", "email"} <= set(scope),
    "our RP asked claims in the ID token": "given_name" in req.get("claims", {}).get("id_token", {}),
    "their ID token carries given_name and family_name":
        (idt.get("given_name"), idt.get("family_name")) == ("Mario", "Rossi"),
}
for what, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + what)
print("their ID token claims:", sorted(idt))
sys.exit(0 if all(checks.values()) else 1)
PY

echo "== the user declines consent: their error redirect has no iss, our RP must refuse"
(cd "$oidc" && "$OIDC_PY" foreign_rp_login.py --decline "$login" user oidcuser \
  403 oidc.error-response.iss-missing) ||
  { echo "FAIL: expected our RP's 403 refusal with rule oidc.error-response.iss-missing" >&2; exit 1; }

echo "== their OP forced to SpidL1: our RP must refuse with oidc.acr.insufficient"
echo https://www.spid.gov.it/SpidL1 >"$WORK/op_force_acr"
ok=0
(cd "$oidc" && "$OIDC_PY" foreign_rp_login.py "$login" user oidcuser 403 oidc.acr.insufficient) || ok=$?
rm -f "$WORK/op_force_acr"
[ "$ok" = 0 ] || { echo "FAIL: expected our RP's 403 refusal with rule oidc.acr.insufficient" >&2; exit 1; }
echo "OK: CIE login accepted with CIE claims, iss-less error response refused, L1 refused"
