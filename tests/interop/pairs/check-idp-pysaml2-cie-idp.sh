#!/usr/bin/env bash
# spid-harness check-idp --profile cie -> the pysaml2 interop IdP configured as a CIE ID IdP
# (tests/interop/pysaml2/idp.py --profile cie: the CIE entityID and Shibboleth SSO paths,
# unsigned metadata, the eIDAS minimum set), with its peer file
# fixtures/peers/pysaml2-cie-idp.toml. pysaml2 is a plain SAML IdP: it enforces none of the CIE
# request rules, keeps Format on the Response Issuer and asserts a fixed level. check-idp must
# pass what it does right and fail exactly what the peer file lists (a listed entry that passes is
# an xpass): the pair passes only if check-idp exits 0 with the peer file applied.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
command -v xmlsec1 >/dev/null || SPID_SETUP_XMLSEC1=1 "$here/../../scripts/setup.sh"

openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -subj "/CN=pysaml2 CIE interop IdP/O=spid-harness TEST ONLY/C=IT" \
  -keyout "$WORK/idp.key.pem" -out "$WORK/idp.crt.pem" 2>/dev/null
idp_port="$(free_port)"
sp_port="$(free_port)"
# The IdP reads our SP's metadata at its first request, by which time check-idp serves it.
(cd "$here/pysaml2" && exec "$py" idp.py --profile cie --port "$idp_port" --key "$WORK/idp.key.pem" \
  --cert "$WORK/idp.crt.pem" --sp-metadata "http://127.0.0.1:$sp_port/metadata") &
pids+=($!)
wait_for "http://127.0.0.1:$idp_port/idp/shibboleth"
"$HARNESS" check-idp --profile cie --metadata "http://127.0.0.1:$idp_port/idp/shibboleth" \
  --sp-listen "127.0.0.1:$sp_port" --driver "$here/check-idp/pysaml2-cie-driver.toml" \
  --peer "$interop_root/fixtures/peers/pysaml2-cie-idp.toml" --report-dir "$WORK/reports"
grep -q 'name="request.cie.scoping.nr8"' "$WORK/reports/junit.xml"
echo "OK: check-idp --profile cie passes what the CIE-configured pysaml2 IdP does right and fails exactly what its peer file lists"
