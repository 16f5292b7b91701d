#!/usr/bin/env bash
# Base images, comparison and SBOM validation on the demo image (Alpine +
# Python, npm and Go packages), with a warm vulnerability database:
#   - bulkhead base index / recommend --detect-only / recommend / compare
#   - bulkhead sbom validate of syft's SBOM next to the time syft takes to
#     make it (the peer: an SBOM is only as useful as it is checked)
#   - the Go benchmarks of base, compare and sbom/validate
#
#   bench/base.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
work=${BENCH_DIR:-/var/tmp/bulkhead-bench-base}
mkdir -p "$work"
export BULKHEAD_CACHE_DIR="$work/cache"
img=testdata/images/alpine-demo.oci.tar
GOFLAGS= go build -o "$work/bulkhead" ./cmd/bulkhead
bh="$work/bulkhead"
syft=${SYFT:-$(command -v syft || echo /root/go/bin/syft)}

# Median wall time of a command over $runs runs, in milliseconds.
median() {
  local times=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1 || true
    e=$(date +%s%N)
    times+=($(( (e - s) / 1000000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

"$bh" db status >/dev/null 2>&1 || "$bh" image -q --input "$img" >/dev/null # warm the database
cat="$work/catalog.json"
rm -f "$cat"
"$bh" base index -q --catalog "$cat" "oci-archive:$img" scratch >/dev/null
"$syft" scan -q "oci-archive:$img" -o cyclonedx-json="$work/syft.cdx.json"

printf '%-48s %8s\n' "command (demo image, median of $runs)" "ms"
printf '%-48s %8s\n' "bulkhead base index (1 image)" "$(median "$bh" base index -q --catalog "$work/c2.json" "oci-archive:$img")"
printf '%-48s %8s\n' "bulkhead recommend --detect-only" "$(median "$bh" recommend -q --detect-only --catalog "$cat" "oci-archive:$img")"
printf '%-48s %8s\n' "bulkhead recommend (2 catalog entries)" "$(median "$bh" recommend -q --catalog "$cat" "oci-archive:$img")"
printf '%-48s %8s\n' "bulkhead compare (image against itself)" "$(median "$bh" compare -q "oci-archive:$img" "oci-archive:$img")"
printf '%-48s %8s\n' "bulkhead sbom validate (syft CycloneDX 1.7)" "$(median "$bh" sbom validate -q --sbom "$work/syft.cdx.json" "oci-archive:$img")"
printf '%-48s %8s\n' "bulkhead sbom validate (schema only)" "$(median "$bh" sbom validate --sbom "$work/syft.cdx.json")"
printf '%-48s %8s\n' "syft scan -o cyclonedx-json (peer: making it)" "$(median "$syft" scan -q "oci-archive:$img" -o cyclonedx-json)"
echo
GOFLAGS= go test -run='^$' -bench=. -benchmem -benchtime=2s ./base ./compare ./sbom/validate | grep -E '^(Benchmark|ok)'
