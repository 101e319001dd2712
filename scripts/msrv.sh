#!/usr/bin/env bash
# The declared MSRV (rust-version in Cargo.toml) is a toolchain the workspace is checked with:
# when the active rustc is that version, every other CI step was the MSRV build; otherwise
# rustup's toolchain of that version must be installed and `cargo +<msrv> check` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
msrv="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"
[ -n "$msrv" ] || { echo "msrv: no rust-version in Cargo.toml" >&2; exit 1; }
active="$(rustc --version | sed -n 's/^rustc \([0-9]*\.[0-9]*\).*/\1/p')"
if [ "$active" = "$msrv" ]; then
  echo "msrv: the active rustc is $active = rust-version; the build above was the MSRV build"
  exit 0
fi
if rustup toolchain list 2>/dev/null | grep -q "^$msrv"; then
  tc="$(rustup toolchain list | grep "^$msrv" | head -n 1 | cut -d' ' -f1)"
  echo "msrv: cargo +$tc check (rust-version $msrv)"
  exec cargo "+$tc" check -q --workspace --all-targets
fi
echo "msrv: rust-version is $msrv but no such toolchain is installed and rustc is $active;" \
  "install it (rustup toolchain install $msrv) or change rust-version in Cargo.toml" >&2
exit 1
