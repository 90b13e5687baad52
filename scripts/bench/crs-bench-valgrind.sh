# Sourced by the valgrind measures of the WAF engine (waf-instructions.sh, waf-cache-misses.sh):
# the same arguments and binary for both, so their figures are of the same runs.
#
# Reads the caller's arguments [REQUEST_NAME] [N] [BIN] and sets `name` (one of crs_bench's
# requests, default "benign GET"), `n` (default $default_n), `shared` and `bin`: BIN when given (a
# crs_bench binary of another build, to compare), else this tree's, built here. Installs valgrind
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${1:-benign GET}
n=${2:-$default_n}
shared=${PALISADE_SHARED:-$(cd .. && pwd)/shared}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
bin=${3:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p palisade-waf --example crs_bench
  bin=${CARGO_TARGET_DIR:-$PWD/target}/release/examples/crs_bench
fi
