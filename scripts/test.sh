#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then vets and tests
# every package. Integration tests (podman images, a real registry on
# loopback, the podman socket, debootstrap) run when root; see e2e/.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  scripts/setup-test-env.sh
  KUBEBUILDER_ASSETS=$(scripts/kube-assets.sh) # cached by setup: instant
  export KUBEBUILDER_ASSETS
fi
echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed: $unformatted" >&2; exit 1; fi
echo "== go vet"
go vet ./...
echo "== go test"
go test -count=1 -timeout 75m ./... 2>&1 | tee /tmp/bulkhead-test.log
