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
#
# Needs ../shared/corpus beside the repository (or BULKHEAD_CORPUS) and
# /usr/bin/time (apt-get install -y time).
set -euo pipefail
cd "$(dirname "$0")/.."
images=${1:-1000}
packages=${2:-300}
corpus=${BULKHEAD_CORPUS:-../shared/corpus}
[ -d "$corpus/pkgdb" ] || { echo "no corpus at $corpus: set BULKHEAD_CORPUS" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/reevalbench" ./tools/reevalbench

echo "== populate: $images images of $packages packages (not timed as part of the re-evaluation)"
"$work/reevalbench" populate -store "$work/server.db" -vulndb "$work/osv.db" -corpus "$corpus" -images "$images" -packages "$packages"
ls -l "$work/server.db" | awk '{ printf "store size: %.1f MB\n", $5 / 1e6 }'
echo "== advisory"
"$work/reevalbench" advisory -vulndb "$work/osv.db"
timed() {
  /usr/bin/time -v "$@" 2>"$work/time.txt"
  awk -F': ' '
    /Elapsed \(wall clock\)/ { wall = $2 }
    /User time/ { user = $2 }
    /System time/ { sys = $2 }
    /Percent of CPU/ { cpu = $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "process: wall %s, CPU user %s s + system %s s (%s of one core), peak RSS %.0f MB\n", wall, user, sys, cpu, rss / 1024 }' "$work/time.txt"
}
echo "== re-evaluation (bulkhead server, no image pulled): every image rewritten with the new database information"
timed "$work/reevalbench" run -store "$work/server.db" -vulndb "$work/osv.db"
echo "== another advisory, re-evaluation with KeepInfo (only the images whose findings changed are written)"
"$work/reevalbench" advisory -vulndb "$work/osv.db" -id BULKBENCH-2026-0002
timed "$work/reevalbench" run -keep-info -store "$work/server.db" -vulndb "$work/osv.db"
echo "== for comparison: bulkhead rescanning from scratch (pipeline.Run, image already local)"
refs=("oci-archive:testdata/images/alpine-demo.oci.tar")
for f in alpine-with-packages alpine; do
  p="$corpus/images/docker-save/scalibr-layerscanning/$f.tar.gz"
  [ -f "$p" ] && refs+=("docker-archive:$p")
done
"$work/reevalbench" rescan -vulndb "$work/osv.db" "${refs[@]}"
echo "(trivy/grype rescans are not measurable offline; a registry pull would come on top of the rescan time)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
