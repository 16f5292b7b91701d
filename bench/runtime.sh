#!/usr/bin/env bash
# Runtime detection figures:
#   1. rule engine: events/s through the whole stable Falco ruleset on a
#      replayed exec/open/connect mix (runtime/rules BenchmarkStableRuleset),
#      and the sensor's user-space cost per kernel record (decode + process
#      table + conversion, runtime/sensor BenchmarkDecodeConvert);
#   2. end to end (root, podman): `bulkhead runtime` with the stable rules
#      while a container runs a bounded loop of execs and opens; prints the
#      events/s the sensor sustained, its drops (must be 0) and the CPU the
#      sensor process spent (from /proc/PID/stat).
#
#   bench/runtime.sh [ITERATIONS]     (default 3000 exec+open iterations)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-3000}
work=${BENCH_DIR:-/var/tmp/bulkhead-bench-runtime}
mkdir -p "$work"

echo "== rule engine (stable ruleset, exec/open/connect mix, one goroutine)"
GOFLAGS= go test -run '^$' -bench 'BenchmarkStableRuleset' -benchtime 2s -count 3 ./runtime/rules | grep -E '^Benchmark'
echo "== sensor user space (decode + convert one kernel record)"
GOFLAGS= go test -run '^$' -bench 'BenchmarkDecodeConvert' -benchtime 1s -count 3 ./runtime/sensor | grep -E '^Benchmark' |
  awk '{print; for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") printf "    = %.0f records/s per core\n", 1e9/$i}'

if [ "$(id -u)" != 0 ] || ! command -v podman >/dev/null; then
  echo "== end to end: skipped (needs root and podman)"
  exit 0
fi
echo "== end to end: $iters iterations of exec + open in a podman container"
GOFLAGS= go build -o "$work/bulkhead" ./cmd/bulkhead
img=localhost/bulkhead-bench-runtime:1
if ! podman image exists "$img"; then
  r="$work/rootfs"; rm -rf "$r"; mkdir -p "$r/bin" "$r/etc" "$r/tmp"
  cp /bin/busybox "$r/bin/"; for a in sh cat true; do ln -sf busybox "$r/bin/$a"; done
  echo bench > "$r/etc/hostname"
  tar -C "$r" -c . | podman import -q --change 'ENV PATH=/bin' - "$img" >/dev/null
fi
port=$((20000 + RANDOM % 20000))
"$work/bulkhead" runtime --format json --output "$work/alerts.json" --metrics-addr "127.0.0.1:$port" 2>"$work/sensor.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'sensor running' "$work/sensor.log" 2>/dev/null && break; sleep 0.2; done
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1==m {print $2}'; }
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
e0=$(metric bulkhead_runtime_events_total); c0=$(cpu); t0=$(date +%s%N)
# Each iteration: one fork+exec of /bin/cat (execve, opens of the binary's
# files) and an open of /etc/hostname.
podman run --rm --network=none "$img" sh -c "i=0; while [ \$i -lt $iters ]; do /bin/cat /etc/hostname >/dev/null; i=\$((i+1)); done"
sleep 1
e1=$(metric bulkhead_runtime_events_total); c1=$(cpu); t1=$(date +%s%N)
drops=$(metric bulkhead_runtime_ring_drops_total); missed=$(metric bulkhead_runtime_stash_drops_total)
kill -INT $pid; wait $pid || true
trap - EXIT
awk -v e0="$e0" -v e1="$e1" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v d="$drops" -v m="$missed" 'BEGIN {
  el = (t1 - t0) / 1e9; ev = e1 - e0; cs = (c1 - c0) / hz
  printf "events: %d in %.2fs = %.0f events/s sustained\n", ev, el, ev / el
  printf "drops: ring buffer %d, in-flight table %d\n", d, m
  printf "sensor CPU: %.2fs = %.1f%% of one core, %.1f us per event\n", cs, 100 * cs / el, (ev > 0 ? 1e6 * cs / ev : 0)
}'
tail -1 "$work/sensor.log"
