#!/bin/sh
# Build osv-scanner (pinned) once, then compare bulkhead's matcher with it
# offline on the same OSV records (match/testdata/osv) and lockfiles, and run
# the 10k-package matching benchmark.
#
# v2.5.1 is the newest release whose go.mod (go 1.26.5, osv-scalibr
# v0.5.3-0.20260814002154) builds with this machine's Go 1.26; v2.6.0 needs
# Go 1.27. Building takes several minutes on 2 cores; the binary is cached in
# $(go env GOPATH)/bin.
set -eu
cd "$(dirname "$0")/.."
OSV_SCANNER_VERSION=v2.5.1
bin="$(go env GOPATH)/bin/osv-scanner"
if ! "$bin" --version 2>/dev/null | grep -q "${OSV_SCANNER_VERSION#v}"; then
	echo "building osv-scanner $OSV_SCANNER_VERSION (several minutes)..." >&2
	GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "github.com/google/osv-scanner/v2/cmd/osv-scanner@$OSV_SCANNER_VERSION"
fi
"$bin" --version
OSV_SCANNER="$bin" go test -count=1 -run 'TestAgainstOSVScanner' -v ./match/ | grep -E 'osv-scanner:|PASS|FAIL|only'
go test -count=1 -run '^$' -bench 'Match10k|Compare' -benchmem ./match/ ./version/ | grep -E '^Benchmark'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (wall times above are inflated when other jobs share the 2 cores)"
