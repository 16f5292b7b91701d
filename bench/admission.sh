#!/usr/bin/env bash
# Admission webhook under load: the real `bulkhead admission` over HTTPS on
# loopback, a loopback docker-registry holding signed images (one clean, one
# with a CRITICAL vulnerability), and an open-loop Go load generator sending
# AdmissionReviews at a fixed rate with a warm cache (e2e TestAdmissionLoad).
# Every answer is checked (clean: allowed, vulnerable: denied); the run fails
# on any error, on a rate below 95% of the target or on a p99 over the bound.
#
#   bench/admission.sh [RPS] [SECONDS] [P99_MS]     (default 200 30 50)
#
# Needs root, podman, busybox-static and docker-registry
# (scripts/setup-test-env.sh). Also prints the in-process Go benchmarks
# (one review judged from a warm cache; one policy evaluation).
set -euo pipefail
cd "$(dirname "$0")/.."
rps=${1:-200}
secs=${2:-30}
p99=${3:-50}
echo "== admission load: $rps requests/s for ${secs}s, p99 bound ${p99} ms ($(nproc) cores)"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
BULKHEAD_LOAD_RPS=$rps BULKHEAD_LOAD_SECONDS=$secs BULKHEAD_LOAD_P99_MS=$p99 \
  go test -count=1 -v -run '^TestAdmissionLoad$' -timeout 10m ./e2e >"$out" 2>&1 || status=$?
grep -E 'requests in|^(--- |ok|FAIL|PASS)|admission_test.go' "$out" || cat "$out"
echo
echo "== Go benchmarks"
go test -run '^$' -bench 'BenchmarkReview|BenchmarkEvaluate' -benchtime 2000x ./admission ./policy 2>&1 | grep -E '^(Benchmark|ok)'
exit $status
