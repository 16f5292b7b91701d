#!/usr/bin/env bash
# Language ecosystems: scan-time cost and a package-by-package comparison
# with syft, on an image with ~1,000 npm packages and several Go binaries.
#
#   bench/languages.sh [RUNS]
#
# (a) Scan time, best of RUNS (default 3):
#     - in-process, the same image walked once with the OS catalogers only
#       (apk, dpkg, rpm) and once with every cataloger: the cost of the
#       language catalogers themselves (the issue's +20% target);
#     - the CLI (`bulkhead image --scanners none`) on the image and on its
#       OS-only base: what a user sees, including the walk over the extra
#       layers' bytes.
# (b) syft v1.57.1 on the same image: what each finds that the other misses,
#     per ecosystem, compared by purl type + name + version (Maven by
#     artifactId, since syft names Java packages by artifact only).
#
# Needs root, podman and debootstrap (scripts/setup-test-env.sh), the npm
# registry and the Go module proxy (prepared inputs are cached under
# /var/cache/bulkhead-e2e); builds syft v1.57.1 from the Go module proxy on
# first use (~10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${1:-3}
work=${BENCH_DIR:-/var/tmp/bulkhead-bench}/languages
mkdir -p "$work"
scripts/setup-test-env.sh
export GOWORK=off GOTOOLCHAIN=local

# Well-known tools whose transitive trees add up to ~1,000 packages.
npm_pkgs="@angular/cli@18.2.1 jest@29.7.0 webpack@5.94.0 webpack-cli@5.1.4 eslint@8.57.0 @babel/core@7.25.2 @babel/preset-env@7.25.4 typescript@5.5.4 express@4.21.2 gulp@4.0.2 mocha@10.7.3"
go_tools="github.com/google/go-containerregistry/cmd/crane@v0.20.2 golang.org/x/tools/cmd/stringer@v0.52.0"
recipe_hash=$(printf 'v1\n%s\n%s\n' "$npm_pkgs" "$go_tools" | sha256sum | cut -c1-12)
inputs=/var/cache/bulkhead-e2e/bench-languages-$recipe_hash

base_src=localhost/bench-debian-base:bookworm
cache=/var/cache/bulkhead-e2e/debian-bookworm-minbase.tar
if ! podman image exists "$base_src"; then
  if [ ! -f "$cache" ]; then
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian
    mkdir -p "$(dirname "$cache")"
    tar -C "$work/rootfs" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
    rm -rf "$work/rootfs"
  fi
  podman import -q "$cache" "$base_src" >/dev/null
fi

if [ ! -f "$inputs/ctx/Containerfile" ]; then
  echo "preparing inputs in $inputs (npm registry, Go module proxy; once)" >&2
  rm -rf "$inputs.tmp" && mkdir -p "$inputs.tmp/ctx/app" "$inputs.tmp/ctx/gobin"
  (
    cd "$inputs.tmp/ctx/app"
    echo '{"name":"bench-app","version":"1.0.0","private":true}' > package.json
    # shellcheck disable=SC2086
    npm install --no-audit --no-fund --ignore-scripts --loglevel=error $npm_pkgs >/dev/null
  )
  # Go binaries: bulkhead, two tools from the module proxy, and the Go
  # toolchain's own go, gofmt, compile, link and vet.
  go build -o "$inputs.tmp/ctx/gobin/bulkhead" ./cmd/bulkhead
  for tool in $go_tools; do GOBIN="$inputs.tmp/ctx/gobin" GOFLAGS= go install "$tool"; done
  goroot=$(go env GOROOT) tooldir=$(go env GOTOOLDIR)
  cp "$goroot/bin/go" "$goroot/bin/gofmt" "$tooldir/compile" "$tooldir/link" "$tooldir/vet" "$inputs.tmp/ctx/gobin/"
  cat > "$inputs.tmp/ctx/Containerfile" <<CF
FROM $base_src
COPY app /srv/app
COPY gobin /usr/local/bin
CF
  rm -rf "$inputs" && mv "$inputs.tmp" "$inputs"
fi
img=localhost/bench-languages:$recipe_hash
podman image exists "$img" || podman build --network=none -q -t "$img" "$inputs/ctx" >/dev/null

archive=$work/languages-$recipe_hash.oci.tar
base_archive=$work/base.oci.tar
[ -f "$archive" ] || podman save -q --format oci-archive -o "$archive" "$img"
[ -f "$base_archive" ] || podman save -q --format oci-archive -o "$base_archive" "$base_src"

npm_count=$(node -e "const p = require(process.argv[1]).packages; delete p['']; console.log(Object.keys(p).length + ' installed, ' + new Set(Object.entries(p).map(([k, v]) => (v.name || k.slice(k.lastIndexOf('node_modules/') + 13)) + '@' + v.version)).size + ' distinct name@version')" "$inputs/ctx/app/package-lock.json")
go_count=$(ls "$inputs/ctx/gobin" | wc -l)
echo "image: $img: base + node_modules (npm packages: $npm_count; $(du -sm "$inputs/ctx/app" | cut -f1) MB) + $go_count Go binaries ($(du -sm "$inputs/ctx/gobin" | cut -f1) MB)"
echo "archives: image $(du -m "$archive" | cut -f1) MB, base $(du -m "$base_archive" | cut -f1) MB"

go build -o "$work/bulkhead" ./cmd/bulkhead

# The in-process harness: one walk of the same image, OS catalogers only vs
# all. It lives outside the tree and is built in the repo's module.
mkdir -p "$work/langscan"
cat > "$work/langscan/main.go" <<'GO'
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/all"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/scan"
)

// cpu is the process's user+system time: less disturbed than wall time when
// other work shares the machine.
func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	archive, runs := os.Args[1], 3
	if len(os.Args) > 2 {
		runs, _ = strconv.Atoi(os.Args[2])
	}
	osOnly := func() []catalog.Cataloger {
		var out []catalog.Cataloger
		for _, c := range all.Catalogers() {
			switch c.Name() {
			case "apk", "dpkg", "rpm":
				out = append(out, c)
			}
		}
		return out
	}
	best, bestCPU := map[string]time.Duration{}, map[string]time.Duration{}
	count := map[string]int{}
	for i := 0; i < runs; i++ {
		for _, mode := range []string{"os-only", "all"} {
			cats := all.Catalogers()
			if mode == "os-only" {
				cats = osOnly()
			}
			start, c0 := time.Now(), cpu()
			img, err := image.OpenArchive(archive, image.Options{})
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			res, err := scan.Image(context.Background(), img, scan.Options{Catalogers: cats})
			img.Close()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			d, c := time.Since(start), cpu()-c0
			fmt.Fprintf(os.Stderr, "  in-process %-7s run %d: wall %.2fs, cpu %.2fs, %d packages\n", mode, i+1, d.Seconds(), c.Seconds(), len(res.Inventory.Packages))
			if b, ok := best[mode]; !ok || d < b {
				best[mode] = d
			}
			if b, ok := bestCPU[mode]; !ok || c < b {
				bestCPU[mode] = c
			}
			count[mode] = len(res.Inventory.Packages)
		}
	}
	pct := func(a, b time.Duration) float64 { return 100 * (a.Seconds() - b.Seconds()) / b.Seconds() }
	fmt.Printf("in-process, same image, best of %d: OS catalogers only (%d packages) wall %.2fs cpu %.2fs; all catalogers (%d packages) wall %.2fs cpu %.2fs: +%.1f%% wall, +%.1f%% cpu (target <= +20%%)\n",
		runs, count["os-only"], best["os-only"].Seconds(), bestCPU["os-only"].Seconds(), count["all"], best["all"].Seconds(), bestCPU["all"].Seconds(),
		pct(best["all"], best["os-only"]), pct(bestCPU["all"], bestCPU["os-only"]))
}
GO
go build -o "$work/langscan.bin" "$work/langscan/main.go"
echo
echo "=== scan time"
"$work/langscan.bin" "$archive" "$runs"

measure() { # name cmd...: writes to $work/measure.out the best wall time and the best CPU time (user+sys) of $runs runs
  local name=$1; shift
  local best=999999 best_cpu=999999
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %M %U %S" -o "$work/time.txt" "$@" >/dev/null 2>"$work/err.txt" || { cat "$work/err.txt" >&2; exit 1; }
    read -r t rss u s < "$work/time.txt"
    c=$(awk -v u="$u" -v s="$s" 'BEGIN{printf "%.2f", u+s}')
    echo "  $name run $i: wall ${t}s, cpu ${c}s, peak RSS $((rss/1024)) MB" >&2
    if awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
    if awk "BEGIN{exit !($c < $best_cpu)}"; then best_cpu=$c; fi
  done
  echo "$best $best_cpu" > "$work/measure.out"
}
measure "cli base " "$work/bulkhead" image --quiet --scanners none --format json --input "$base_archive" --output "$work/base.json"
read -r t_base c_base < "$work/measure.out"
measure "cli image" "$work/bulkhead" image --quiet --scanners none --format json --input "$archive" --output "$work/bulkhead.json"
read -r t_img c_img < "$work/measure.out"
awk -v b="$t_base" -v i="$t_img" -v cb="$c_base" -v ci="$c_img" 'BEGIN{printf "CLI, best of runs: base (OS only) wall %.2fs cpu %.2fs; image with the language content wall %.2fs cpu %.2fs: +%.1f%% wall, +%.1f%% cpu (includes walking the extra layers)\n", b, cb, i, ci, 100*(i-b)/b, 100*(ci-cb)/cb}'

syft=$(command -v syft || true)
[ -n "$syft" ] || syft="$(go env GOPATH)/bin/syft"
if [ ! -x "$syft" ]; then
  echo "building syft v1.57.1 (once, ~10 minutes)..." >&2
  GOFLAGS= go install github.com/anchore/syft/cmd/syft@v1.57.1
fi
export SYFT_CHECK_FOR_APP_UPDATE=false
measure "syft     " "$syft" scan -q "oci-archive:$archive" -o "syft-json=$work/syft.json"
read -r t_syft c_syft < "$work/measure.out"
echo "syft v1.57.1 on the image: wall ${t_syft}s cpu ${c_syft}s (bulkhead CLI wall ${t_img}s cpu ${c_img}s)"
echo
echo "=== syft vs bulkhead on $img"

# Compare by purl type + name + version.
compare() { # bulkhead.json syft.json
python3 - "$1" "$2" <<'PY'
import json, re, sys, collections
from urllib.parse import unquote

def key(purl):
    """(type, name, version) from a purl; Maven by artifactId, Go stdlib
    without syft's "go" prefix, PyPI names PEP 503-normalised."""
    if not purl or not purl.startswith("pkg:"):
        return None
    p = purl[4:].split("?")[0].split("#")[0]
    typ, _, rest = p.partition("/")
    path, at, version = rest.rpartition("@")
    if not at:  # no version (syft's main modules without one)
        path, version = rest, ""
    path, version = unquote(path), unquote(version)
    name = path
    if typ == "maven":
        name = path.rsplit("/", 1)[-1]
    if typ == "golang" and name == "stdlib":
        version = version.removeprefix("go")
    if typ == "golang" and version in ("", "UNKNOWN", "(devel)"):
        # A main module built outside a tagged checkout: the toolchain
        # writes "(devel)", syft reports UNKNOWN.
        version = "(devel)"
    if typ == "pypi":
        name = re.sub(r"[-_.]+", "-", name).lower()
    if typ == "deb":
        name = path.rsplit("/", 1)[-1]
    return typ, name, version

bh = json.load(open(sys.argv[1]))
bh = bh.get("inventory", bh)
ours = {}
for p in bh["packages"]:
    k = key(p.get("purl"))
    if k:
        ours.setdefault(k, p["locations"][0]["path"])
theirs = {}
for a in json.load(open(sys.argv[2]))["artifacts"]:
    k = key(a.get("purl"))
    if k:
        theirs.setdefault(k, (a["locations"][0]["path"] if a.get("locations") else "", a.get("type")))

types = sorted({k[0] for k in ours} | {k[0] for k in theirs})
print("\nper ecosystem (purl type): bulkhead / syft / both")
for t in types:
    o = {k for k in ours if k[0] == t}
    s = {k for k in theirs if k[0] == t}
    print(f"  {t:10} {len(o):5} {len(s):5} {len(o & s):5}")
for t in types:
    miss = sorted(k for k in theirs if k[0] == t and k not in ours)
    extra = sorted(k for k in ours if k[0] == t and k not in theirs)
    if miss:
        print(f"\nsyft finds, bulkhead misses ({t}, {len(miss)}):")
        for k in miss:
            print(f"  {k[1]} {k[2]}   [{theirs[k][1]} at {theirs[k][0]}]")
    if extra:
        print(f"\nbulkhead finds, syft misses ({t}, {len(extra)}):")
        for k in extra:
            print(f"  {k[1]} {k[2]}   [at {ours[k]}]")
PY
}
compare "$work/bulkhead.json" "$work/syft.json"

# The image of the e2e language test (Python dist-info and egg-info, jars, a
# war in an ear, gemspecs, npm, Go), for the ecosystems the image above lacks.
e2e=$(podman images --format '{{.Repository}}:{{.Tag}}' localhost/e2e-languages | head -1)
if [ -z "$e2e" ]; then
  echo "building the e2e language image (go test ./e2e -run TestLanguagesMatchNativeTools)..." >&2
  go test ./e2e -run TestLanguagesMatchNativeTools -count=1 >/dev/null
  e2e=$(podman images --format '{{.Repository}}:{{.Tag}}' localhost/e2e-languages | head -1)
fi
e2e_archive=$work/e2e-languages.oci.tar
rm -f "$e2e_archive" && podman save -q --format oci-archive -o "$e2e_archive" "$e2e"
"$work/bulkhead" image --quiet --scanners none --format json --input "$e2e_archive" --output "$work/e2e-bulkhead.json"
"$syft" scan -q "oci-archive:$e2e_archive" -o "syft-json=$work/e2e-syft.json"
echo
echo "=== syft vs bulkhead on $e2e"
compare "$work/e2e-bulkhead.json" "$work/e2e-syft.json"
