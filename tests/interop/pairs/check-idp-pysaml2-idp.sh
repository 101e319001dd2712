#!/usr/bin/env bash
# spid-harness check-idp -> the pysaml2 interop IdP: the report must read true. That IdP is a
# plain SAML IdP: it verifies signed requests and signs SPID-shaped Responses at a fixed level,
# but has no SLO and no attribute list in its metadata, answers no SPID ErrorCode, always sends
# SessionIndex and a fixed attribute set, and never answers nr20. check-idp must say exactly
# that — and pass what it does right.
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
rc=0
"$HARNESS" check-idp --metadata "http://127.0.0.1:$idp_port/metadata" --sp-listen "127.0.0.1:$sp_port" \
  --driver "$here/check-idp/pysaml2-driver.toml" >"$WORK/report.txt" || rc=$?
cat "$WORK/report.txt"
[ "$rc" = 1 ] || { echo "FAIL: check-idp should report failures (exit 1), got $rc" >&2; exit 1; }
# What it does right.
expect 'PASS idp-metadata\.signed'
expect 'PASS idp-metadata\.want-authn-requests-signed'
expect 'PASS idp-metadata\.sso-bindings'
expect 'minimum +L2 .*expect login +got 200 -' # its Response passes every SP rule…
# …and what it does not do.
expect 'FAIL idp-metadata\.single-logout'
expect 'FAIL idp-metadata\.attributes'
expect 'FAIL request\.version\.nr9 .*no error Response'
expect 'FAIL request\.is-passive\.nr15 .*status:Success'
expect 'FAIL idp\.no-session-index-above-l1'
expect 'FAIL idp\.attributes-as-requested'
expect 'FAIL +exact +L3 .*expect nr20 +got 403 assertion\.level\.insufficient'
echo "OK: the check-idp report reads true for the pysaml2 IdP"
