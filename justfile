# Recipes mirror the scripts, so `just` is optional.

# The main job: IdP + SP on loopback, whole catalogue, report.
demo *ARGS:
    scripts/demo.sh {{ARGS}}

# The whole test suite.
test *ARGS:
    scripts/test.sh {{ARGS}}

# What CI runs.
ci:
    .ci/run

# The catalogue.
list:
    cargo run -q -p spid-harness -- list

# Regenerate the test-only keys and certificates.
certs:
    cargo run -q -p spid-harness -- certs --out certs

# Regenerate docs/cases.md from the catalogues.
cases:
    cargo run -q -p spid-harness -- cases > docs/cases.md

# Regenerate docs/rules.md from the rule table.
rules:
    cargo run -q -p spid-harness -- rules > docs/rules.md

# The official spid-sp-test against our SP (SPT_PRIVATE=1 for the private profile).
spid-sp-test *ARGS:
    scripts/spid-sp-test.sh {{ARGS}}

# The interop pairs (pysaml2, node-saml), one PASS/FAIL line each.
interop:
    tests/interop/run.sh

# Throughput of the hot paths, as ratios from one run.
bench:
    cargo run -q --release -p spid-harness -- bench --iterations 500

# A real Chromium logs in through the fake IdP's pages into our SP.
browser:
    tests/browser/run.sh
