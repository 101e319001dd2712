#!/usr/bin/env bash
# How much faster check-sp is than spid-sp-test against the same SP: ONE process of our
# reference SP trusts both tools' IdPs; spid-sp-test 1.2.18 (metadata, AuthnRequest and its 111
# Responses, --extra) and then check-sp (metadata, AuthnRequest, every SAML case) run against it
# in the same run, each under /usr/bin/time (check-sp CHECK_SP_RUNS times, default 3: its median
# run counts). Prints wall and CPU seconds of each (check-sp's CPU a case too), the SP's CPU
# during each (from /proc) and the ratios (the issue-15 figure: check-sp >= 20x faster).
#
# Needs the spid-sp-test venv that scripts/spid-sp-test.sh sets up (SPT_VENV, default
# .venv/spid-sp-test); release build. CHECK_SP_JOBS: check-sp's --jobs (default 4, its default).
# Exit 0 when both tools ran, whatever the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SPT_VENV:-.venv/spid-sp-test}"
jobs="${CHECK_SP_JOBS:-4}"
spt="$venv/bin/spid_sp_test"
[ -x "$spt" ] || scripts/spid-sp-test.sh -tn 1 >/dev/null 2>&1 || true
[ -x "$spt" ] || { echo "speed: no spid-sp-test venv at $venv (run scripts/spid-sp-test.sh)" >&2; exit 2; }
cargo build -q --release -p spid-harness
harness="${CARGO_TARGET_DIR:-target}/release/spid-harness"

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "${SPEED_KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "${SPEED_KEEP:-}" ] && echo "speed: temporary files in $tmp" >&2
free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# spid-sp-test's IdP signs with our test IdP key (as in scripts/spid-sp-test.sh).
mkdir -p "$tmp/idp"
cp certs/idp.key.pem "$tmp/idp/private.key"
cp certs/idp.crt.pem "$tmp/idp/public.cert"
export IDP_CERT_PATH="$tmp/idp"
"$spt" --idp-metadata >"$tmp/spt-idp.xml" 2>"$tmp/spt.log"

# check-sp's IdP: its metadata as served at --idp-listen.
idp_port="$(free_port)"
"$harness" idp --listen "127.0.0.1:$idp_port" --print-metadata >"$tmp/our-idp.xml" 2>/dev/null &
idp_pid=$!
for _ in $(seq 50); do grep -q '</md:EntityDescriptor>' "$tmp/our-idp.xml" 2>/dev/null && break; sleep 0.1; done
kill "$idp_pid" 2>/dev/null || true
wait "$idp_pid" 2>/dev/null || true

sp_port="$(free_port)"
base="http://127.0.0.1:$sp_port"
SPID_LOG=warn "$harness" sp --listen "127.0.0.1:$sp_port" \
  --idp-metadata "$tmp/spt-idp.xml" --idp-metadata "$tmp/our-idp.xml" >"$tmp/sp.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$base/metadata" 2>/dev/null && break
  sleep 0.1
done

# The SP's CPU seconds so far (user + system, from /proc), to tell each tool's share of the SP.
sp_cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/${pids[0]}/stat"; }

# Two IdPs registered: each tool's login URL names its own.
spt_idp="$(sed -n 's/.*entityID="\([^"]*\)".*/\1/p' "$tmp/spt-idp.xml" | head -n 1)"
sp0="$(sp_cpu)"
/usr/bin/time -f "%e %U %S" -o "$tmp/spt.time" "$spt" --metadata-url "$base/metadata" \
  --authn-url "$base/login?idp=$spt_idp" --extra -tr -rf json -o "$tmp/spt.json" >"$tmp/spt.out" 2>>"$tmp/spt.log" || true
sp1="$(sp_cpu)"
# check-sp's run is short (under a second) and this machine is shared: it runs CHECK_SP_RUNS
# times (default 3) against the same SP process, and its median run is the one compared.
runs="${CHECK_SP_RUNS:-3}"
for r in $(seq "$runs"); do
  /usr/bin/time -f "%e %U %S" -o "$tmp/cs.time.$r" "$harness" check-sp --metadata "$base/metadata" \
    --login-url "$base/login?idp=http://127.0.0.1:$idp_port" --idp-listen "127.0.0.1:$idp_port" \
    --jobs "$jobs" --report-dir "$tmp/cs.$r" >"$tmp/cs.out.$r" 2>&1 || true
done
sp2="$(sp_cpu)"

# /usr/bin/time adds a line first when the command failed: the figures are the last line.
read -r spt_wall spt_user spt_sys < <(tail -n 1 "$tmp/spt.time")
for r in $(seq "$runs"); do echo "$(tail -n 1 "$tmp/cs.time.$r") $r"; done | sort -n >"$tmp/cs.times"
read -r cs_wall cs_user cs_sys median < <(sed -n "$(( (runs + 1) / 2 ))p" "$tmp/cs.times")
walls="$(awk '{printf "%s%.2f", (NR > 1 ? ", " : ""), $1}' "$tmp/cs.times")"
cases="$(sed -n 's/.* \([0-9][0-9]*\) cases;.*/\1/p' "$tmp/cs.out.$median" | tail -n 1)"
grep 'Spid QA:' "$tmp/spt.out" || true
tail -n 2 "$tmp/cs.out.$median" | head -n 1
awk -v sw="$spt_wall" -v su="$spt_user" -v ss="$spt_sys" -v cw="$cs_wall" -v cu="$cs_user" \
  -v cs="$cs_sys" -v n="${cases:-0}" -v j="$jobs" -v p0="$sp0" -v p1="$sp1" -v p2="$sp2" \
  -v runs="$runs" -v walls="$walls" 'BEGIN {
  printf "spid-sp-test: %.2f s wall, %.2f s CPU (111 Responses); our SP meanwhile %.2f s CPU\n", sw, su + ss, p1 - p0
  printf "check-sp --jobs %d, median of %d runs (%s s): %.2f s wall, %.2f s CPU (%d cases, %.2f ms a case); our SP meanwhile %.2f s CPU a run\n", j, runs, walls, cw, cu + cs, n, (n > 0 ? (cu + cs) * 1000 / n : 0), (p2 - p1) / runs
  printf "check-sp is %.1fx faster whole-job (wall), %.1fx per Response case (wall)\n", sw / cw, (sw / 111) / (cw / (n > 0 ? n : 1))
}'
