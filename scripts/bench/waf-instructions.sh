#!/usr/bin/env bash
# Instructions and allocations per WAF transaction (CRS v4.28, PL1 and PL4 averaged), counted by
# valgrind: unlike CPU time they do not move with the load of a shared machine, which makes them the
# measure for engine changes. Each figure is (run with N+1 iterations - run with 1) / (2 N), which
# subtracts loading the rules.
#
# Usage: scripts/bench/waf-instructions.sh [REQUEST_NAME] [N] [BIN]   (default "benign GET", 200)
# REQUEST_NAME is one of crs_bench's requests (benign GET, benign form POST, benign JSON POST, ...);
# BIN a crs_bench binary of another build to measure instead of this tree's.
default_n=200
. "$(dirname "$0")/crs-bench-valgrind.sh"
instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$shared/data/crs" "$1" "$name" 2>&1 >/dev/null |
    awk '/Collected/ {print $4}'
}
allocations() {
  valgrind --tool=dhat --dhat-out-file=/dev/null "$bin" "$shared/data/crs" "$1" "$name" 2>&1 >/dev/null |
    awk '/Total:/ {gsub(",", "", $6); print $6}'
}
i1=$(instructions 1) iN=$(instructions $((n + 1)))
a1=$(allocations 1) aN=$(allocations $((n + 1)))
echo "$name: $(( (iN - i1) / (2 * n) )) instructions and $(( (aN - a1) / (2 * n) )) allocations per transaction"
