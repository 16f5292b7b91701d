#!/usr/bin/env bash
# End-to-end vulnerability scan of an image with a warm database, bulkhead
# next to osv-scanner (v2.5.1, offline, the same OSV records: the bundled
# snapshot's corpus), on the same docker-archive; and the matcher benchmark
# (10k packages).
#
#   bench/vuln.sh [IMAGE_ARCHIVE] [RUNS]
#
# Default image: the demo image (Alpine + Python, npm and Go packages).
# osv-scanner is built once (several minutes) by bench/match-osv-scanner.sh's
# recipe and cached in $(go env GOPATH)/bin.
set -euo pipefail
cd "$(dirname "$0")/.."
img=${1:-testdata/images/alpine-demo.oci.tar}
runs=${2:-5}
work=${BENCH_DIR:-/var/tmp/bulkhead-bench-vuln}
mkdir -p "$work"
corpus=${CORPUS:-../shared/corpus/osv}

GOFLAGS= go build -o "$work/bulkhead" ./cmd/bulkhead
osv="$(go env GOPATH)/bin/osv-scanner"
if ! "$osv" --version 2>/dev/null | grep -q 2.5.1; then
  echo "building osv-scanner v2.5.1 (once, several minutes)..." >&2
  GOTOOLCHAIN=local GOFLAGS=-mod=mod go install github.com/google/osv-scanner/v2/cmd/osv-scanner@v2.5.1
fi

# osv-scanner reads docker-archives; bulkhead reads either.
archive="$work/image.docker.tar"
if [ ! -f "$archive" ] || [ "$img" -nt "$archive" ]; then
  ref=$(podman load -i "$img" | sed -n 's/^Loaded image: //p' | head -1)
  podman save -q --format docker-archive -o "$archive" "$ref"
fi

# The same OSV records for both: one all.zip per ecosystem for osv-scanner
# (empty ones for ecosystems without data, which it otherwise fails on).
db="$work/osv-scanner-db/osv-scalibr"
if [ ! -d "$db" ]; then
  mkdir -p "$db"
  python3 - "$corpus" "$db" <<'PY'
import json, os, sys, zipfile, glob
corpus, out = sys.argv[1], sys.argv[2]
by = {}
for f in glob.glob(os.path.join(corpus, "**", "*.json"), recursive=True):
    if "/_" in f: continue
    try: rec = json.load(open(f))
    except Exception: continue
    ecos = {a.get("package", {}).get("ecosystem", "").split(":")[0] for a in rec.get("affected", [])}
    for e in ecos:
        if e: by.setdefault(e, {})[rec["id"]] = rec
for e in set(by) | {"Alpine", "Debian", "Ubuntu", "npm", "PyPI", "Go", "Maven", "crates.io", "NuGet", "RubyGems", "Packagist"}:
    os.makedirs(os.path.join(out, e), exist_ok=True)
    with zipfile.ZipFile(os.path.join(out, e, "all.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for i, r in by.get(e, {}).items():
            z.writestr(i + ".json", json.dumps(r))
PY
fi
export BULKHEAD_CACHE_DIR="$work/cache"
"$work/bulkhead" db status -q >/dev/null 2>&1 || true
"$work/bulkhead" image -q --input "$archive" --format json --db-max-age 0 -o "$work/bulkhead.json" # warm the DB

measure() { # name cmd...
  local name=$1; shift
  local best=999999 rss=0
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/err.txt" || true
    read -r t m < <(tail -1 "$work/time.txt")
    if awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if [ "$m" -gt "$rss" ]; then rss=$m; fi
  done
  printf "%-12s best wall %6.2fs   peak RSS %5d MB\n" "$name" "$best" "$((rss/1024))"
}
echo "image: $img ($(du -h "$archive" | cut -f1) docker-archive)"
measure bulkhead "$work/bulkhead" image -q --input "$archive" --format json --db-max-age 0 -o "$work/bulkhead.json"
measure osv-scanner "$osv" scan image --archive "$archive" --offline-vulnerabilities --local-db-path "$work/osv-scanner-db" --format json --output "$work/osv.json"
python3 - "$work/bulkhead.json" "$work/osv.json" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
pairs_b = {(f["package"]["name"], f["package"]["version"], f["id"]) for f in b.get("findings", []) if f.get("package")}
ids_b = {(n, v): set() for n, v, _ in pairs_b}
for f in b.get("findings", []):
    if f.get("package"):
        ids_b[(f["package"]["name"], f["package"]["version"])] |= {f["id"], *f.get("aliases", [])}
try:
    o = json.load(open(sys.argv[2]))
except Exception as e:
    print("osv-scanner output unreadable:", e); sys.exit(0)
pairs_o = set()
for r in o.get("results", []):
    for p in r.get("packages", []):
        pk = p.get("package", {})
        for v in p.get("vulnerabilities", []):
            pairs_o.add((pk.get("name"), pk.get("version"), v["id"]))
def covered(n, v, i):
    return i in ids_b.get((n, v), set()) or any(i == x[2] for x in pairs_b if x[0] == n)
missing = sorted(p for p in pairs_o if not covered(*p))
norm = lambda v: v[1:] if v.startswith("v") else v  # Go module versions: v0.3.5 vs 0.3.5
extra = sorted({(n, norm(v)) for n, v, i in pairs_b} - {(n, norm(v)) for n, v, i in pairs_o})
print(f"findings: bulkhead {len(pairs_b)} (package, advisory) pairs; osv-scanner {len(pairs_o)}; osv-scanner pairs bulkhead lacks: {missing or 'none'}")
print(f"packages with findings only bulkhead reports: {extra or 'none'}")
print("  (osv-scanner's image scan reads node packages from node_modules/.package-lock.json only; bulkhead reads each installed package.json)")
PY
go test -count=1 -run '^$' -bench 'Match10k' -benchtime 5x ./match/ | grep -E '^Benchmark'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
