#!/usr/bin/env bash
# Installs what the tests need, then runs them: formatting, lints, and every test of the workspace
# (unit, integration, end-to-end against the real binary, and the official PSA conformance fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."

# Reference data (PSA fixtures, ...) lives beside the repo, never in it.
export PALISADE_SHARED="${PALISADE_SHARED:-$(cd .. && pwd)/shared}"
if [ ! -d "$PALISADE_SHARED/data" ]; then
  echo "!!! PALISADE_SHARED=$PALISADE_SHARED has no data/: conformance tests will be SKIPPED !!!" >&2
fi

# System packages the build and tests need (C toolchain for crates that compile C code).
need=()
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v git >/dev/null 2>&1 || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
  else
    echo "missing system packages: ${need[*]} (run as root or install them)" >&2
    exit 2
  fi
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install the Rust toolchain (https://rustup.rs)" >&2
  exit 2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
