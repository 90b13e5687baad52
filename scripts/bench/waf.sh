#!/usr/bin/env bash
# WAF proxy benchmark (issue #5): requests per second and p99 latency of a benign GET and a benign
# JSON POST through (a) a plain Apache reverse proxy, (b) Apache + ModSecurity 2.9.7 + CRS v4.28 at
# paranoia level 1, (c) `palisade waf serve` with the same CRS files and ModSecurity configuration,
# all in front of the same nginx backend, measured with wrk in one run. The requests are benign at
# paranoia level 1 (a name in Host, browser headers): no rule matches, nothing is logged.
#
# Usage: scripts/bench/waf.sh [SECONDS]   (default 10 s per measurement, after a 2 s warm-up)
#   PALISADE_BIN=path: measure that binary instead of building one.
#   ROUNDS=N (default 1): measure the three systems N times over, interleaved (plain, ModSecurity,
#   palisade, then again), and report each system's median req/s and the ratios of the medians.
#   On this shared 2-core host one system's figure moves 15-20% from one minute to the next
#   (BENCHMARKS.md, sessions 14-15); interleaved rounds spread that over all three.
# Needs: apache2 libapache2-mod-security2 nginx-light wrk (Debian), a release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${CONNS:-32}
threads=${THREADS:-2}
# PALISADE_BIN=path measures that binary as it is (a build set aside, or one whose release build
# with LTO would take ten minutes to relink after an unrelated change).
if [ -n "${PALISADE_BIN:-}" ]; then
  palisade=$PALISADE_BIN
else
  cargo build --release -q -p palisade-cli
  palisade=${CARGO_TARGET_DIR:-$PWD/target}/release/palisade
fi
. scripts/bench/waf-setup.sh
start_palisade "$palisade"

run() { # name port kind -> "rps p99 non2xx"
  local port=$2 kind=$3 url="http://127.0.0.1:$2/api/items?id=42&sort=name" extra=()
  [ "$kind" = post ] && { url="http://127.0.0.1:$port/api/items"; extra=(-s "$work/post.lua"); }
  # A new connection per request (no keep-alive), as clients without pooling do.
  [ "$kind" = get-close ] && extra=(-H "Connection: close")
  wrk -t"$threads" -c"$conns" -d2s "${headers[@]}" "${extra[@]}" "$url" >/dev/null 2>&1 || true
  local out
  out=$(wrk -t"$threads" -c"$conns" -d"${secs}s" --latency "${headers[@]}" "${extra[@]}" "$url")
  local rps p99 bad
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo "$rps $p99 ${bad:-0}"
}

rounds=${ROUNDS:-1}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '| request | proxy | round | req/s | p99 | non-2xx |\n|---|---|---|---|---|---|\n'
declare -A rps all
for kind in get post get-close; do
  for round in $(seq "$rounds"); do
    for target in plain:8084 modsecurity:8081 palisade:8090; do
      name=${target%%:*} port=${target##*:}
      read -r r p b < <(run "$name" "$port" "$kind")
      all[$kind-$name]="${all[$kind-$name]:-} $r"
      printf '| %s | %s | %s | %s | %s | %s |\n' "$kind" "$name" "$round" "$r" "$p" "$b"
    done
  done
  for name in plain modsecurity palisade; do
    rps[$kind-$name]=$(median <<<"${all[$kind-$name]}")
  done
done
echo
if [ "$rounds" -gt 1 ]; then
  echo "Medians of $rounds rounds (req/s):"
  for kind in get post get-close; do
    echo "$kind: plain ${rps[$kind-plain]}, ModSecurity ${rps[$kind-modsecurity]}, palisade ${rps[$kind-palisade]}"
  done
fi
for kind in get post get-close; do
  awk -v k="$kind" -v p="${rps[$kind-palisade]}" -v m="${rps[$kind-modsecurity]}" -v b="${rps[$kind-plain]}" \
    'BEGIN { printf "%s: palisade / ModSecurity = %.2fx, palisade / plain proxy = %.2fx\n", k, p/m, p/b }'
done
