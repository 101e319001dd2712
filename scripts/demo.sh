#!/usr/bin/env bash
# The main job: fake IdP + reference SP on loopback, the whole catalogue, the report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# SPID_PROFILE=dev reuses the test build (CI); the default is an optimised build.
profile="${SPID_PROFILE:-release}"
cargo build -q --profile "$profile" -p spid-harness
case "$profile" in dev | test) bin_dir=debug ;; *) bin_dir="$profile" ;; esac
harness="${CARGO_TARGET_DIR:-target}/$bin_dir/spid-harness"
# The SAML catalogue (IdP + SP), then the OIDC catalogue (trust anchor + OP + RP).
rc=0
"$harness" run --report-dir reports "$@" || rc=$?
"$harness" run-oidc --report-dir reports/oidc || rc=$((rc > 0 ? rc : $?))
exit "$rc"
