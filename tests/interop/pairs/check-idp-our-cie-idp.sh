#!/usr/bin/env bash
# spid-harness check-idp --profile cie -> our fake IdP in its CIE profile, in each CIE ID
# environment shape (production, preproduction, collaudo): every CIE metadata check, every CIE
# refusal probe and every CIE login must pass (exit 0), and junit.xml must list the checks.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"

for env in production preproduction collaudo; do
  echo "== CIE environment $env"
  idp_port="$(free_port)"
  sp_port="$(free_port)"
  # The IdP must trust the CIE SP check-idp will start: register its metadata beforehand.
  "$HARNESS" sp --cie --listen "127.0.0.1:$sp_port" --print-metadata >"$WORK/sp-$env.xml"
  "$HARNESS" idp --profile cie --cie-env "$env" --listen "127.0.0.1:$idp_port" --sp-metadata "$WORK/sp-$env.xml" &
  pid=$!
  pids+=("$pid")
  wait_for "http://127.0.0.1:$idp_port/idp/shibboleth"
  "$HARNESS" check-idp --profile cie --metadata "http://127.0.0.1:$idp_port/idp/shibboleth" \
    --sp-listen "127.0.0.1:$sp_port" --report-dir "$WORK/reports-$env"
  grep -q 'name="idp-metadata.cie.entity-id"' "$WORK/reports-$env/junit.xml"
  grep -q "/idp/profile/SAML2/POST/SSO ($env)\"" "$WORK/reports-$env/results.json" ||
    { echo "the entityID was not read as $env"; exit 1; }
  kill "$pid"
done
echo "OK: our CIE IdP passes check-idp --profile cie in all three environments"
