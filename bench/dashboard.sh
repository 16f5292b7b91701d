#!/usr/bin/env bash
# Page server times of the dashboard (bulkhead server, /ui/) on a loaded
# SQLite store: 1,000 images (latest scans) with 300 findings each (300,000
# stored findings), 600 packages each, 3,000 cluster workloads, 22,000 events
# (runtime alerts, admission decisions) and 5,000 re-evaluation changes.
# The store is built once (a few minutes: every upload is a durable
# transaction), then each page is served N times in-process (the handler,
# with the token check, the queries and the template; no network), and its
# mean and worst server time are printed, with the process's CPU time per page
# (less inflated than wall time when other work shares the machine). Pages
# over 200 ms are flagged.
#
#   bench/dashboard.sh [N]                 (default N 20)
#   BENCH_IMAGES=… BENCH_FINDINGS=…         scale the store (findings per image)
#
# Go benchmark: BenchmarkDashboard in ./server/dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}
out=$(BENCH_IMAGES=${BENCH_IMAGES:-1000} BENCH_FINDINGS=${BENCH_FINDINGS:-300} \
	go test -v -run '^$' -bench '^BenchmarkDashboard$' -benchtime "${n}x" -timeout 60m ./server/dashboard/ 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E 'store:' | sed 's/^ *bench_test.go:[0-9]*: //' | head -1 || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs; other work on the machine inflates the times)"
printf '%-26s %10s %10s %10s\n' page mean-ms max-ms cpu-ms
echo "$out" | awk '/^BenchmarkDashboard\// && NF >= 5 {
	name=$1; sub(/^BenchmarkDashboard\//, "", name); sub(/-[0-9]+$/, "", name)
	mean=$3/1e6; max=""; cpu=""
	for (i = 4; i <= NF; i++) { if ($i == "max-ms") max=$(i-1); if ($i == "cpu-ms/op") cpu=$(i-1) }
	flag = (max > 200) ? "  OVER 200 ms" : ""
	printf "%-26s %10.1f %10.1f %10s%s\n", name, mean, max, cpu, flag
}'
