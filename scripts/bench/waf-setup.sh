# Sourced by the WAF proxy benchmarks (waf.sh, waf-compare.sh): the same peer, requests and
# palisade configuration for both, so their figures compare.
#
# Starts modsec-peer.sh's pl1 profile (Apache + ModSecurity, a plain Apache proxy and the nginx
# backend) in a temporary directory that is removed on exit with whatever palisade runs, writes
# the JSON POST's wrk script to $work/post.lua and sets `headers` (a browser's, benign at
# paranoia level 1). `start_palisade BIN` serves CRS with the peer's configuration on
# 127.0.0.1:8090 in front of the peer's nginx and sets `pid`; PALISADE_ARGS adds flags (for
# example PALISADE_ARGS="--busy-poll 200").
peer=$(mktemp -d)
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  ../shared/tools/modsec-peer.sh stop "$peer" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
../shared/tools/modsec-peer.sh start "$peer" pl1 >/dev/null

cat > "$work/post.lua" <<'EOF'
wrk.method = "POST"
wrk.body = '{"name":"garden chair","quantity":3,"tags":["outdoor","wood"],"price":49.90}'
wrk.headers["Content-Type"] = "application/json"
EOF
headers=(-H "Host: shop.example" -H "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
         -H "Accept: text/html,application/json;q=0.9,*/*;q=0.8" -H "Accept-Language: en-GB,en;q=0.5")

start_palisade() { # binary
  "$1" waf serve --listen 127.0.0.1:8090 --upstream http://127.0.0.1:8082 \
    --rules "$peer/conf/modsecurity.conf" --rules "$peer/conf/crs-setup.conf" --rules "$peer/crs" \
    --error-log "$work/palisade-error.log" ${PALISADE_ARGS:-} 2>"$work/palisade.out" &
  pid=$!
  for _ in $(seq 50); do grep -q "listening on" "$work/palisade.out" 2>/dev/null && break; sleep 0.2; done
}
