#!/usr/bin/env bash
# check-sp and spid-sp-test against a third-party SP built on python3-saml (the OneLogin toolkit,
# tests/interop/python3-saml/sp.py; AuthnRequest by HTTP-Redirect), side by side:
# 1. check-sp aims our catalogue at it (its expected deviations: fixtures/peers/python3-saml.toml);
# 2. the SP is restarted trusting spid-sp-test's IdP, and spid-sp-test 1.2.18 runs its metadata,
#    AuthnRequest and 111 Response checks against the same SP;
# 3. compare-spid-sp-test puts both tools' verdicts side by side.
# Passes only if check-sp exits 0 (peer file applied) and the comparison exits 0.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
root="$interop_root"
here="$root/tests/interop/python3-saml"
peer="$root/fixtures/peers/python3-saml.toml"
"$py" -c 'import onelogin.saml2.auth' 2>/dev/null ||
  "$py" -m pip install -q --disable-pip-version-check -r "$root/tests/interop/requirements.txt"

sp_port="$(free_port)"
idp_port="$(free_port)"
while [ "$idp_port" = "$sp_port" ]; do idp_port="$(free_port)"; done
sp="http://127.0.0.1:$sp_port"
# The SP gets its own key pair (not the harness's test credentials), its certificate in SPID's
# profile for public SPs, naming its entity ID.
spid_sp_cert "python3-saml interop SP" "$sp/metadata" "$WORK/sp.key.pem" "$WORK/sp.crt.pem"
sp_pid=""
start_sp() { # IdP metadata file the SP trusts
  (cd "$here" && exec "$py" sp.py --port "$sp_port" --key "$WORK/sp.key.pem" --cert "$WORK/sp.crt.pem" \
    --idp-metadata "$1") >>"$WORK/sp.log" 2>&1 &
  sp_pid=$!
  pids+=("$sp_pid")
  wait_for "$sp/metadata"
}
stop_sp() { kill "$sp_pid" 2>/dev/null || true; wait "$sp_pid" 2>/dev/null || true; }

echo "== python3-saml $("$py" -c 'import importlib.metadata as m; print(m.version("python3-saml"))') SP at $sp, trusting our IdP"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --print-metadata >"$WORK/idp-metadata.xml"
start_sp "$WORK/idp-metadata.xml"
check_sp_beside_spid_sp_test check-sp-python3-saml
