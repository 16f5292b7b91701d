#!/usr/bin/env bash
# How bulkhead server's upload cost grows with its database (issue 14): one
# server on a fresh SQLite database, and tools/serverload run PHASES times
# against it back to back (50 clients, closed loop, DURATION each, 300
# packages per inventory), so that each phase starts on the database the
# previous ones filled. Printed per phase: uploads/s and latency (from
# serverload), the load generator's CPU, the store's transactions and
# writes in the phase (from /metrics), the server's CPU time, the scans
# stored so far and the database's size.
#
#   bench/server-phases.sh [PHASES] [DURATION]      (default 3 40s)
#   MODE="-rate 20" bench/server-phases.sh 1 30s    (open loop instead)
#   BULKHEAD_CPUPROFILE=FILE ...                    (the server's CPU profile)
#
# Needs ../shared/corpus beside the repository (or BULKHEAD_CORPUS), sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."
phases=${1:-3}
dur=${2:-40s}
corpus=${BULKHEAD_CORPUS:-../shared/corpus}
[ -d "$corpus/pkgdb" ] || { echo "no corpus at $corpus: set BULKHEAD_CORPUS" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "install sqlite3" >&2; exit 1; }
w=$(mktemp -d /tmp/bulkhead-phases-XXXXXX)
srv=
cleanup() {
  [ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $w"; else rm -rf "$w"; fi
}
trap cleanup EXIT
go build -o "$w/bulkhead" ./cmd/bulkhead
go build -o "$w/serverload" ./tools/serverload
export BULKHEAD_CACHE_DIR=$w/cache
tok=bkh_phases$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
url=http://127.0.0.1:18090
echo "commit $(git rev-parse --short HEAD), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
BULKHEAD_BOOTSTRAP_TOKEN=$tok "$w/bulkhead" server --listen 127.0.0.1:18090 --database "$w/phases.db" \
  --db "$w/osv.db" --db-max-age 0 >"$w/server.log" 2>&1 &
srv=$!
for _ in $(seq 600); do curl -fs $url/readyz >/dev/null && break; sleep 0.1; done
hz=$(getconf CLK_TCK)
stats() { curl -fs -H "Authorization: Bearer $tok" $url/metrics | awk '/^bulkhead_store_(transactions|writes)_total /{printf "%s ", $2}'; }
for ph in $(seq "$phases"); do
  m0=$(stats)
  c0=$(awk '{print $14+$15}' "/proc/$srv/stat")
  # shellcheck disable=SC2086 # MODE is a flag and its value
  /usr/bin/time -f "load generator %U+%S s CPU" "$w/serverload" -url $url -token "$tok" -clients 50 -duration "$dur" \
    -packages 300 -corpus "$corpus" ${MODE:-} 2>&1 | grep -E "^uploads|^latency|load generator" | tr '\n' ' '
  c1=$(awk '{print $14+$15}' "/proc/$srv/stat")
  m1=$(stats)
  # shellcheck disable=SC2086
  set -- $m0 $m1
  echo "| $(( $4 - $2 )) writes in $(( $3 - $1 )) transactions | phase $ph: server CPU $(( (c1-c0)*1000/hz )) ms;" \
    "$(sqlite3 "$w/phases.db" 'select count(*) from scans') scans stored; database $(du -m "$w/phases.db" | cut -f1) MB;" \
    "load $(cut -d' ' -f1 /proc/loadavg)"
done
echo "server log: $(grep -c '"level":"ERROR"' "$w/server.log" || true) error lines"
