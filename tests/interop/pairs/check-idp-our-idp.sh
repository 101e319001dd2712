#!/usr/bin/env bash
# spid-harness check-idp -> our fake IdP: every metadata check, every malformed-request refusal
# and every login of the L1/L2/L3 x Comparison matrix must pass (exit 0).
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
py="$PYTHON_VENV/bin/python"
free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 1 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not up: $1" >&2; return 1; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

idp_port="$(free_port)"
sp_port="$(free_port)"
# The IdP must trust the SP check-idp will start: register its metadata beforehand.
"$HARNESS" sp --listen "127.0.0.1:$sp_port" --print-metadata >"$WORK/sp.xml"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --sp-metadata "$WORK/sp.xml" &
pids+=($!)
wait_for "http://127.0.0.1:$idp_port/metadata"
"$HARNESS" check-idp --metadata "http://127.0.0.1:$idp_port/metadata" --sp-listen "127.0.0.1:$sp_port"
