#!/usr/bin/env bash
# Image archives at the hardware limit (issue 18): bulkhead next to trivy on
# the same archives, side by side in one run, medians of N runs.
#
#   bench/archive.sh [RUNS]          (default 5)
#
# It builds, once, under $BENCH_DIR (default /var/tmp/bulkhead-bench-archive):
#   - debian-npm-go.docker.tar: a ~250 MB docker-archive with 5 layers, one big
#     (~224 MB: a Debian bookworm root filesystem plus the go and gofmt binaries),
#     then node_modules from the npm registry, the app's package files, a Go
#     binary, a config file. Built with podman from a Containerfile.
#   - debian-npm-go.oci.tar: the same image as an oci-archive (gzip layers).
#   - random-2g.docker.tar: a 2 GB image, one layer of random files.
# and measures:
#   - bulkhead image (with vulnerability matching, CycloneDX out) vs trivy
#     image --input X --format cyclonedx, wall time median of RUNS, user CPU
#     and peak RSS;
#   - the oci-archive's largest layer alone: gunzip + sha256 with bulkhead's
#     inflater (klauspost/compress) and with the standard library
#     (compress/gzip), median of RUNS;
#   - peak RSS of bulkhead on the 2 GB image.
#
# trivy v0.74.0 is built from the Go module proxy (GOEXPERIMENT=jsonv2,
# 17-40 minutes on 2 cores) and cached at $TRIVY_CACHE (default
# /var/cache/bulkhead-bench/trivy-v0.74.0/trivy). Without a trivy vulnerability
# DB in its cache dir it runs packages only (--scanners none... see "trivy
# mode" below); the mode compared is printed.
#
# The Debian base comes from the local podman image
# localhost/bulkhead-bench-debian:bookworm when present, else from
# debootstrap --variant=minbase (about 4 minutes, Debian's mirror).
# Needs root, podman (see ../shared/notes/machine.md), npm, /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
runs=${1:-5}
work=${BENCH_DIR:-/var/tmp/bulkhead-bench-archive}
trivy=${TRIVY:-${TRIVY_CACHE:-/var/cache/bulkhead-bench/trivy-v0.74.0/trivy}}
mkdir -p "$work"
export BULKHEAD_CACHE_DIR="$work/cache"
[ -x /usr/bin/time ] || apt-get install -y time >/dev/null

# ---------------------------------------------------------------- trivy
if [ ! -x "$trivy" ]; then
  echo "building trivy v0.74.0 (once, 17-40 minutes) into $trivy ..." >&2
  mkdir -p "$(dirname "$trivy")"
  gobin=$(mktemp -d)
  GOTOOLCHAIN=local GOEXPERIMENT=jsonv2 GOBIN=$gobin GOFLAGS=-mod=mod \
    nice -n 10 go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0
  mv "$gobin/trivy" "$trivy"
  rmdir "$gobin"
fi

# ---------------------------------------------------------------- bulkhead
# Installed with cp, as a package or a download would be: a binary fresh
# from the linker sits in the page cache in large folios, which this kernel
# maps whole (2 MB at a time) and counts in the peak RSS (about 28 MB more
# for the same binary, seen with /usr/bin/time -v).
GOFLAGS= go build -o "$work/bulkhead.new" ./cmd/bulkhead
cp "$work/bulkhead.new" "$work/bulkhead" && rm "$work/bulkhead.new"
GOFLAGS= go build -o "$work/inflate" ./bench/inflate
bh=$work/bulkhead
if [ -n "${BEFORE:-}" ]; then # an older bulkhead to compare with, copied likewise
  cp "$BEFORE" "$work/bulkhead-before" && BEFORE=$work/bulkhead-before
fi

# ---------------------------------------------------------------- images
debian=localhost/bulkhead-bench-debian:bookworm
if ! podman image exists "$debian"; then
  echo "no $debian: debootstrap --variant=minbase bookworm (about 4 minutes)" >&2
  rm -rf "$work/debootstrap"
  debootstrap --variant=minbase bookworm "$work/debootstrap" http://deb.debian.org/debian >/dev/null
  tar -C "$work/debootstrap" -c . | podman import - "$debian" >/dev/null
  rm -rf "$work/debootstrap"
fi

img=$work/debian-npm-go.docker.tar
oci=$work/debian-npm-go.oci.tar
if [ ! -f "$img" ] || [ ! -f "$oci" ]; then
  ctx=$work/ctx
  rm -rf "$ctx" && mkdir -p "$ctx/root/usr/local/go/bin" "$ctx/app" "$ctx/gobin" "$ctx/etc"
  # The big layer: Debian's root filesystem plus the go and gofmt binaries
  # (Go executables with build info; the rest are Debian's non-Go
  # executables).
  cid=$(podman create "$debian" /bin/true)
  podman export "$cid" | tar -C "$ctx/root" -x
  podman rm "$cid" >/dev/null
  goroot=$(go env GOROOT)
  cp "$goroot/bin/go" "$goroot/bin/gofmt" "$ctx/root/usr/local/go/bin/"
  tar -C "$ctx/root" -cf "$ctx/big.tar" .
  rm -rf "$ctx/root"
  # npm packages from the npm registry (cached).
  if [ ! -d "$work/npm/node_modules" ]; then
    mkdir -p "$work/npm"
    (cd "$work/npm" && npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
      express@4.18.2 lodash@4.17.20 minimist@1.2.5 axios@0.21.1 moment@2.29.1 jsonwebtoken@8.5.1 \
      react@18.2.0 react-dom@18.2.0 >/dev/null)
  fi
  cp -r "$work/npm/node_modules" "$work/npm/package.json" "$work/npm/package-lock.json" "$ctx/app/"
  GOFLAGS= CGO_ENABLED=0 go build -o "$ctx/gobin/bulkhead-inflate" ./bench/inflate
  printf 'listen: 0.0.0.0:8080\n' >"$ctx/etc/app.yaml"
  cat >"$ctx/Containerfile" <<'EOF'
FROM scratch
ADD big.tar /
COPY app/node_modules /srv/app/node_modules
COPY app/package.json app/package-lock.json /srv/app/
COPY gobin/ /usr/local/bin/
COPY etc/app.yaml /etc/app/app.yaml
WORKDIR /srv/app
CMD ["/bin/bash"]
EOF
  podman build -q -t localhost/bulkhead-bench-archive:1 "$ctx" >/dev/null
  rm -f "$img" "$oci"
  podman save -q --format docker-archive -o "$img" localhost/bulkhead-bench-archive:1
  # podman push to an oci-archive gzips the layers (podman save would
  # write them as stored, uncompressed).
  podman push -q localhost/bulkhead-bench-archive:1 "oci-archive:$oci"
  rm -rf "$ctx"
fi

big2=$work/random-2g.docker.tar
if [ ! -f "$big2" ]; then
  root=$work/random2g
  rm -rf "$root" && mkdir -p "$root/data"
  # 2 GiB of random files: 1,900 of 1 MiB, 12 of 12 MiB, one of 100 MiB.
  for d in $(seq 0 18); do
    mkdir -p "$root/data/$d"
    for f in $(seq 0 99); do head -c 1048576 /dev/urandom >"$root/data/$d/$f.bin"; done
  done
  for f in $(seq 0 11); do head -c $((12 << 20)) /dev/urandom >"$root/data/mid-$f.bin"; done
  head -c $((100 << 20)) /dev/urandom >"$root/data/big.bin"
  tar -C "$root" -c . | podman import -q - localhost/bulkhead-bench-random:2g >/dev/null
  rm -rf "$root"
  podman save -q --format docker-archive -o "$big2" localhost/bulkhead-bench-random:2g
  podman rmi -f localhost/bulkhead-bench-random:2g >/dev/null
fi

# ---------------------------------------------------------------- measures
# One run of a command: "wall_s user_s maxrss_kb" (GNU time), output dropped.
run1() {
  local out
  out=$(mktemp)
  if /usr/bin/time -f '%e %U %M' -o "$out" "$@" >/dev/null 2>"$out.err"; then
    cat "$out"
  else
    echo "FAILED: $*" >&2; tail -3 "$out.err" >&2
  fi
  rm -f "$out" "$out.err"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# Peak anonymous memory (RssAnon, kB) of one run, sampled every 10 ms: the
# peak RSS above also counts the executable's own pages, which this kernel
# maps in 2 MB folios (about 80 MB for bulkhead's 120 MB binary).
peak_anon() {
  "$@" >/dev/null 2>&1 &
  local pid=$! peak=0 v
  while kill -0 "$pid" 2>/dev/null; do
    v=$(awk '/^RssAnon/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
    sleep 0.01
  done
  wait "$pid" || true
  echo "$peak"
}
# side_by_side LABEL_A "CMD A" LABEL_B "CMD B": runs A and B alternately,
# $runs times each, and prints median wall, median user CPU, peak RSS range.
side_by_side() {
  local la=$1 ca=$2 lb=$3 cb=$4 i
  local fa fb
  fa=$(mktemp) fb=$(mktemp)
  for i in $(seq "$runs"); do
    run1 $ca >>"$fa"
    run1 $cb >>"$fb"
  done
  local names=("$la" "$lb") files=("$fa" "$fb") k
  for k in 0 1; do
    local f=${files[$k]} name=${names[$k]}
    if [ ! -s "$f" ]; then printf '  %-58s FAILED (every run)\n' "$name"; continue; fi
    printf '  %-58s wall %6.2f s (median; %s..%s)  user %5.2f s  peak RSS %s..%s MB\n' "$name" \
      "$(cut -d' ' -f1 "$f" | median)" "$(cut -d' ' -f1 "$f" | sort -n | head -1)" "$(cut -d' ' -f1 "$f" | sort -n | tail -1)" \
      "$(cut -d' ' -f2 "$f" | median)" \
      "$(( $(cut -d' ' -f3 "$f" | sort -n | head -1) / 1024 ))" "$(( $(cut -d' ' -f3 "$f" | sort -n | tail -1) / 1024 ))"
  done
  local ra rb
  ra=$(cut -d' ' -f1 "$fa" | median) rb=$(cut -d' ' -f1 "$fb" | median)
  [ -n "$ra" ] && [ -n "$rb" ] && printf '  ratio %s / %s = %.2f\n' "$la" "$lb" "$(echo "$ra / $rb" | bc -l)"
  rm -f "$fa" "$fb"
}

# trivy's vulnerability DB: used when one is in its cache, else packages only.
tcache=$work/trivy-cache
tflags="--cache-dir $tcache --skip-db-update --skip-java-db-update --offline-scan --skip-version-check --disable-telemetry --cache-backend memory -q --format cyclonedx -o /dev/null"
if [ -f "$tcache/db/trivy.db" ]; then
  tmode="--scanners vuln"; tdesc="trivy 0.74 (vulnerabilities, offline DB)"
else
  tmode="" # with --format cyclonedx trivy lists packages and scans nothing
  tdesc="trivy 0.74 (packages only: no vuln DB)"
fi
"$bh" image -q --input "$img" -f cyclonedx -o /dev/null # warm bulkhead's DB
# trivy --input takes a docker-archive tar or an OCI layout directory, not an
# oci-archive tar: it gets the same archive unpacked.
ocidir=$work/debian-npm-go.oci
if [ ! -f "$ocidir/index.json" ] || [ "$oci" -nt "$ocidir/index.json" ]; then
  rm -rf "$ocidir" && mkdir -p "$ocidir" && tar -C "$ocidir" -xf "$oci"
fi
out=$work/out; mkdir -p "$out"

echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $(du -m "$img" | cut -f1) MB docker-archive, $(du -m "$oci" | cut -f1) MB oci-archive, $(du -m "$big2" | cut -f1) MB 2 GB image; medians of $runs"
echo "docker-archive (5 layers, largest $(( $(tar -tvf "$img" | awk '{print $3}' | sort -n | tail -1) >> 20 )) MB):"
side_by_side "bulkhead image (vuln matching, cyclonedx)" "$bh image -q --input $img -f cyclonedx -o /dev/null" \
  "$tdesc" "$trivy image --input $img $tmode $tflags"
# Like for like: without a trivy DB, trivy lists packages and matches
# nothing, so bulkhead is also timed with --scanners none (inventory and
# SBOM only). trivy's own time moves from run to run (0.46-0.85 s in one
# run of 15 on this machine), and the ratio with it.
[ -z "$tmode" ] && side_by_side "bulkhead image --scanners none (packages only)" "$bh image -q --scanners none --input $img -f cyclonedx -o /dev/null" \
  "$tdesc" "$trivy image --input $img $tflags"
if [ -n "${BEFORE:-}" ]; then
  side_by_side "bulkhead before (vuln matching, cyclonedx)" "$BEFORE image -q --input $img -f cyclonedx -o /dev/null" \
    "bulkhead now" "$bh image -q --input $img -f cyclonedx -o /dev/null"
fi
echo "oci-archive (gzip layers):"
side_by_side "bulkhead image (vuln matching, cyclonedx)" "$bh image -q --input $oci -f cyclonedx -o /dev/null" \
  "$tdesc (same, unpacked)" "$trivy image --input $ocidir $tmode $tflags"
echo "oci-archive's largest layer alone (open the archive, read the blob, sha256 of it, inflate):"
side_by_side "bulkhead's layer stream (klauspost/compress gzip)" "$work/inflate -lib bulkhead $oci" \
  "compress/gzip + crypto/sha256" "$work/inflate -lib stdlib $oci"
for lib in bulkhead stdlib; do
  for i in $(seq "$runs"); do "$work/inflate" -lib $lib "$oci"; done | awk -v l=$lib '{print $(NF-1)}' | median | xargs printf "  in-process time, %-8s %s s (median)\n" "$lib"
done
echo "2 GB image (one layer of random files):"
for i in $(seq 3); do run1 "$bh" image -q --input "$big2" -f cyclonedx -o /dev/null; done | \
  awk '{printf "  bulkhead: wall %.2f s, user %.2f s, peak RSS %d MB\n", $1, $2, $3/1024}'
[ -n "${BEFORE:-}" ] && run1 "$BEFORE" image -q --input "$big2" -f cyclonedx -o /dev/null | \
  awk '{printf "  bulkhead before: wall %.2f s, user %.2f s, peak RSS %d MB\n", $1, $2, $3/1024}'
echo "peak anonymous memory (RssAnon), one run each:"
for f in "$img" "$oci" "$big2"; do
  printf '  %-40s %d MB\n' "$(basename "$f")" "$(( $(peak_anon "$bh" image -q --input "$f" -f cyclonedx -o /dev/null) / 1024 ))"
done
echo
echo "== Go benchmarks (image: layer streams; walk)"
GOFLAGS= go test -run '^$' -bench 'BenchmarkLayerStream' -benchtime 5x ./image/ | grep -E '^(Benchmark|ok)'
