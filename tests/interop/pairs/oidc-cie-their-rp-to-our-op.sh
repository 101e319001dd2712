#!/usr/bin/env bash
# The reference RP (PyPI spid-cie-oidc 1.6.3) in its CIE relying-party profile -> our OpenID
# Provider in its CIE reading (spid-harness idp --oidc-profile django-sdk-cie), both in THEIR
# federation (our OP onboarded at their trust anchor, as in oidc-their-rp-to-our-op.sh).
# Their RP runs with OIDC_RP_PROFILE=cie (settings_rp.py: RP_DEFAULT_PROVIDER_PROFILES =
# "cie", so its callback validates the answer with AuthenticationResponseCie, which requires
# `iss`) and logs in through its CIE button (`&profile=cie`: claims asked in id_token
# (family_name, given_name, essential) and userinfo, CIE_REQUESTED_CLAIMS) with
# `&scope=openid profile email` (scopes only CIE defines). mario.rossi goes through our OP's
# login, OTP and consent pages (tests/interop/oidc/their_rp_login.py); the pair passes only if
#   - their RP shows the user's claims (HTTP 200 on /oidc/rp/echo_attributes with the
#     fiscal_number), and
#   - the login their RP recorded (manage.py interop_tokens) was asked with the CIE scopes and
#     carries an ID token from our OP with given_name/family_name in it (CIE: claims in the ID
#     token as well as userinfo; SPID would refuse both the scopes and claims.id_token).
#
# Our OP runs with --oidc-profile django-sdk-cie (Profile::cie() relaxed for the reference
# implementation; oidc-cie-our-rp-to-their-op.sh lists every switch and its source). The
# switches this pair needs, for deviations of their RP and TA (site-packages/spid_cie_oidc/):
#   trust_mark_id_claim = Either        their RP's trust mark names the mark `trust_mark_type`
#                                        (+ `trust_mark_id`), no `id` (authority/models.py);
#                                        with the strict cie preset our OP refuses their RP:
#                                        "client not trusted: ... trust mark has no identifier"
#   trust_mark_status_jwt = true        their TA's /trust_mark_status answers a signed JWT
#                                        (authority/views.py trust_mark_status)
# The others shape only what our RP accepts; what our OP issues stays CIE-strict (nbf,
# userinfo iss/aud/exp), and their RP declares no id_token_encrypted_response_alg.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
export OIDC_RP_PROFILE=cie
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../oidc/federation.sh"

idp_port="$(free_port)"
op="http://127.0.0.1:$idp_port/oidc/op"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --oidc-profile django-sdk-cie \
  --oidc-trust-anchor "$TA_ID" --oidc-trust-marks "$WORK/our_op_tm.json" \
  --oidc-jwks-out "$WORK/our_op_fed_jwks.json" &
pids+=($!)
wait_for "$op/.well-known/openid-federation"

m() { (cd "$oidc/project" && DJANGO_SETTINGS_MODULE="oidc_interop.settings_$1" "$OIDC_PY" manage.py "${@:2}"); }
# Onboard our OP at their TA; the trust mark file is read by our OP at every EC request.
m ta interop_onboard --sub "$op" --type openid_provider --out "$WORK/our_op_tm.json" >/dev/null

echo "== their CIE RP logs mario.rossi in at our CIE OP (login, OTP, consent)"
(cd "$oidc" && "$OIDC_PY" their_rp_login.py "$op" mario.rossi password123 123456 cie "openid profile email")

echo "== the login their RP recorded: CIE scopes asked, CIE claims in our ID token"
m rp interop_tokens >"$WORK/their_rp_tokens.json"
"$OIDC_PY" - "$WORK/their_rp_tokens.json" "$op" <<'PY'
import json, sys
t, op = json.load(open(sys.argv[1])), sys.argv[2]
req, idt = t["request"], t["id_token"]
checks = {
    "the login was at our OP": t["op"] == op and idt.get("iss") == op,
    "their RP asked scope profile and email": {"openid", "profile", "email"} <= set(req["scope"].split()),
    "their RP asked claims in the ID token": "given_name" in req.get("claims", {}).get("id_token", {}),
    "our ID token carries given_name and family_name":
        (idt.get("given_name"), idt.get("family_name")) == ("Mario", "Rossi"),
}
for what, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + what)
print("our ID token claims:", sorted(idt))
sys.exit(0 if all(checks.values()) else 1)
PY
echo "OK: their CIE RP shows the user's claims from our CIE OP, with the CIE claims in the ID token"
