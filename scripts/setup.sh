#!/usr/bin/env bash
# Installs the system packages the build and the tests need, only when something is missing
# (idempotent): samael's xmlsec feature (libxml2, libxmlsec1, OpenSSL headers, libclang for
# bindgen); the OASIS SAML 2.0 and W3C XML-DSig schemas check-sp validates against
# (opensaml-schemas, xmltooling-schemas); xmlsec1, the independent verifier of the isolation test;
# valgrind, whose callgrind counts the instructions of the hot paths (scripts/callgrind-bench.sh).
set -euo pipefail
pkgs=(pkg-config libssl-dev libxml2-dev libxmlsec1-dev libclang-dev opensaml-schemas xmltooling-schemas xmlsec1 valgrind)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null || true
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
