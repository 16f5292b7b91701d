#!/usr/bin/env bash
# Image encryption throughput and memory: one image with a single layer of
# MB MiB of incompressible data (built by the benchmark, streamed to disk),
# encrypted and decrypted by bulkhead (in-process Go benchmark, then the CLI
# under /usr/bin/time -v for wall time and peak RSS) and by skopeo, the same
# image and key, in the same run. Also scans the encrypted image with
# --decryption-key (each layer decrypted once, in the walk).
#
#   bench/encrypt.sh [MB]       (default 200)
#
# Needs skopeo and /usr/bin/time (scripts/setup-test-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
mb=${1:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/img" "$work/tmp"
echo "== Go benchmark: encrypt + decrypt a ${mb} MiB layer ($(nproc) cores)"
BULKHEAD_BENCH_LAYER_MB=$mb BULKHEAD_BENCH_KEEP="$work/img" \
  go test -count=1 -run '^$' -bench '^BenchmarkEncryptDecrypt$' -benchtime 1x ./image/crypt 2>&1 | grep -vE '^(goos|goarch|pkg|cpu):'
go build -o "$work/bulkhead" ./cmd/bulkhead
img=$work/img
measure() { # label, command...
  local label=$1; shift
  rm -rf "$img/enc2" "$img/dec2" "$img/sk-enc2" "$img/sk-dec2"
  /usr/bin/time -v "$@" >"$work/out" 2>"$work/time" || { cat "$work/out" "$work/time"; exit 1; }
  printf '%-34s %8s s  %8s MiB peak RSS\n' "$label" \
    "$(awk -F': ' '/Elapsed \(wall clock\)/{print $2}' "$work/time")" \
    "$(awk -F': ' '/Maximum resident set size/{printf "%.0f", $2/1024}' "$work/time")"
}
echo
echo "== CLI, same image and keys (wall clock m:ss, peak RSS)"
measure "bulkhead encrypt" "$work/bulkhead" encrypt --temp-dir "$work/tmp" --key "jwe:$img/rsa-pub.pem" "oci:$img/src:big" "oci:$img/enc2:big"
cp -r "$img/enc2" "$img/enc-keep"
measure "bulkhead decrypt" "$work/bulkhead" decrypt --temp-dir "$work/tmp" --key "$img/rsa-priv.pem" "oci:$img/enc-keep:big" "oci:$img/dec2:big"
measure "skopeo copy --encryption-key" env TMPDIR="$work/tmp" skopeo --insecure-policy copy --encryption-key "jwe:$img/rsa-pub.pem" "oci:$img/src:big" "oci:$img/sk-enc2:big"
measure "skopeo copy --decryption-key" env TMPDIR="$work/tmp" skopeo --insecure-policy copy --decryption-key "$img/rsa-priv.pem" "oci:$img/enc-keep:big" "oci:$img/sk-dec2:big"
measure "bulkhead image (clear)" "$work/bulkhead" image -q --scanners vuln --temp-dir "$work/tmp" "oci:$img/src:big"
measure "bulkhead image --decryption-key" "$work/bulkhead" image -q --scanners vuln --temp-dir "$work/tmp" --decryption-key "$img/rsa-priv.pem" "oci:$img/enc-keep:big"
left=$(find "$work/tmp" -mindepth 1 | wc -l)
echo "temp entries left behind: $left"
