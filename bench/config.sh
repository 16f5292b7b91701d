#!/usr/bin/env bash
# Dockerfile checks throughput: parse + all built-in checks, Dockerfiles per
# second (go test -bench BenchmarkLint over real official-image and buildkit
# Dockerfiles), and a whole-CLI run over the KICS Dockerfile cases.
set -euo pipefail
cd "$(dirname "$0")/.."
go test -count=1 -run '^$' -bench BenchmarkLint -benchtime 3s ./config/dockerfile/ | grep -E 'Benchmark|ok'
bin=$(mktemp -d)/bulkhead
go build -o "$bin" ./cmd/bulkhead
n=$(find config/dockerfile/testdata/kics -name '*.dockerfile' | wc -l)
start=$(date +%s.%N)
"$bin" config -f json --scanners misconfig config/dockerfile/testdata/kics >/dev/null 2>&1 || true
end=$(date +%s.%N)
echo "bulkhead config over $n KICS Dockerfiles (process start included): $(echo "$end - $start" | bc) s"
rm -rf "$(dirname "$bin")"
