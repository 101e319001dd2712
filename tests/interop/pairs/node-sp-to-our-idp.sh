#!/usr/bin/env bash
# Interop pair: our fake SPID IdP <- an SP built on @node-saml/node-saml (tests/interop/node/sp.js).
# 1. mario.rossi (L2) logs in through the Node SP: the probe must end on the SP's 200 page.
# 2. anna.neri (L1 only) asks for L2: our IdP answers ErrorCode nr20 and the Node SP must refuse it.
# Contract (tests/interop/run.sh): HARNESS, WORK set; peers on loopback; stopped via trap; exit 0 = pass.
set -euo pipefail
cd "$(dirname "$0")/../../.."
node_dir=tests/interop/node
: "${HARNESS:?}" "${WORK:?}"

# npm dependencies from the lockfile only, and only when node_modules is missing or stale. The
# stamp holds the lockfile's hash as of the last npm ci: content, not mtimes, so a fresh checkout
# (or a node_modules that was committed by mistake) cannot pass for an up-to-date install.
lock_hash=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
stamp="$node_dir/node_modules/.interop-lock.sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  echo "== npm ci ($node_dir)"
  npm ci --prefix "$node_dir" --no-audit --no-fund
  echo "$lock_hash" >"$stamp"
fi

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
wait_http() { # url pid
  for _ in $(seq 100); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "process for $1 died"; return 1; }
    sleep 0.1
  done
  echo "timeout waiting for $1"
  return 1
}

sp_port=$(free_port)
idp_port=$(free_port)
while [ "$idp_port" = "$sp_port" ]; do idp_port=$(free_port); done
sp_url="http://127.0.0.1:$sp_port"
idp_url="http://127.0.0.1:$idp_port"

echo "== SP key pair (RSA 2048, self-signed, SHA-256) in \$WORK"
openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 \
  -subj "/CN=node-saml interop SP/O=spid-harness TEST ONLY/C=IT" \
  -keyout "$WORK/sp.key.pem" -out "$WORK/sp.crt.pem" 2>/dev/null

echo "== start Node SP at $sp_url (node-saml $(node -p "require('./$node_dir/node_modules/@node-saml/node-saml/package.json').version"))"
SP_PORT=$sp_port SP_KEY="$WORK/sp.key.pem" SP_CERT="$WORK/sp.crt.pem" IDP_METADATA_URL="$idp_url/metadata" \
  node "$node_dir/sp.js" >>"$WORK/sp.log" 2>&1 & # append: show_sp_log truncates it
pids+=($!)
wait_http "$sp_url/metadata" "${pids[-1]}"
curl -sf "$sp_url/metadata" >"$WORK/sp-metadata.xml"

echo "== start our IdP at $idp_url with the Node SP's metadata registered"
# node-saml cannot write Issuer Format/NameQualifier and always writes AllowCreate: the
# IdP runs with --lenient-requests for this peer (our default stays strict).
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --lenient-requests --sp-metadata "$WORK/sp-metadata.xml" >"$WORK/idp.log" 2>&1 &
pids+=($!)
wait_http "$idp_url/metadata" "${pids[-1]}"

show_sp_log() { echo "-- Node SP log:"; sed 's/^/   /' "$WORK/sp.log"; : >"$WORK/sp.log"; }
fail() { echo "FAIL: $*"; show_sp_log; echo "-- IdP log:"; sed 's/^/   /' "$WORK/idp.log"; exit 1; }

echo "== step 1: mario.rossi (SpidL2) must be accepted by the Node SP"
out=$("$HARNESS" probe --login-url "$sp_url/login" --user mario.rossi) || { echo "probe: $out"; fail "mario.rossi was not logged in"; }
echo "probe: $out"
grep -q 'acs: ACCEPTED.*"level":"SpidL2"' "$WORK/sp.log" || fail "the Node SP did not report an L2 login"
show_sp_log

echo "== step 2: anna.neri (SpidL1 only) asks for L2: IdP sends ErrorCode nr20, the Node SP must refuse"
"$HARNESS" probe --login-url "$sp_url/login" --user anna.neri --expect-status 403 ||
  fail "anna.neri did not get the Node SP's 403"
grep -q 'acs: REFUSED.*nr20' "$WORK/sp.log" || fail "the Node SP did not refuse the nr20 error Response"
show_sp_log
echo "OK node-sp-to-our-idp"
