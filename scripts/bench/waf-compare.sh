#!/usr/bin/env bash
# Two palisade builds through the WAF proxy, interleaved: for each round and request kind, each
# build serves the issue #5 benchmark's benign requests (CRS at paranoia level 1 with
# modsec-peer.sh's configuration, its nginx behind) while wrk loads it, and the row reports
# req/s, p99 and palisade's own CPU per request, read from /proc. On this shared 2-core host
# req/s moves 10-20% within minutes for every system; CPU per request of builds run back to back
# is the figure that compares them (BENCHMARKS.md, sessions 6 and 7).
#
# Usage: scripts/bench/waf-compare.sh BIN_A BIN_B [ROUNDS [SECONDS]]
#   KINDS="get post" (default), CONNS=32, THREADS=2.
# Build the two binaries first, e.g. `git worktree add /tmp/base REV` and
# `cargo build --release -p palisade-cli` there, then copy target/release/palisade aside.
# Needs: apache2 libapache2-mod-security2 nginx-light wrk (Debian), as scripts/bench/waf.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 2 ] || { sed -n '2,14p' "$0"; exit 2; }
bins=("$1" "$2")
rounds=${3:-3}
secs=${4:-8}
kinds=${KINDS:-get post}
conns=${CONNS:-32}
threads=${THREADS:-2}
for b in "${bins[@]}"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
. scripts/bench/waf-setup.sh
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

measure() { # binary kind -> one table row
  local bin=$1 kind=$2 url="http://127.0.0.1:8090/api/items?id=42&sort=name" extra=()
  [ "$kind" = post ] && { url="http://127.0.0.1:8090/api/items"; extra=(-s "$work/post.lua"); }
  start_palisade "$bin"
  wrk -t"$threads" -c"$conns" -d2s "${headers[@]}" "${extra[@]}" "$url" >/dev/null
  local before after out rps p99
  before=$(cpu_ticks "$pid")
  out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${headers[@]}" "${extra[@]}" "$url")
  after=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  awk -v n="$bin" -v k="$kind" -v r="$rps" -v p="$p99" -v a="$before" -v b="$after" -v s="$secs" -v hz="$hz" \
    'BEGIN { printf "| %s | %s | %.0f | %s | %.0f | %.2f |\n", k, n, r, p, (b - a) / hz * 1e6 / (r * s), (b - a) / hz / s }'
}

echo "| request | build | req/s | p99 | palisade CPU µs per request | palisade cores |"
echo "|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  # Alternate which build goes first, so that a drifting host does not favour one.
  if [ $((round % 2)) -eq 1 ]; then order=(0 1); else order=(1 0); fi
  for kind in $kinds; do
    for i in "${order[@]}"; do
      measure "${bins[$i]}" "$kind"
    done
  done
done
