#!/usr/bin/env bash
# Our fake IdP <- a SPID SP built on pysaml2 (tests/interop/pysaml2/sp.py).
# mario.rossi (L2) must log in (probe exit 0: HTTP 200); anna.neri (L1 only) gets nr20 from our
# IdP and the pysaml2 SP must refuse the login naming it (probe --expect-rule response.status.nr20).
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/../pysaml2" && pwd)"
# pysaml2 signs and verifies XML by shelling out to xmlsec1: install it (idempotent) if missing.
command -v xmlsec1 >/dev/null || SPID_SETUP_XMLSEC1=1 "$here/../../../scripts/setup.sh"

# The pysaml2 SP gets its own key pair, not the harness's test credentials.
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -subj "/CN=pysaml2 interop SP/O=spid-harness TEST ONLY/C=IT" \
  -keyout "$WORK/sp.key.pem" -out "$WORK/sp.crt.pem" 2>/dev/null

idp_port="$(free_port)"
sp_port="$(free_port)"
# The SP needs our IdP metadata and our IdP needs the SP's: print ours first, then start the SP.
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --print-metadata >"$WORK/idp-metadata.xml"
(cd "$here" && exec "$py" sp.py --port "$sp_port" --key "$WORK/sp.key.pem" --cert "$WORK/sp.crt.pem" \
  --idp-metadata "$WORK/idp-metadata.xml") &
pids+=($!)
wait_for "http://127.0.0.1:$sp_port/metadata"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --sp-metadata "http://127.0.0.1:$sp_port/metadata" &
pids+=($!)
wait_for "http://127.0.0.1:$idp_port/metadata"

login="http://127.0.0.1:$sp_port/login"
echo "== mario.rossi (SpidL2): must be accepted"
"$HARNESS" probe --login-url "$login" --user mario.rossi

echo "== anna.neri (SpidL1 only, our IdP answers nr20): must be refused"
# The pysaml2 SP names its reason in X-SPID-Rule: it must be our IdP's nr20.
"$HARNESS" probe --login-url "$login" --user anna.neri --expect-rule response.status.nr20
echo "OK: L2 accepted, L1-only user refused"
