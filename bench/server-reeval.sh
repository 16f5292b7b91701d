#!/usr/bin/env bash
# Re-evaluation without re-pulling (issue 14): 1,000 stored images of about
# 300 real packages each (reevaltest.Fleet: Alpine and Debian package
# databases of the corpus parsed by bulkhead's catalogers, AlmaLinux rpms and
# npm/PyPI/Go/crates.io/Maven packages named by the corpus' OSV records),
# stored with their findings in the server's SQLite store; one new OSV record
# imported (busybox in every Alpine release: 625 of the 1,000 images); then
# one re-evaluation of every image, timed with its CPU and peak RSS; then the
# same with reeval.Options.KeepInfo after a second advisory. For comparison, the time bulkhead takes to scan images from
# scratch (pipeline.Run, the image already local, so no pull), extrapolated
# to 1,000 images.
#
#   bench/server-reeval.sh [IMAGES] [PACKAGES]    (default 1000 300)
#   BULKHEAD_BENCH_DB=postgres bench/server-reeval.sh ...
#
# Needs ../shared/corpus beside the repository (or BULKHEAD_CORPUS) and
# /usr/bin/time (apt-get install -y time). With BULKHEAD_BENCH_DB=postgres
# the store is a throwaway PostgreSQL cluster (Debian's postgresql package,
# fsync on, as in production) started in a temporary directory and stopped
# at the end; the process figures are then the re-evaluating process's
# only, and the server's CPU is printed beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-1000}
packages=${2:-300}
corpus=${BULKHEAD_CORPUS:-../shared/corpus}
[ -d "$corpus/pkgdb" ] || { echo "no corpus at $corpus: set BULKHEAD_CORPUS" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/reevalbench" ./tools/reevalbench
store="$work/server.db"
pgcpu() { :; }
if [ "${BULKHEAD_BENCH_DB:-sqlite}" = postgres ]; then
  pgbin=${BULKHEAD_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
  [ -x "$pgbin/postgres" ] || { echo "no PostgreSQL binaries (apt-get install -y postgresql, or set BULKHEAD_PG_BINDIR)" >&2; exit 1; }
  pg=$(mktemp -d /tmp/bulkhead-reevalbench-pg.XXXXXX)
  as=()
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg"; as=(runuser -u postgres --); fi
  "${as[@]}" "$pgbin/initdb" -D "$pg/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
  "${as[@]}" "$pgbin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -o "-k $pg -c listen_addresses= -c max_connections=200" start >/dev/null
  trap '"${as[@]}" "$pgbin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1; rm -rf "$work" "$pg"' EXIT
  "${as[@]}" "$pgbin/createdb" -h "$pg" -U postgres bench
  store="postgres:///bench?host=$pg&user=postgres&sslmode=disable"
  # The CPU ticks the PostgreSQL server used so far: the postmaster with its
  # ended children (cutime, cstime) and its living children.
  pgcpu() {
    local t=0 p
    for p in $(pgrep -u postgres -f "$pg" 2>/dev/null) $(pgrep -P "$(head -1 "$pg/data/postmaster.pid")" 2>/dev/null); do
      [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{ print $14 + $15 + $16 + $17 }' "/proc/$p/stat")))
    done
    echo "$t"
  }
  echo "== store: PostgreSQL $("$pgbin/postgres" --version | awk '{ print $3 }') in $pg (fsync on)"
fi

echo "== populate: $images images of $packages packages (not timed as part of the re-evaluation)"
"$work/reevalbench" populate -store "$store" -vulndb "$work/osv.db" -corpus "$corpus" -images "$images" -packages "$packages"
[ -f "$store" ] && ls -l "$store" | awk '{ printf "store size: %.1f MB\n", $5 / 1e6 }'
echo "== advisory"
"$work/reevalbench" advisory -vulndb "$work/osv.db"
timed() {
  local c0
  c0=$(pgcpu)
  /usr/bin/time -v "$@" 2>"$work/time.txt"
  [ -n "$c0" ] && echo "PostgreSQL server: $(( ($(pgcpu) - c0) / $(getconf CLK_TCK) )) CPU-s (the postmaster and its backends, ended ones included)"
  awk -F': ' '
    /Elapsed \(wall clock\)/ { wall = $2 }
    /User time/ { user = $2 }
    /System time/ { sys = $2 }
    /Percent of CPU/ { cpu = $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "process: wall %s, CPU user %s s + system %s s (%s of one core), peak RSS %.0f MB\n", wall, user, sys, cpu, rss / 1024 }' "$work/time.txt"
}
echo "== re-evaluation (bulkhead server, no image pulled): every image rewritten with the new database information"
timed "$work/reevalbench" run -store "$store" -vulndb "$work/osv.db"
echo "== another advisory, re-evaluation with KeepInfo (only the images whose findings changed are written)"
"$work/reevalbench" advisory -vulndb "$work/osv.db" -id BULKBENCH-2026-0002
timed "$work/reevalbench" run -keep-info -store "$store" -vulndb "$work/osv.db"
echo "== for comparison: bulkhead rescanning from scratch (pipeline.Run, image already local)"
refs=("oci-archive:testdata/images/alpine-demo.oci.tar")
for f in alpine-with-packages alpine; do
  p="$corpus/images/docker-save/scalibr-layerscanning/$f.tar.gz"
  [ -f "$p" ] && refs+=("docker-archive:$p")
done
"$work/reevalbench" rescan -vulndb "$work/osv.db" "${refs[@]}"
echo "(trivy/grype rescans are not measurable offline; a registry pull would come on top of the rescan time)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
