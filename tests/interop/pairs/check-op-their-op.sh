#!/usr/bin/env bash
# spid-harness check-op -> the reference OP (PyPI spid-cie-oidc 1.6.3): the probe RP is
# onboarded at their trust anchor, logs in through their login and consent pages
# (tests/interop/check-op/django-op-driver.toml) and sends every OP-side case that applies to
# an external OP. Where the reference OP deviates is fixtures/peers/spid-cie-oidc-op.toml, each
# entry with its reason: the pair passes only if check-op exits 0 with it (every other case
# passes, every listed one fails as listed, the honest login works before and after the cases).
# The report is kept in the log and in $WORK/reports.
set -euo pipefail
: "${HARNESS:?}" "${WORK:?}" "${PYTHON_VENV:?}"
source "$(dirname "$0")/../lib.sh"
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$(dirname "$0")/../oidc/federation.sh"

run_onboarded openid_relying_party check-op --op "$OP_ID" --trust-anchor "$TA_ID" \
  --driver "$here/check-op/django-op-driver.toml" \
  --peer "$interop_root/fixtures/peers/spid-cie-oidc-op.toml" --report-dir "$WORK/reports"
echo "OK: check-op at the reference OP meets fixtures/peers/spid-cie-oidc-op.toml"
