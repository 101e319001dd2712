#!/usr/bin/env bash
# spid-harness check-idp -> the pysaml2 interop IdP, with its peer file
# fixtures/peers/pysaml2-idp.toml. That IdP is a plain SAML IdP: it verifies signed requests and
# signs SPID-shaped Responses at a fixed level, but has no SLO and no attribute list in its
# metadata, answers no SPID ErrorCode, always sends SessionIndex and a fixed attribute set, and
# never answers nr20. check-idp must pass what it does right (every check and login the peer
# file does not list) and fail what it does not (every listed entry is xfail; one that passes is
# an xpass): the pair passes only if check-idp exits 0 with the peer file applied.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
command -v xmlsec1 >/dev/null || SPID_SETUP_XMLSEC1=1 "$here/../../scripts/setup.sh"

openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -subj "/CN=pysaml2 interop IdP/O=spid-harness TEST ONLY/C=IT" \
  -keyout "$WORK/idp.key.pem" -out "$WORK/idp.crt.pem" 2>/dev/null
idp_port="$(free_port)"
sp_port="$(free_port)"
# The IdP reads our SP's metadata at its first request, by which time check-idp serves it.
(cd "$here/pysaml2" && exec "$py" idp.py --port "$idp_port" --key "$WORK/idp.key.pem" --cert "$WORK/idp.crt.pem" \
  --sp-metadata "http://127.0.0.1:$sp_port/metadata") &
pids+=($!)
wait_for "http://127.0.0.1:$idp_port/metadata"
"$HARNESS" check-idp --metadata "http://127.0.0.1:$idp_port/metadata" --sp-listen "127.0.0.1:$sp_port" \
  --driver "$here/check-idp/pysaml2-driver.toml" --peer "$interop_root/fixtures/peers/pysaml2-idp.toml" \
  --report-dir "$WORK/reports"
echo "OK: check-idp passes what the pysaml2 IdP does right and fails exactly what its peer file lists"
