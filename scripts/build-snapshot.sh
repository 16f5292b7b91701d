#!/usr/bin/env bash
# Rebuilds the bundled vulnerability snapshot (vulndb/snapshot/) from the
# project corpus of real OSV records: every folder of ../shared/corpus/osv
# (Go, PyPI, crates.io, npm, Maven, NuGet, AlmaLinux, ...). The output is
# deterministic: the same corpus gives the same bytes, so a rebuild with no
# corpus change shows no diff.
#
#   scripts/build-snapshot.sh [CORPUS_OSV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=${1:-../shared/corpus/osv}
if [ ! -d "$corpus" ]; then
  echo "build-snapshot: no corpus at $corpus" >&2
  exit 1
fi
go run ./tools/snapshot -corpus "$corpus" -sources "$corpus/../SOURCES.tsv" -out vulndb/snapshot
ls -l vulndb/snapshot
