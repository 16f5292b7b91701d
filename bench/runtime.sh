#!/usr/bin/env bash
# Runtime detection figures:
#   1. rule engine: events/s through the whole stable Falco ruleset on a
#      replayed exec/open/connect mix (runtime/rules BenchmarkStableRuleset),
#      and the sensor's user-space cost per kernel record (decode + process
#      table + conversion, runtime/sensor BenchmarkDecodeConvert);
#   2. end to end (root, podman): `bulkhead runtime` with the stable rules
#      while a container runs a bounded loop of execs and opens, then while
#      a container drives open+connect system calls at a fixed 10k and 50k
#      events/s; for each prints the events/s the sensor sustained, its drops
#      (must be 0), the CPU the sensor process spent (from /proc/PID/stat, as
#      % of one core and per event) and its peak memory (VmHWM).
#
#   bench/runtime.sh [ITERATIONS] [SECONDS]
#     ITERATIONS exec+open iterations (default 3000); SECONDS per paced
#     load (default 10). RATES="10000 50000" overrides the paced rates;
#     BULKHEAD_BIN=path measures that binary instead of building one (e.g.
#     an older build, for before/after figures).
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-3000}
secs=${2:-10}
rates=${RATES:-10000 50000}
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
bin=${BULKHEAD_BIN:-$work/bulkhead}
[ -n "${BULKHEAD_BIN:-}" ] || GOFLAGS= go build -o "$bin" ./cmd/bulkhead
img=localhost/bulkhead-bench-runtime:2
if ! podman image exists "$img"; then
  r="$work/rootfs"; rm -rf "$r"; mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$work/load"
  cp /bin/busybox "$r/bin/"; for a in sh cat true; do ln -sf busybox "$r/bin/$a"; done
  echo bench > "$r/etc/hostname"
  # load RATE SECONDS: RATE events/s for SECONDS, paced per millisecond;
  # each 10 events are 8 open(/etc/hostname) and a UDP socket+connect.
  cat > "$work/load/main.go" <<'GO'
package main

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

func main() {
	rate, _ := strconv.Atoi(os.Args[1])
	secs, _ := strconv.Atoi(os.Args[2])
	sa := &syscall.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}
	start := time.Now()
	n := 0
	for time.Since(start) < time.Duration(secs)*time.Second {
		due := int(time.Since(start).Seconds() * float64(rate))
		for ; n < due; n += 10 {
			for i := 0; i < 8; i++ {
				if fd, err := syscall.Open("/etc/hostname", syscall.O_RDONLY, 0); err == nil {
					syscall.Close(fd)
				}
			}
			if fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0); err == nil {
				syscall.Connect(fd, sa)
				syscall.Close(fd)
			}
		}
		time.Sleep(time.Millisecond)
	}
}
GO
  printf 'module load\n\ngo 1.21\n' > "$work/load/go.mod"
  (cd "$work/load" && CGO_ENABLED=0 GOFLAGS= go build -o "$r/bin/load" .)
  tar -C "$r" -c . | podman import -q --change 'ENV PATH=/bin' - "$img" >/dev/null
fi
port=$((20000 + RANDOM % 20000))
"$bin" runtime --format json --output "$work/alerts.json" --metrics-addr "127.0.0.1:$port" 2>"$work/sensor.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'sensor running' "$work/sensor.log" 2>/dev/null && break; sleep 0.2; done
metric() { curl -s "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1==m {print $2}'; }
cpu() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
# measure LABEL COMMAND...: runs COMMAND in a container and prints what the
# sensor did meanwhile.
measure() {
  local label=$1; shift
  echo "== end to end: $label"
  local e0 c0 t0 d0 m0 e1 c1 t1 d1 m1
  e0=$(metric bulkhead_runtime_events_total); c0=$(cpu); t0=$(date +%s%N)
  d0=$(metric bulkhead_runtime_ring_drops_total); m0=$(metric bulkhead_runtime_stash_drops_total)
  podman run --rm --network=none "$img" "$@"
  sleep 1
  e1=$(metric bulkhead_runtime_events_total); c1=$(cpu); t1=$(date +%s%N)
  d1=$(metric bulkhead_runtime_ring_drops_total); m1=$(metric bulkhead_runtime_stash_drops_total)
  awk -v e0="$e0" -v e1="$e1" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" \
      -v d="$((d1 - d0))" -v m="$((m1 - m0))" -v rss="$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")" 'BEGIN {
    el = (t1 - t0) / 1e9; ev = e1 - e0; cs = (c1 - c0) / hz
    printf "events: %d in %.2fs = %.0f events/s sustained\n", ev, el, ev / el
    printf "drops: ring buffer %d, in-flight table %d\n", d, m
    printf "sensor CPU: %.2fs = %.1f%% of one core, %.1f us per event; peak RSS %.1f MiB\n", cs, 100 * cs / el, (ev > 0 ? 1e6 * cs / ev : 0), rss / 1024
  }'
}
# Each iteration: one fork+exec of /bin/cat (execve, opens of the binary's
# files) and an open of /etc/hostname.
measure "$iters iterations of exec + open in a podman container" \
  sh -c "i=0; while [ \$i -lt $iters ]; do /bin/cat /etc/hostname >/dev/null; i=\$((i+1)); done"
for rate in $rates; do
  measure "open+connect at $rate events/s for ${secs}s in a podman container" load "$rate" "$secs"
done
kill -INT $pid; wait $pid || true
trap - EXIT
tail -1 "$work/sensor.log"
