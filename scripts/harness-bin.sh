#!/usr/bin/env bash
# Prints the path of the spid-harness binary to run: $SPID_HARNESS when set (CI points it at the
# binary its test step built, so later steps do not compile it again under another feature
# set), else the one `cargo build --profile PROFILE` makes (PROFILE: $1, default dev).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${SPID_HARNESS:-}" ]; then
  [ -x "$SPID_HARNESS" ] || { echo "harness-bin: SPID_HARNESS=$SPID_HARNESS is not an executable" >&2; exit 2; }
  echo "$SPID_HARNESS"
  exit 0
fi
profile="${1:-dev}"
cargo build -q --profile "$profile" -p spid-harness >&2
case "$profile" in
  dev | test) bin_dir=debug ;;
  bench) bin_dir=release ;;
  *) bin_dir="$profile" ;;
esac
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
echo "$target_dir/$bin_dir/spid-harness"
