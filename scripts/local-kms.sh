#!/usr/bin/env bash
# Builds nsmithuk/local-kms (a real AWS-KMS-compatible server, MIT) from the Go
# module proxy for the tests of KMS signing keys (internal/kmstest), caches it
# outside the clone keyed by version, and prints the binary's path:
#
#   BULKHEAD_LOCAL_KMS=$(scripts/local-kms.sh) go test ./sign/kmsinterop/
#
# The tests find the cache by themselves. A build takes ~30 s cold; cached, a
# run costs nothing. The binary is built in a temporary directory on the
# cache's file system and renamed into place, so a killed build never leaves
# half a binary; a lock keeps two concurrent runs from building twice.
#
# Environment: LOCAL_KMS_VERSION (default below, keep it at
# internal/kmstest.Version), BULKHEAD_KMS_CACHE (default /var/cache/bulkhead-kms).
# Progress goes to stderr, the path to stdout.
set -euo pipefail

VERSION=${LOCAL_KMS_VERSION:-v0.0.0-20260228092603-2a5e92d09ab6}
CACHE_ROOT=${BULKHEAD_KMS_CACHE:-/var/cache/bulkhead-kms}
dir=$CACHE_ROOT/$VERSION
bin=$dir/local-kms

log() { echo "local-kms: $*" >&2; }

if [[ -x $bin ]]; then echo "$bin"; exit 0; fi
mkdir -p "$dir"
exec 9>"$CACHE_ROOT/.lock"
flock 9
if [[ -x $bin ]]; then echo "$bin"; exit 0; fi   # built by a concurrent run

export GOWORK=off GOFLAGS="-buildvcs=false" GOTOOLCHAIN=${GOTOOLCHAIN:-local}
rm -rf "$CACHE_ROOT"/.build.* # left by a killed run (we hold the lock)
tmp=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building github.com/nsmithuk/local-kms@$VERSION"
start=$SECONDS
GOBIN=$tmp go install -ldflags "-s -w" "github.com/nsmithuk/local-kms@$VERSION" ||
  { log "go install github.com/nsmithuk/local-kms@$VERSION failed; check GOPROXY"; exit 1; }
chmod 0755 "$tmp/local-kms"
mv -f "$tmp/local-kms" "$bin"
log "built in $((SECONDS - start)) s"
echo "$bin"
