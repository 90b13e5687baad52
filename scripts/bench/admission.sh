#!/usr/bin/env bash
# Admission webhook benchmark: direct HTTPS load with real AdmissionReview bodies at fixed request
# rates, with 1, 10 and all 49 Gatekeeper library policies (plus the posture catalogue). Reports
# p50, p99, achieved rate and the webhook's CPU use as a markdown table.
#
# Usage: scripts/bench/admission.sh [SECONDS_PER_RUN]   (default 10)
#   LOAD_TOOL=oha (default) or hey.
#   DECISION_CACHE=N: the webhook's --decision-cache (default 4096; 0 evaluates every
#   constraint of every request). The load tools send one body over and over, so with the cache
#   every decision but the first is remembered: the figure for a ReplicaSet's identical Pods.
#   DECISION_CACHE=0 is the figure for Pods that are all different (review_bench VARY=spec).
#
# oha (crates.io; installed into target/bench-tools on first use, about 5 minutes) sends at an even
# pace across its connections and measures latency from when each request was due
# (--latency-correction), as an open-loop generator should. hey's -q is per worker: its ten
# workers tick together and send in bursts of ten, which queue behind two cores and inflate p50
# and p99 several times over (BENCHMARKS.md has both). hey puts "host:port" in the TLS SNI, which
# RFC 6066 forbids and rustls rejects; `-host localhost` makes it send a plain name.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
shared=${PALISADE_SHARED:-$(cd .. && pwd)/shared}
library="$shared/data/gatekeeper-library/library"
tool=${LOAD_TOOL:-oha}
case $tool in
  hey) command -v hey >/dev/null || { apt-get update -qq && apt-get install -y -qq hey; } ;;
  oha)
    oha=$(command -v oha || echo "$PWD/target/bench-tools/bin/oha")
    [ -x "$oha" ] || cargo install -q --locked oha --version 1.16.0 --root target/bench-tools
    command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3; } ;;
  *) echo "LOAD_TOOL must be oha or hey" >&2; exit 2 ;;
esac
cargo build --release -q -p palisade-cli
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/palisade
work=$(mktemp -d)
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

# Policy sets: the first N templates (sorted), each with the constraint of its first sample.
mapfile -t templates < <(find "$library" -name template.yaml | sort)
make_set() {
  local n=$1 dir=$work/policies-$1
  mkdir -p "$dir"
  for t in "${templates[@]:0:$n}"; do
    local d name constraint
    d=$(dirname "$t"); name=$(basename "$d")
    cp "$t" "$dir/$name-template.yaml"
    constraint=$(find "$d/samples" -name 'constraint*.yaml' | sort | head -1)
    [ -n "$constraint" ] && cp "$constraint" "$dir/$name-constraint.yaml"
  done
  echo "$dir"
}

# A realistic Pod: two containers, resources, probes, a securityContext, in a namespace the
# library's sample constraints select.
cat > "$work/review.json" <<'JSON'
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
 "uid":"bench","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
 "name":"web-7d9f8","namespace":"default","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts"]},
 "object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d9f8","namespace":"default","labels":{"app":"web","owner":"shop"}},
  "spec":{"serviceAccountName":"web","securityContext":{"runAsNonRoot":true,"seccompProfile":{"type":"RuntimeDefault"}},
   "containers":[
    {"name":"app","image":"openpolicyagent/opa:0.9.2","ports":[{"containerPort":8080}],
     "resources":{"requests":{"cpu":"100m","memory":"128Mi"},"limits":{"cpu":"500m","memory":"256Mi"}},
     "securityContext":{"allowPrivilegeEscalation":false,"readOnlyRootFilesystem":true,"capabilities":{"drop":["ALL"]}},
     "livenessProbe":{"httpGet":{"path":"/healthz","port":8080}},"readinessProbe":{"httpGet":{"path":"/ready","port":8080}}},
    {"name":"proxy","image":"openpolicyagent/envoy:1.30","resources":{"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"cpu":"200m","memory":"128Mi"}},
     "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}}}
JSON

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

echo "| policies | target rps | achieved rps | p50 ms | p99 ms | webhook CPU (cores) | CPU ms per request | errors |"
echo "|---|---|---|---|---|---|---|---|"
for n in 1 10 ${#templates[@]}; do
  dir=$(make_set "$n")
  printf 'admission:\n  gatekeeper:\n    paths: ["%s"]\n' "$dir" > "$work/palisade.yaml"
  "$bin" admission serve --self-signed --listen 127.0.0.1:0 --config "$work/palisade.yaml" \
    --decision-cache "${DECISION_CACHE:-4096}" \
    >/dev/null 2>"$work/server.log" &
  server=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
  addr=$(sed -n 's/.*listening on https:\/\/127.0.0.1/localhost/p' "$work/server.log")
  for rate in 200 500 1000; do
    workers=10
    # Warm-up: connections, caches, the allocator's pages.
    if [ "$tool" = hey ]; then
      hey -z 2s -c 10 -host localhost -m POST -T application/json -D "$work/review.json" "https://$addr/validate" >/dev/null
    else
      "$oha" -z 2s -c 10 --no-tui --insecure -m POST -T application/json -D "$work/review.json" "https://$addr/validate" >/dev/null
    fi
    before=$(cpu_ticks "$server")
    if [ "$tool" = hey ]; then
      out=$(hey -z "${secs}s" -c "$workers" -q $((rate / workers)) -host localhost -m POST -T application/json -D "$work/review.json" "https://$addr/validate")
      after=$(cpu_ticks "$server")
      achieved=$(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}')
      p50=$(echo "$out" | awk '/ 50% in / {printf "%.2f", $3 * 1000}')
      p99=$(echo "$out" | awk '/ 99% in / {printf "%.2f", $3 * 1000}')
      errors=$(echo "$out" | awk '/\[200\]/ {ok=$2} /responses/ && !/\[200\]/ {bad+=$2} END {print bad+0}')
    else
      "$oha" -z "${secs}s" -c "$workers" -q "$rate" --latency-correction --no-tui --insecure -m POST \
        -T application/json -D "$work/review.json" --output-format json "https://$addr/validate" > "$work/oha.json"
      after=$(cpu_ticks "$server")
      read -r achieved p50 p99 errors < <(python3 - "$work/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
# Requests still in flight when the run ends are "aborted due to deadline": not failures.
failed = {k: v for k, v in d.get("errorDistribution", {}).items() if k != "aborted due to deadline"}
errors = sum(v for k, v in codes.items() if k != "200") + sum(failed.values())
print(f'{d["summary"]["requestsPerSec"]:.0f} {p["p50"] * 1000:.2f} {p["p99"] * 1000:.2f} {errors}')
PY
)
    fi
    cores=$(echo "($after - $before) / $hz / $secs" | bc -l)
    per_request=$(echo "$cores * 1000 / $achieved" | bc -l)
    printf '| %s | %s | %s | %s | %s | %.2f | %.2f | %s |\n' "$n" "$rate" "$achieved" "$p50" "$p99" "$cores" "$per_request" "$errors"
  done
  kill "$server"; wait "$server" 2>/dev/null || true
done
grep -h "loaded" "$work/server.log" >&2 || true
