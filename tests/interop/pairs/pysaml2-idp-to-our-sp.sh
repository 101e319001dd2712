#!/usr/bin/env bash
# Our reference SP <- a SPID IdP built on pysaml2 (tests/interop/pysaml2/idp.py).
# An SpidL2 assertion must be accepted (probe exit 0: HTTP 200); with the IdP asserting SpidL1 our
# SP must refuse it with rule assertion.level.insufficient (probe --expect-rule exit 0).
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/../pysaml2" && pwd)"
# pysaml2 signs and verifies XML by shelling out to xmlsec1: install it (idempotent) if missing.
command -v xmlsec1 >/dev/null || SPID_SETUP_XMLSEC1=1 "$here/../../../scripts/setup.sh"

# The pysaml2 IdP gets its own key pair, not the harness's test credentials.
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -subj "/CN=pysaml2 interop IdP/O=spid-harness TEST ONLY/C=IT" \
  -keyout "$WORK/idp.key.pem" -out "$WORK/idp.crt.pem" 2>/dev/null

idp_port="$(free_port)"
sp_port="$(free_port)"
idp="http://127.0.0.1:$idp_port"
idp_entity="$idp/metadata"
# The IdP serves its metadata at once and reads our SP's metadata at its first SSO request, so
# our SP can be started afterwards with the IdP metadata URL.
(cd "$here" && exec "$py" idp.py --port "$idp_port" --key "$WORK/idp.key.pem" --cert "$WORK/idp.crt.pem" \
  --sp-metadata "http://127.0.0.1:$sp_port/metadata") &
pids+=($!)
wait_for "$idp/metadata"
"$HARNESS" sp --listen "127.0.0.1:$sp_port" --idp-metadata "$idp/metadata" &
pids+=($!)
wait_for "http://127.0.0.1:$sp_port/metadata"

login="http://127.0.0.1:$sp_port/login?idp=$idp_entity"
echo "== pysaml2 IdP asserts SpidL2: must be accepted"
"$HARNESS" probe --login-url "$login"

echo "== pysaml2 IdP asserts SpidL1: must be refused with assertion.level.insufficient"
curl -fsS "$idp/level?set=https://www.spid.gov.it/SpidL1"
"$HARNESS" probe --login-url "$login" --expect-rule assertion.level.insufficient
echo "OK: SpidL2 accepted, SpidL1 refused (assertion.level.insufficient)"
