#!/usr/bin/env bash
# Cache misses per WAF transaction with the rule set cold, as a busy proxy runs it: crs_bench
# with COLD=2 writes over 2 MB before each transaction, and cachegrind simulates this machine's
# caches (32 KB L1, 1 MB per-core L2 as the last level). Deterministic where the CPU time of a
# cold run moves 20% with the host's load (design note 23). Each figure is (run with 3N
# iterations - run with N) / 2N, which subtracts loading the rules; the misses of crs_bench's own
# writes are left out.
#
# Usage: scripts/bench/waf-cache-misses.sh [REQUEST_NAME] [N] [BIN]
#   REQUEST_NAME: one of crs_bench's requests (default "benign GET"); N: default 100;
#   BIN: a crs_bench binary to measure instead of building this tree's (to compare builds).
default_n=100
. "$(dirname "$0")/crs-bench-valgrind.sh"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for iterations in "$n" $((3 * n)); do
  COLD=2 PARANOIA=1 valgrind --tool=cachegrind --cache-sim=yes --I1=32768,8,64 --D1=32768,8,64 \
    --LL=1048576,16,64 --cachegrind-out-file="$out/$iterations" \
    "$bin" "$shared/data/crs" "$iterations" "$name" >/dev/null 2>&1
done
cg_diff "$out/$n" "$out/$((3 * n))" > "$out/delta" 2>/dev/null
cg_annotate --show=Ir,ILmr,DLmr --sort=DLmr "$out/delta" 2>/dev/null |
  awk -v n="$n" -v name="$name" '
    function num(s) { gsub(",", "", s); return s + 0 }
    # Columns: Ir, ILmr, DLmr, each followed by a percentage in parentheses (dropped here).
    { line = $0; gsub(/\([^)]*\)/, "", line); split(line, f) }
    /PROGRAM TOTALS/ { ir = num(f[1]); il = num(f[2]); dl = num(f[3]) }
    /crs_bench::measure/ && !own { oir = num(f[1]); oil = num(f[2]); odl = num(f[3]); own = 1 }
    END {
      # crs_bench writes over the caches in its function `measure`; inlined elsewhere, its misses
      # could not be told from the engine'"'"'s.
      if (!own) { print "crs_bench::measure not found in the profile (inlined?)" > "/dev/stderr"; exit 1 }
      d = 2 * n
      printf "%s: %d instructions, %d last-level instruction misses, %d last-level data misses per transaction\n",
        name, (ir - oir) / d, (il - oil) / d, (dl - odl) / d
    }'
