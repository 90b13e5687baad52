#!/usr/bin/env bash
# Posture benchmark: palisade (release build) beside checkov on the same directories, in one run.
# Prints a markdown table of CPU time (user+sys), wall time and peak RSS, and the ratios.
#
# Usage: scripts/bench/posture.sh CHECKOV_BIN DIR...
#   CHECKOV_BIN: checkov 3.3.30 from a venv (python3 -m venv v && v/bin/pip install checkov==3.3.30)
#   DIR: e.g. ../shared/data/psa-fixtures, and a directory of real-world manifests
#        (scripts/bench/assemble-realworld.py builds one from public repositories)
set -euo pipefail
cd "$(dirname "$0")/../.."
checkov=$1
shift
cargo build --release -q -p palisade-cli
palisade=${CARGO_TARGET_DIR:-target}/release/palisade

measure() { # prints "cpu_seconds wall_seconds max_rss_kib"
  local out
  out=$(mktemp)
  /usr/bin/time -f "%U %S %e %M" -o "$out" "$@" >/dev/null 2>&1 || true
  awk '{printf "%.2f %.2f %d\n", $1 + $2, $3, $4}' "$out"
  rm -f "$out"
}

echo "| input | files | MB | tool | CPU s | wall s | peak RSS MB |"
echo "|---|---|---|---|---|---|---|"
for dir in "$@"; do
  files=$(find "$dir" -type f \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) | wc -l)
  mb=$(du -sm "$dir" | cut -f1)
  read -r p_cpu p_wall p_rss < <(measure "$palisade" scan k8s "$dir" --format json -o /dev/null)
  read -r c_cpu c_wall c_rss < <(measure "$checkov" -d "$dir" --framework kubernetes --skip-download -o json --soft-fail)
  printf "| %s | %d | %d | palisade | %s | %s | %.1f |\n" "$dir" "$files" "$mb" "$p_cpu" "$p_wall" "$(echo "$p_rss/1024" | bc -l)"
  printf "| %s | %d | %d | checkov 3.3.30 | %s | %s | %.1f |\n" "$dir" "$files" "$mb" "$c_cpu" "$c_wall" "$(echo "$c_rss/1024" | bc -l)"
  printf "| %s | | | **ratio checkov/palisade** | **%.0f×** | %.0f× | **%.1f×** |\n" "$dir" \
    "$(echo "$c_cpu/($p_cpu+0.005)" | bc -l)" "$(echo "$c_wall/($p_wall+0.005)" | bc -l)" "$(echo "$c_rss/$p_rss" | bc -l)"
done
