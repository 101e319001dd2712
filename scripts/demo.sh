#!/usr/bin/env bash
# The main job: fake IdP + reference SP on loopback, the whole catalogue, the report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# SPID_PROFILE=dev reuses the test build (CI); the default is an optimised build.
profile="${SPID_PROFILE:-release}"
exec cargo run -q --profile "$profile" -p spid-harness -- run --report-dir reports "$@"
