#!/usr/bin/env bash
# Brings up the reference SPID OIDC federation (PyPI spid-cie-oidc 1.6.3) on
# loopback, offline, plain HTTP: Trust Anchor, OP and RP as three Django
# servers, each with its own settings module and SQLite file in $WORK.
#
# In:  WORK (scratch dir, required); TA_PORT OP_PORT RP_PORT (free ports are
#      picked when unset); OIDC_VENV (default: .venv/oidc-interop in the repo).
# Out: servers running; $WORK/pids (one PID a line; stop.sh stops them);
#      $WORK/env (sourceable: ports, entity ids, OIDC_PY); $WORK/log/*.log;
#      $WORK/tm_op.json, tm_rp.json (trust marks); $WORK/ta_staff_token.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
: "${WORK:?WORK (scratch dir) is required}"
mkdir -p "$WORK/log"
WORK="$(cd "$WORK" && pwd)"
export WORK PYTHONDONTWRITEBYTECODE=1
venv="${OIDC_VENV:-$repo/.venv/oidc-interop}"

# venv: (re)install only when requirements.txt changed since the last install.
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
py="$venv/bin/python"
stamp="$venv/.oidc-interop-requirements"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$py" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

# A previous run in the same WORK: stop its servers, start from fresh databases and keys.
bash "$here/stop.sh"
rm -f "$WORK"/{ta,op,rp}.sqlite3 "$WORK"/tm_*.json "$WORK/ta_staff_token" "$WORK/op_force_acr"

if [ -z "${TA_PORT:-}" ] || [ -z "${OP_PORT:-}" ] || [ -z "${RP_PORT:-}" ]; then
  read -r TA_PORT OP_PORT RP_PORT < <("$py" -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))')
fi
export TA_PORT OP_PORT RP_PORT
TA_ID="http://127.0.0.1:$TA_PORT"
OP_ID="http://127.0.0.1:$OP_PORT/oidc/op"
RP_ID="http://127.0.0.1:$RP_PORT/oidc/rp"
cat >"$WORK/env" <<ENV
export WORK='$WORK' TA_PORT=$TA_PORT OP_PORT=$OP_PORT RP_PORT=$RP_PORT
export TA_ID='$TA_ID' OP_ID='$OP_ID' RP_ID='$RP_ID' OIDC_PY='$py'
ENV

manage() { # role args...
  local role="$1"; shift
  DJANGO_SETTINGS_MODULE="oidc_interop.settings_$role" "$py" "$here/project/manage.py" "$@"
}
fail() {
  echo "bootstrap: $*" >&2
  tail -n 30 "$WORK"/log/*.log >&2 || true
  exit 1
}
# Whatever fails from here on, leave no server behind.
trap 'rc=$?; [ "$rc" = 0 ] || bash "$here/stop.sh"' EXIT
wait_for() { # url: until it answers 200
  for _ in $(seq 1 150); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "not up: $1"
}

# 1. Databases and entities (fresh keys each run); the three roles in parallel.
init_pids=()
for role in ta op rp; do
  manage "$role" interop_init >"$WORK/log/init-$role.log" 2>&1 &
  init_pids+=($!)
done
for i in 0 1 2; do wait "${init_pids[$i]}" || fail "interop_init failed, see $WORK/log/init-*.log"; done
cat "$WORK"/log/init-*.log

# 2. Servers. --noreload: one process per role, so $! is the server's PID.
for role in ta op rp; do
  port_var="${role^^}_PORT"
  DJANGO_SETTINGS_MODULE="oidc_interop.settings_$role" \
    "$py" "$here/project/manage.py" runserver --noreload --skip-checks "127.0.0.1:${!port_var}" \
    >"$WORK/log/$role.log" 2>&1 &
  echo $! >>"$WORK/pids"
done
wait_for "$TA_ID/.well-known/openid-federation"
wait_for "$OP_ID/.well-known/openid-federation"
wait_for "$RP_ID/.well-known/openid-federation"

# 3. Onboarding, as the TA's admin would: the TA fetches each leaf's EC, checks it
#    names the TA in authority_hints, records its federation keys and issues a
#    trust mark, which the leaf then publishes in its own EC.
manage ta interop_onboard --sub "$OP_ID" --type openid_provider --out "$WORK/tm_op.json" >/dev/null ||
  fail "onboarding of the OP failed"
manage ta interop_onboard --sub "$RP_ID" --type openid_relying_party --out "$WORK/tm_rp.json" >/dev/null ||
  fail "onboarding of the RP failed"
manage op interop_set_trust_marks "$WORK/tm_op.json"
manage rp interop_set_trust_marks "$WORK/tm_rp.json"
manage ta interop_staff_token >"$WORK/ta_staff_token"

for url in "$TA_ID" "$OP_ID" "$RP_ID"; do
  wait_for "$url/.well-known/openid-federation"
done
# The TA's /resolve answers only from chains cached in its DB; the staff token
# makes it build them now, so later /resolve calls (no token) find OP and RP.
for sub in "$OP_ID" "$RP_ID"; do
  curl -fsS -o /dev/null -H "Authorization: $(cat "$WORK/ta_staff_token")" \
    "$TA_ID/resolve?sub=$sub&trust_anchor=$TA_ID" || fail "TA cannot resolve $sub"
done
curl -fsS "$OP_ID/.well-known/openid-federation?format=json" | grep -q '"trust_marks"' ||
  fail "OP entity configuration has no trust mark"
echo "bootstrap: TA $TA_ID  OP $OP_ID  RP $RP_ID  (logs in $WORK/log, env in $WORK/env)"
