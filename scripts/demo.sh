#!/usr/bin/env bash
# The main job: fake IdP + reference SP on loopback, the whole catalogue, the report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p spid-harness
exec target/release/spid-harness run --report-dir reports "$@"
