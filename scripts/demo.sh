#!/usr/bin/env bash
# The main job: fake IdP + reference SP on loopback, the whole catalogue, the report.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# SPID_PROFILE=dev builds a debug binary (SPID_HARNESS: run that binary instead, as CI does
# with the one its tests built); the default is an optimised build.
profile="${SPID_PROFILE:-release}"
harness="$(scripts/harness-bin.sh "$profile")"
# The whole catalogue side by side: SAML (IdP + SP), OIDC RP side and OIDC OP side (trust
# anchor + OP + RP + probe RP), CNS (card issuer + our SP's TLS login), CIE (our IdP's CIE
# profile + SP), CIE OIDC (our OP at our RP, and the CIE probe at our OP, all in the CIE
# profile), counts by side at the end.
exec "$harness" run --report-dir reports "$@"
