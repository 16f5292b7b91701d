#!/usr/bin/env bash
# Image -> CycloneDX SBOM: wall time and peak RSS of bulkhead and syft on the
# same ~100 MB-compressed multi-layer Debian image (oci-archive).
#
#   bench/inventory.sh [RUNS]
#
# Needs root, podman and debootstrap (scripts/setup-test-env.sh); builds syft
# v1.57.1 from the Go module proxy on first use (~10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=${BENCH_DIR:-/var/tmp/bulkhead-bench}
mkdir -p "$work"
scripts/setup-test-env.sh

base=localhost/bench-debian-base:bookworm
img=localhost/bench-debian:1
cache=/var/cache/bulkhead-e2e/debian-bookworm-minbase.tar
if ! podman image exists "$img"; then
  if ! podman image exists "$base"; then
    if [ ! -f "$cache" ]; then
      debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian
      mkdir -p "$(dirname "$cache")"
      tar -C "$work/rootfs" -cf "$cache.tmp" . && mv "$cache.tmp" "$cache"
      rm -rf "$work/rootfs"
    fi
    podman import -q "$cache" "$base" >/dev/null
  fi
  ctx=$(mktemp -d)
  # Extra layers: a package purged, then a layer of real files (Perl's
  # library from this machine) so the image has several layers and whiteouts.
  cp -r /usr/share/perl "$ctx/perl"
  cat > "$ctx/Containerfile" <<CF
FROM $base
RUN dpkg --purge --force-depends --force-remove-essential e2fsprogs libss2 logsave
COPY perl /opt/perl
RUN rm -rf /opt/perl/5.36*/unicore && useradd -u 10001 app
USER app
CF
  podman build --network=none -q -t "$img" "$ctx" >/dev/null
  rm -rf "$ctx"
fi
archive="$work/debian.oci.tar"
[ -f "$archive" ] || podman save -q --format oci-archive -o "$archive" "$img"

GOFLAGS= go build -o "$work/bulkhead" ./cmd/bulkhead
syft=$(command -v syft || true)
[ -n "$syft" ] || syft="$(go env GOPATH)/bin/syft"
if [ ! -x "$syft" ]; then
  echo "building syft v1.57.1 (once)..." >&2
  GOFLAGS= go install github.com/anchore/syft/cmd/syft@v1.57.1
fi

size=$(du -m "$archive" | cut -f1)
layers=$(tar -xOf "$archive" index.json >/dev/null 2>&1 && echo "$(podman inspect --format '{{len .RootFS.Layers}}' "$img")")
echo "image: $img, oci-archive $size MB, $layers layers"

measure() { # name cmd...
  local name=$1; shift
  local best_t=999999 best_rss=0
  for i in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$work/time.txt" "$@" >/dev/null 2>"$work/err.txt" || { cat "$work/err.txt" >&2; exit 1; }
    read -r t rss < "$work/time.txt"
    echo "  $name run $i: ${t}s, peak RSS $((rss/1024)) MB" >&2
    if awk "BEGIN{exit !($t < $best_t)}"; then best_t=$t; fi
    if [ "$rss" -gt "$best_rss" ]; then best_rss=$rss; fi
  done
  printf "%-10s best wall %6.2fs   max peak RSS %5d MB\n" "$name" "$best_t" "$((best_rss/1024))"
  echo "$best_t" > "$work/$name.t"
}
measure bulkhead "$work/bulkhead" image --quiet --scanners none --input "$archive" --format cyclonedx --output "$work/bulkhead.cdx.json"
export SYFT_CHECK_FOR_APP_UPDATE=false
measure syft "$syft" scan -q "oci-archive:$archive" -o "cyclonedx-json=$work/syft.cdx.json"
# syft also catalogues every file's metadata by default; this run turns that
# off, for a packages-only comparison.
SYFT_FILE_METADATA_SELECTION=none measure syft-pkgs "$syft" scan -q "oci-archive:$archive" -o "cyclonedx-json=$work/syft-pkgs.cdx.json"
awk -v b="$(cat "$work/bulkhead.t")" -v s="$(cat "$work/syft.t")" -v p="$(cat "$work/syft-pkgs.t")" \
  'BEGIN{printf "bulkhead/syft wall time: %.2f (default syft), %.2f (syft without file metadata); target <= 0.33\n", b/s, b/p}'
count() { python3 -c "import json,sys,collections; d=json.load(open(sys.argv[1])); print(dict(collections.Counter(c['type'] for c in d.get('components',[]))))" "$1"; }
echo "components: bulkhead $(count "$work/bulkhead.cdx.json"); syft $(count "$work/syft.cdx.json"); syft-pkgs $(count "$work/syft-pkgs.cdx.json")"
