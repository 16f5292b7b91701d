#!/usr/bin/env bash
# Operator dedupe and throughput on a real API server (internal/kubetest:
# kube-apiserver and etcd from scripts/kube-assets.sh): PODS pending pods
# over IMAGES distinct images (each with known vulnerabilities) in
# NAMESPACES namespaces, a loopback registry counting manifest requests.
# Prints the time until every pod's WorkloadReport is complete, the scans
# (must equal IMAGES) and the manifest GETs by digest (one per image), the
# Go heap after GC and its peak while the operator works (sampled every
# 250ms), and the peak RSS of the test process (which also holds the
# test's own clients and registry, not the API server).
#
#   bench/operator.sh [PODS] [IMAGES] [NAMESPACES]     (default 200 40 10)
#   bench/operator.sh 2000 40 10                       the issue's memory figure
#   BULKHEAD_OPERATOR_RBAC=1 bench/operator.sh 2000 40 10   with the RBAC assessment controller
#
# 2,000 pods on 2 shared cores: every report complete in 52-60s
# (33-39 pods/s), 40 scans; Go heap after GC 46 MiB (10 MiB before the
# operator started), peak 70 MiB; peak RSS of the test process 200-205 MiB.
# With the RBAC assessment: 58s (34 pods/s), heap 52 MiB, peak 79 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${1:-200}
images=${2:-40}
nss=${3:-10}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go test -c -o "$bin/controller.test" ./operator/controller
echo "== operator: $pods pods over $images images in $nss namespaces ($(nproc) cores)"
BULKHEAD_OPERATOR_SCALE=$pods,$images,$nss /usr/bin/time -v "$bin/controller.test" -test.run '^TestOperatorScale$' -test.count 1 -test.timeout 15m 2>"$bin/time" | grep -E '^SCALE|^(--- |ok|FAIL|PASS)'
# /usr/bin/time's maximum RSS counts the kube-apiserver and etcd children
# too; the SCALE line gives the test process's own peak (VmHWM).
grep -E 'Elapsed' "$bin/time"
