#!/usr/bin/env bash
# check-sp and spid-sp-test against a third-party SP built on @node-saml/passport-saml + express
# (tests/interop/passport-saml/sp.js; AuthnRequest by HTTP-POST), side by side:
# 1. check-sp aims our catalogue at it (its expected deviations: fixtures/peers/passport-saml.toml);
# 2. the SP is restarted trusting spid-sp-test's IdP, and spid-sp-test 1.2.18 runs its metadata,
#    AuthnRequest and 111 Response checks against the same SP;
# 3. compare-spid-sp-test puts both tools' verdicts side by side.
# Passes only if check-sp exits 0 (peer file applied) and the comparison exits 0.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
root="$interop_root"
here="$root/tests/interop/passport-saml"
peer="$root/fixtures/peers/passport-saml.toml"

# npm dependencies from the lockfile only, when node_modules is missing or stale (the stamp holds
# the lockfile's hash as of the last npm ci).
lock_hash=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
stamp="$here/node_modules/.interop-lock.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  echo "== npm ci ($here)"
  npm ci --prefix "$here" --no-audit --no-fund
  echo "$lock_hash" >"$stamp"
fi

sp_port="$(free_port)"
idp_port="$(free_port)"
while [ "$idp_port" = "$sp_port" ]; do idp_port="$(free_port)"; done
sp="http://127.0.0.1:$sp_port"
# The SP gets its own key pair (not the harness's test credentials), its certificate in SPID's
# profile for public SPs, naming its entity ID.
spid_sp_cert "passport-saml interop SP" "$sp/metadata" "$WORK/sp.key.pem" "$WORK/sp.crt.pem"
sp_pid=""
start_sp() { # IdP metadata file the SP trusts
  SP_PORT=$sp_port SP_KEY="$WORK/sp.key.pem" SP_CERT="$WORK/sp.crt.pem" IDP_METADATA="$1" \
    node "$here/sp.js" >>"$WORK/sp.log" 2>&1 &
  sp_pid=$!
  pids+=("$sp_pid")
  wait_for "$sp/metadata"
}
stop_sp() { kill "$sp_pid" 2>/dev/null || true; wait "$sp_pid" 2>/dev/null || true; }

echo "== passport-saml $(node -p "require('$here/node_modules/@node-saml/passport-saml/package.json').version") (node-saml $(node -p "require('$here/node_modules/@node-saml/node-saml/package.json').version")) SP at $sp, trusting our IdP"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --print-metadata >"$WORK/idp-metadata.xml"
start_sp "$WORK/idp-metadata.xml"
check_sp_beside_spid_sp_test check-sp-passport-saml
