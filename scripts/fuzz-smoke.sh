#!/usr/bin/env bash
# Fuzz smoke: builds the cargo-fuzz targets in fuzz/ and runs each for a short, fixed budget,
# failing on any crash (a panic, an abort or a broken property). Seeds are generated first
# from the catalogues (tests/fuzz_seeds.rs) into fuzz/corpus/<target>/.
#
#   scripts/fuzz-smoke.sh                    # every target, FUZZ_SECONDS (default 12) each
#   FUZZ_SECONDS=300 scripts/fuzz-smoke.sh   # the long run: 5 minutes per target (~36 min
#                                            # on 2 cores, build excluded)
#   scripts/fuzz-smoke.sh sp_validate        # some targets only
#   scripts/fuzz-smoke.sh --build-only       # build the targets, run nothing
#
# A crash leaves its input in fuzz/artifacts/<target>/; replay it with
#   cargo +nightly fuzz run -s none <target> fuzz/artifacts/<target>/<file>
# and minimise it with `cargo +nightly fuzz tmin -s none <target> <file>`. Every crash
# becomes a regression test (the minimised input inline) in the crate it concerns.
#
# Built without a sanitizer (-s none): the code under test is safe Rust over system C
# libraries that are not instrumented anyway, and an unsanitised build runs several times
# more executions in the budget. Needs the nightly toolchain (`cargo +nightly`); installs
# cargo-fuzz if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH="${FUZZ_SECONDS:-12}"
TARGETS=(xml_parse redirect_decode post_decode sp_validate metadata_parse jose_claims federation)
build_only=0
if [ "${1:-}" = "--build-only" ]; then build_only=1; shift; fi
if [ "$#" -gt 0 ]; then TARGETS=("$@"); fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz-smoke: the nightly toolchain is not installed ('cargo +nightly' fails);" >&2
    echo "fuzz-smoke: cargo-fuzz needs it (install it with: rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$build_only" = 1 ]; then
    # Only the targets (CI builds them early, in the background, and runs them later).
    exec cargo +nightly fuzz build -s none
fi

echo "== fuzz seeds"
SPID_FUZZ_CORPUS="$PWD/fuzz/corpus" cargo test -q -p spid-harness --test fuzz_seeds

echo "== fuzz build"
cargo +nightly fuzz build -s none
# The binaries are run directly: `cargo fuzz run` would rebuild first whenever a source file
# changed meanwhile, and the budget is for fuzzing.
bin="fuzz/target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"

status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log="fuzz/artifacts/$t.log"
    start=$(date +%s)
    mkdir -p "fuzz/artifacts/$t"
    if "$bin/$t" -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
        >"$log" 2>&1; then
        execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
        echo "fuzz $t: ok, $execs executions in $(( $(date +%s) - start )) s"
    else
        echo "fuzz $t: CRASH (log: $log)"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -20 || tail -40 "$log"
        status=1
    fi
done
exit $status
