# Shared by the pair scripts (sourced): free loopback ports, waiting for a peer, and stopping
# every peer a script started, whatever happens.
py="${PYTHON_VENV:?}/bin/python"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # url: poll until it answers 200 (peers need a moment to start)
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "not up: $1" >&2
  return 1
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# spid-sp-test (the official SPID SP checker, PyPI, EUPL-1.2), pinned and installed as
# scripts/spid-sp-test.sh does: a venv of its own ($SPT_VENV, default .venv/spid-sp-test), xmlsec1
# and openssl on PATH. spt_setup sets $spt (its command); spt_idp_metadata OUT writes the
# metadata of its fake IdP (signing with our test IdP key, IDP_CERT_PATH under $WORK), which the
# SP must trust while spid-sp-test runs; spt_run METADATA_URL AUTHN_URL OUT runs its metadata,
# AuthnRequest and Response checks (--extra -tr) into the JSON report OUT (its exit status is
# 1 whenever a check failed, so callers judge the report, not the status).
SPT_VERSION=1.2.18
interop_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
spt_setup() {
  local venv="${SPT_VENV:-$interop_root/.venv/spid-sp-test}"
  command -v xmlsec1 >/dev/null && command -v openssl >/dev/null ||
    SPID_SETUP_XMLSEC1=1 "$interop_root/scripts/setup.sh"
  if [ "$("$venv/bin/spid_sp_test" --version 2>/dev/null)" != "$SPT_VERSION" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "spid-sp-test==$SPT_VERSION"
  fi
  spt="$venv/bin/spid_sp_test"
  export IDP_CERT_PATH="$WORK/spt-idp-keys"
  mkdir -p "$IDP_CERT_PATH"
  cp "$interop_root/certs/idp.key.pem" "$IDP_CERT_PATH/private.key"
  cp "$interop_root/certs/idp.crt.pem" "$IDP_CERT_PATH/public.cert"
}
spt_idp_metadata() { "$spt" --idp-metadata >"$1" 2>>"$WORK/spid-sp-test.log"; }
spt_run() {
  rm -f "$3"
  (cd "$WORK" && "$spt" --metadata-url "$1" --authn-url "$2" --extra -tr -rf json -o "$3" \
    -rhd "$WORK/spid-sp-test-html" >"$WORK/spid-sp-test.out" 2>>"$WORK/spid-sp-test.log") || true
  grep 'Spid QA:' "$WORK/spid-sp-test.out" || true
  [ -s "$3" ] || { echo "spid-sp-test wrote no report; its log:" >&2; tail -n 30 "$WORK/spid-sp-test.log" >&2; return 1; }
}

# spid_sp_cert CN ENTITY_ID KEY CERT: a fresh key pair with a self-signed certificate in the
# profile SPID asks of a public SP's signing certificate (AgID Avviso 29 v3: subject with
# organizationIdentifier, uri = entity ID, C and L; basicConstraints CA:FALSE not critical;
# keyUsage critical digitalSignature+nonRepudiation; certificatePolicies agIDcert and
# spid-publicsector-SP), as a real integrator would have. TEST ONLY.
spid_sp_cert() {
  local cnf="$WORK/spid-sp-cert.cnf"
  cat >"$cnf" <<CNF
oid_section = spid_oids
[spid_oids]
spidUri = 2.5.4.83
[req]
distinguished_name = dn
prompt = no
string_mask = utf8only
[dn]
commonName = $1
organizationName = spid-harness TEST ONLY
organizationIdentifier = PA:IT-c_h501
spidUri = $2
countryName = IT
localityName = Roma
[ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
certificatePolicies = @agid, @pub
[agid]
policyIdentifier = 1.3.76.16.6
userNotice.1 = @agid_notice
[agid_notice]
explicitText = "agIDcert"
[pub]
policyIdentifier = 1.3.76.16.4.2.1
userNotice.1 = @pub_notice
[pub_notice]
explicitText = "cert_SP_Pub"
CNF
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -config "$cnf" -extensions ext \
    -keyout "$3" -out "$4" 2>/dev/null
}

# check_sp_beside_spid_sp_test NAME: the SP (start_sp IDP_METADATA / stop_sp, defined by the
# pair, at $sp) judged by check-sp through our IdP on 127.0.0.1:$idp_port with the peer file
# $peer, then by spid-sp-test with the SP trusting its IdP, then both side by side
# (compare-spid-sp-test). Fails the pair unless check-sp and the comparison both exit 0.
check_sp_beside_spid_sp_test() {
  local name="$1" check=0 compare=0
  echo "== check-sp"
  "$HARNESS" check-sp --metadata "$sp/metadata" --login-url "$sp/login" --idp-listen "127.0.0.1:$idp_port" \
    --lenient-requests --peer "$peer" --report-dir "$WORK/reports" --jobs 4 || check=$?
  stop_sp
  echo "== spid-sp-test $SPT_VERSION against the same SP, now trusting its IdP"
  spt_setup
  spt_idp_metadata "$WORK/spt-idp-metadata.xml"
  start_sp "$WORK/spt-idp-metadata.xml"
  spt_run "$sp/metadata" "$sp/login" "$WORK/spid-sp-test.json"
  stop_sp
  echo "== compare-spid-sp-test"
  "$HARNESS" compare-spid-sp-test --results "$WORK/reports/results.json" \
    --spid-sp-test "$WORK/spid-sp-test.json" --peer "$peer" || compare=$?
  echo "check-sp exit $check, compare-spid-sp-test exit $compare"
  if [ "$check" != 0 ] || [ "$compare" != 0 ]; then
    echo "-- SP log (last lines):"; tail -n 20 "$WORK/sp.log"
    exit 1
  fi
  echo "OK $name"
}
