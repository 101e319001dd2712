#!/usr/bin/env bash
# Runs the official SPID conformance checker spid-sp-test (PyPI, EUPL-1.2) against our reference SP:
# SP metadata checks, AuthnRequest checks and the 111 crafted Responses, all with --extra.
# spid-sp-test is installed into a venv and run as a tool; none of its code or templates is
# copied into this repository.
#
# Environment:
#   SPT_VENV      venv to create/reuse              (default .venv/spid-sp-test)
#   SPT_PYTHON    interpreter used to create it     (default python3)
#   SPID_PROFILE  cargo profile for the harness     (default dev)
#   REPORT_DIR    where the reports go              (default reports)
#   SPID_LOG      log level of our SP               (default info)
#   SPT_PRIVATE   1: our SP publishes private-SP metadata and the spid-sp-private profile is checked
#   SPT_CIE       1: our SP in CIE mode (`sp --cie`, CIE SP metadata, trusting spid-sp-test's IdP
#                 as CIE) and the cie-sp-public profile checked (cie-sp-private with SPT_PRIVATE=1);
#                 Response failures that are spid-sp-test's own bugs are listed, with reasons, in
#                 fixtures/peers/spid-sp-test-cie-<public|private>.toml (`[[spid_sp_test]]`, when the
#                 file exists): listed ones are XFAIL, any other failure, or a listed test that
#                 passed (stale entry), fails the run
#   SPT_PEER      that file, explicitly (any profile)
# Extra arguments go to spid_sp_test (e.g. `-pr spid-sp-public`, or `-tn 1 94` for single Response cases).
# Outputs: $REPORT_DIR/spid-sp-test.json (report), spid-sp-test.log (its log),
#          spid-sp-test.sp.log (our SP's log, one line per login with the rule code),
#          spid-sp-test-html/ (our SP's answer to each Response case).
# Exit status: spid-sp-test's own (1 if any check failed), or 1 if it produced no report.
set -euo pipefail
cd "$(dirname "$0")/.."

SPT_VERSION=1.2.18
venv="${SPT_VENV:-.venv/spid-sp-test}"
python="${SPT_PYTHON:-python3}"
profile="${SPID_PROFILE:-dev}"
report_dir="${REPORT_DIR:-reports}"
report="$report_dir/spid-sp-test.json"
log="$report_dir/spid-sp-test.log"
sp_log="$report_dir/spid-sp-test.sp.log"
html_dir="$report_dir/spid-sp-test-html"

apt_install() {
  echo "spid-sp-test: installing $*" >&2
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# System packages: the Rust build's (scripts/setup.sh), plus xmlsec1 and openssl, which
# spid-sp-test shells out to (signing Responses, checking request and metadata signatures).
SPID_SETUP_XMLSEC1=1 scripts/setup.sh
missing=()
command -v xmlsec1 >/dev/null || missing+=(xmlsec1)
command -v openssl >/dev/null || missing+=(openssl)
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# The venv with the pinned checker.
installed="$("$venv/bin/spid_sp_test" --version 2>/dev/null || true)"
if [ "$installed" != "$SPT_VERSION" ]; then
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "spid-sp-test==$SPT_VERSION"
fi
spt="$venv/bin/spid_sp_test"

# Our SP.
harness="$(scripts/harness-bin.sh "$profile")"

tmp="$(mktemp -d)"
sp_pid=""
cleanup() {
  if [ -n "$sp_pid" ]; then
    kill "$sp_pid" 2>/dev/null || true
    wait "$sp_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# The fake IdP signs with our test IdP key (the bundled certificate expired on 2025-03-08).
# IDP_CERT_PATH must hold private.key and public.cert; xmlsec1 reads the PKCS#8 key as is.
mkdir -p "$tmp/idp" "$report_dir"
cp certs/idp.key.pem "$tmp/idp/private.key"
cp certs/idp.crt.pem "$tmp/idp/public.cert"
export IDP_CERT_PATH="$tmp/idp"
"$spt" --idp-metadata >"$tmp/idp-metadata.xml" 2>"$log" || {
  echo "spid-sp-test: --idp-metadata failed:" >&2
  tail -n 20 "$log" >&2
  exit 1
}

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
sp_args=(--idp-metadata "$tmp/idp-metadata.xml")
spt_args=()
kind=public
[ "${SPT_PRIVATE:-0}" = 1 ] && kind=private
if [ "${SPT_CIE:-0}" = 1 ]; then
  sp_args=(--cie --cie-idp "$tmp/idp-metadata.xml")
  spt_args+=(-pr "cie-sp-$kind")
elif [ "$kind" = private ]; then
  spt_args+=(-pr spid-sp-private)
fi
[ "$kind" = private ] && sp_args+=(--private)
SPID_LOG="${SPID_LOG:-info}" "$harness" sp --listen "127.0.0.1:$port" \
  "${sp_args[@]}" >"$sp_log" 2>&1 &
sp_pid=$!
up=0
for _ in $(seq 150); do
  if ! kill -0 "$sp_pid" 2>/dev/null; then
    echo "spid-sp-test: our SP exited early:" >&2
    cat "$sp_log" >&2
    exit 1
  fi
  if "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$base/metadata" 2>/dev/null; then
    up=1
    break
  fi
  sleep 0.2
done
if [ "$up" != 1 ]; then
  echo "spid-sp-test: our SP did not answer $base/metadata" >&2
  cat "$sp_log" >&2
  exit 1
fi

rm -rf "$html_dir" "$report"
echo "spid-sp-test $SPT_VERSION against $base (metadata, AuthnRequest, 111 Responses)" >&2
rc=0
"$spt" --metadata-url "$base/metadata" --authn-url "$base/login" --extra -tr \
  -rf json -o "$report" -rhd "$html_dir" "${spt_args[@]}" "$@" >"$tmp/stdout" 2>>"$log" || rc=$?

grep 'Spid QA:' "$tmp/stdout" || {
  echo "spid-sp-test: no summary line (exit $rc); last lines of $log:" >&2
  tail -n 20 "$log" >&2
}
if [ ! -s "$report" ]; then
  echo "spid-sp-test: no report written" >&2
  exit $((rc == 0 ? 1 : rc))
fi

peer="${SPT_PEER:-}"
if [ -z "$peer" ] && [ "${SPT_CIE:-0}" = 1 ] && [ -f "fixtures/peers/spid-sp-test-cie-$kind.toml" ]; then
  peer="fixtures/peers/spid-sp-test-cie-$kind.toml"
fi

# Failed checks (and warnings), one a line; Response cases with our status and rule code.
# With a peer file: listed Response failures are XFAIL; the exit status says whether anything
# else failed or a listed test passed (0: all explained, 1: not).
explained=0
"$venv/bin/python" - "$report" "$html_dir" "$peer" <<'EOF' || explained=$?
import json, os, re, sys, tomllib
report, html_dir, peer = sys.argv[1], sys.argv[2], sys.argv[3]
listed = {}
if peer:
    with open(peer, "rb") as f:
        listed = {d["test"]: d["reason"] for d in tomllib.load(f).get("spid_sp_test", [])}
unexplained, seen = 0, {}
for target in json.load(open(report)).values():
    for categories in target.values():
        for category, classes in categories.items():
            for checks in classes.values():
                for c in checks:
                    m = re.search(r"Test \[(\d+)\]", str(c.get("test", "")))
                    n = int(m.group(1)) if m and category == "response" else None
                    if n in listed:
                        seen[n] = seen.get(n, False) or c.get("result") == "failure"
                    if c.get("result") not in ("failure", "warning"):
                        continue
                    tid = c.get("test_id") or "-"
                    result = c["result"].upper()
                    if result == "FAILURE":
                        if n in listed:
                            result = "XFAIL"
                        else:
                            unexplained += 1
                    line = f"{result} {category} {tid}: {c.get('test', '')}"
                    value = str(c.get("value") or "")
                    if category == "response":
                        line += f" -> {value}"
                        page = os.path.join(html_dir, f"{tid}_False.html")
                        if os.path.exists(page):
                            m = re.search(r'<code id="rule">([^<]*)</code>', open(page).read())
                            line += f" rule={m.group(1) if m else 'none (accepted)'}"
                    elif value not in ("", "[]", "[[]]"):
                        line += f" [{value[:100]}]"
                    if result == "XFAIL":
                        line += f" (listed in {peer}: {listed[n]})"
                    print(line)
stale = [n for n in listed if seen.get(n) is False]
for n in stale:
    print(f"XPASS response: Test [{n}] passed but {peer} lists it as spid-sp-test's failure: remove the entry")
if peer:
    sys.exit(1 if unexplained or stale else 0)
sys.exit(2)
EOF
if [ -n "$peer" ]; then
  if [ "$explained" = 0 ]; then
    [ "$rc" != 0 ] && echo "spid-sp-test: every failure is listed in $peer" >&2
    rc=0
  else
    rc=1
  fi
fi
echo "report: $report; logs: $log, $sp_log; SP pages: $html_dir/" >&2
exit "$rc"
