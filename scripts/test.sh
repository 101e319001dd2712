#!/usr/bin/env bash
# The whole test suite (unit, catalogue, end-to-end over loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace --all-targets "$@"
