#!/usr/bin/env bash
# Secret-scanning throughput on a real multi-layer Debian image: the walk
# alone vs the walk with the secret scanner (best of three each), and the
# scanner's own MB/s of text read and matched per core.
#
#   bench/secrets.sh [IMAGE-ARCHIVE]
#
# Default image: the Debian bench image of bench/inventory.sh
# ($BENCH_DIR/debian.oci.tar; run bench/inventory.sh once to build it).
# Also prints the in-memory matcher figures (go test -bench BenchmarkScan).
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/var/tmp/bulkhead-bench}
img=${1:-$work/debian.oci.tar}
if [ ! -f "$img" ]; then
  echo "no image archive at $img: run bench/inventory.sh first (it builds the Debian bench image)" >&2
  exit 1
fi
case "$img" in
  *:*) ref=$img ;;
  *) ref="oci-archive:$img"; tar -tf "$img" oci-layout >/dev/null 2>&1 || ref="docker-archive:$img" ;;
esac
echo "image: $img ($(du -m "$img" | cut -f1) MB archive)"
BULKHEAD_BENCH_IMAGE=$ref go test -count=1 -run TestImageThroughput -v ./secret/imagescan/ | grep -E 'walk|secret scanner|findings|^ok|FAIL'
go test -count=1 -run '^$' -bench BenchmarkScan -benchtime 5x ./secret/ | grep -E 'Benchmark|ok'
