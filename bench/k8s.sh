#!/usr/bin/env bash
# Kubernetes manifest checks: manifests per second.
#
#   bench/k8s.sh [BENCHTIME]
#
# 1. The Go benchmarks of config/kubernetes: parse + every check on a stream
#    of real manifests (kubernetes/examples, kube-score and the
#    pod-security-admission fixtures committed in testdata), and the same
#    built-in checks in Go and in CEL on parsed objects.
# 2. When the CLI has `bulkhead config` and ../shared/corpus is there: the
#    whole kubernetes/examples corpus through the CLI, wall time and
#    manifests/s (the count is the objects the parser finds).
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-3s}

echo "== go test -bench (config/kubernetes, cel/), benchtime $benchtime"
go test -run '^$' -bench 'Scan|GoChecks|CELBuiltin' -benchtime "$benchtime" ./config/kubernetes |
  grep -E '^Benchmark' | awk '{for (i=1;i<=NF;i++) if ($i=="manifests/s") printf "%-28s %10.0f manifests/s  (%s ns/op)\n", $1, $(i-1), $3}'
go test -run '^$' -bench 'Eval|LoadBuiltin' -benchtime "$benchtime" ./cel | grep -E '^Benchmark'

corpus=../shared/corpus/k8s/kubernetes-examples
bin=$(mktemp -d)/bulkhead
go build -o "$bin" ./cmd/bulkhead
if [ -d "$corpus" ] && "$bin" config --help >/dev/null 2>&1; then
  n=$(find "$corpus" \( -name '*.yaml' -o -name '*.yml' -o -name '*.json' \) -exec grep -c '^kind:\|"kind":' {} + | awk -F: '{s+=$NF} END {print s}')
  start=$(date +%s.%N)
  "$bin" config --format json "$corpus" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  awk -v n="$n" -v s="$start" -v e="$end" 'BEGIN {printf "bulkhead config on kubernetes/examples: ~%d manifests in %.2fs = %.0f manifests/s (CLI start-up included)\n", n, e-s, n/(e-s)}'
else
  echo "(skipping the CLI run: no $corpus or no 'bulkhead config' command in this build)"
fi
rm -rf "$(dirname "$bin")"
