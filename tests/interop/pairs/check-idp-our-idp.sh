#!/usr/bin/env bash
# spid-harness check-idp -> our fake IdP: every metadata check, every malformed-request refusal
# and every login of the L1/L2/L3 x Comparison matrix must pass (exit 0).
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"

idp_port="$(free_port)"
sp_port="$(free_port)"
# The IdP must trust the SP check-idp will start: register its metadata beforehand.
"$HARNESS" sp --listen "127.0.0.1:$sp_port" --print-metadata >"$WORK/sp.xml"
"$HARNESS" idp --listen "127.0.0.1:$idp_port" --sp-metadata "$WORK/sp.xml" &
pids+=($!)
wait_for "http://127.0.0.1:$idp_port/metadata"
"$HARNESS" check-idp --metadata "http://127.0.0.1:$idp_port/metadata" --sp-listen "127.0.0.1:$sp_port"
