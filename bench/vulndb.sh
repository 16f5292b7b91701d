#!/usr/bin/env bash
# Vulnerability database figures: import of the whole OSV corpus
# (../shared/corpus/osv: Go, PyPI, crates.io, npm, Maven, NuGet, AlmaLinux;
# the committed fixtures when the corpus is absent), the resulting DB size,
# building the DB from the bundled snapshot, and the lookup rate for 10,000
# (ecosystem, name) pairs on a warm and on a cold handle.
#
#   bench/vulndb.sh [BENCHTIME]    (default 3x)
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-3x}
out=$(go test ./vulndb -run '^$' -bench 'BenchmarkImport$|BenchmarkEnsureBundled$|BenchmarkLookup10k$|BenchmarkLookup10kCold$' \
  -benchtime "$benchtime" -count 1 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E '^(goos|goarch|cpu|Benchmark)'
echo
echo "$out" | awk '
  /^BenchmarkImport-/ {
    for (i = 1; i <= NF; i++) {
      if ($(i) == "ns/op") ns = $(i-1)
      if ($(i) == "records") rec = $(i-1)
      if ($(i) == "records/s") rate = $(i-1)
      if ($(i) == "db-MB") mb = $(i-1)
    }
    printf "import of the corpus:       %d records in %.2f s (%.0f records/s)\n", rec, ns / 1e9, rate
    printf "database size:              %.1f MB\n", mb
  }
  /^BenchmarkEnsureBundled-/ { printf "build from bundled snapshot: %.2f s\n", $3 / 1e9 }
  /^BenchmarkLookup10k-/ {
    for (i = 1; i <= NF; i++) if ($(i) == "ms/10k") ms = $(i-1)
    printf "lookup, warm:               %.1f ms per 10,000 lookups (%.0f lookups/s)\n", $3 / 1e6, 1e4 / ($3 / 1e9)
  }
  /^BenchmarkLookup10kCold-/ {
    printf "lookup, cold (open + 10k):  %.1f ms per 10,000 lookups\n", $3 / 1e6
  }'
ls -l vulndb/snapshot/osv-snapshot.pb.zst | awk '{ printf "bundled snapshot:           %.2f MB compressed\n", $5 / 1e6 }'
