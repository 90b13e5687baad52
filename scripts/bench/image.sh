#!/usr/bin/env bash
# Image scan benchmark: `palisade scan image` (release build, warm vulnerability database, every
# scanner on) on the app test image as docker-archive and as OCI layout, beside the floor of only
# decompressing and reading every layer with tar, in the same run. Each figure is the best of
# RUNS runs (default 5): wall seconds, CPU seconds (user+sys) and peak RSS.
#
# Usage: scripts/bench/image.sh IMAGES_DIR [OSV_DIR]
#   IMAGES_DIR: the output folder of ../shared/tools/build-test-images.sh
#   OSV_DIR:    OSV records to import first (default ../shared/data/osv)
set -euo pipefail
cd "$(dirname "$0")/../.."
images=$(cd "$1" && pwd)
osv=${2:-../shared/data/osv}
runs=${RUNS:-5}
cargo build --release -q -p palisade-cli
palisade=${CARGO_TARGET_DIR:-$PWD/target}/release/palisade
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
db=$work/vulndb.redb
"$palisade" db import "$osv" --db "$db" >/dev/null

measure() { # best-of-$runs "wall cpu rss_kib"
  local best="" out
  out=$(mktemp)
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %U %S %M" -o "$out" "$@" >/dev/null 2>&1 || true
    read -r wall user sys rss < "$out"
    line=$(awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN{printf "%.3f %.3f %d", w, u+s, r}')
    if [ -z "$best" ] || awk -v a="$line" -v b="$best" 'BEGIN{split(a,x," ");split(b,y," ");exit !(x[1]<y[1])}'; then
      best=$line
    fi
  done
  rm -f "$out"
  echo "$best"
}

# The floor: read every layer once through tar (gunzip for the OCI layout's gzip blobs).
cat > "$work/floor-archive.sh" <<'SH'
set -e
archive=$1
for layer in $(python3 -c 'import json,sys,tarfile; t=tarfile.open(sys.argv[1]); m=json.load(t.extractfile("manifest.json")); print(" ".join(m[0]["Layers"]))' "$archive"); do
  tar -xOf "$archive" "$layer" | tar -t >/dev/null
done
SH
cat > "$work/floor-oci.sh" <<'SH'
set -e
layout=$1
for digest in $(python3 -c '
import json,sys,os
d=sys.argv[1]
idx=json.load(open(os.path.join(d,"index.json")))
m=idx["manifests"][0]["digest"].split(":")[1]
man=json.load(open(os.path.join(d,"blobs/sha256",m)))
print(" ".join(l["digest"].split(":")[1] for l in man["layers"]))' "$layout"); do
  tar -tzf "$layout/blobs/sha256/$digest" >/dev/null
done
SH

echo "| input | what | wall s | CPU s | peak RSS MB |"
echo "|---|---|---|---|---|"
row() { printf "| %s | %s | %s | %s | %.1f |\n" "$1" "$2" "$3" "$4" "$(echo "$5/1024" | bc -l)"; }
for kind in docker-archive oci; do
  if [ $kind = docker-archive ]; then
    input=$images/app-vuln/docker-archive.tar; floor=$work/floor-archive.sh
  else
    input=$images/app-vuln/oci; floor=$work/floor-oci.sh
  fi
  read -r f_wall f_cpu f_rss < <(measure bash "$floor" "$input")
  read -r p_wall p_cpu p_rss < <(measure "$palisade" scan image "$input" --db "$db" --no-progress -f json -o /dev/null)
  read -r s_wall s_cpu s_rss < <(measure "$palisade" scan image "$input" --db "$db" --no-progress --sbom-only -f json -o /dev/null)
  row "app-vuln $kind" "floor: tar reads every layer" "$f_wall" "$f_cpu" "$f_rss"
  row "app-vuln $kind" "palisade scan image (all scanners)" "$p_wall" "$p_cpu" "$p_rss"
  row "app-vuln $kind" "palisade scan image --sbom-only" "$s_wall" "$s_cpu" "$s_rss"
  printf "| app-vuln %s | **ratio palisade/floor (wall)** | **%.2f×** | | |\n" "$kind" "$(echo "$p_wall/$f_wall" | bc -l)"
done
