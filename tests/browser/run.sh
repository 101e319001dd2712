#!/usr/bin/env bash
# Real-browser test: Debian's Chromium logs in through the fake IdP into the reference SP.
# Installs Chromium (apt) and playwright-core (npm ci, from the lockfile) when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
[ -d tests/browser/node_modules/playwright-core ] || npm ci --prefix tests/browser --no-audit --no-fund -q
profile="${SPID_PROFILE:-dev}"
harness="$(scripts/harness-bin.sh "$profile")"
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
idp="127.0.0.1:$(port)"
sp="127.0.0.1:$(port)"
"$harness" idp --listen "$idp" --demo-sp "$sp" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS -o /dev/null "http://$sp/metadata" 2>/dev/null && break; sleep 0.1; done
node tests/browser/login.mjs "http://$sp"
