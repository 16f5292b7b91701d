#!/usr/bin/env bash
# Sign + verify round trips: bulkhead next to cosign (v2.6.5 and v3.1.3) on
# the same image in a loopback docker-registry, legacy layout, offline
# (no transparency log), with one key made by cosign; then the same with a
# key in a KMS (nsmithuk/local-kms on loopback, scripts/local-kms.sh, reached
# through AWS_ENDPOINT_URL with awskms:///alias/bench).
#
#   bench/sign.sh [RUNS]
#
# Needs root, podman, busybox-static and docker-registry
# (scripts/setup-test-env.sh); builds the cosign binaries from the Go module
# proxy on first use (several minutes each on 2 cores). Also prints the Go
# benchmark (in-memory registry, both layouts).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
work=$(mktemp -d)
trap 'kill $regpid ${kmspid:-} 2>/dev/null || true; rm -rf "$work"' EXIT

gobin="$(go env GOPATH)/bin"
for mod in github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5 github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3; do
  ver=${mod##*@}
  if [ ! -x "$gobin/cosign-$ver" ]; then
    echo "building cosign $ver (once)..." >&2
    GOBIN="$work/gobin" GOFLAGS= go install "$mod"
    mv "$work/gobin/cosign" "$gobin/cosign-$ver"
  fi
done
GOFLAGS= go build -o "$work/bulkhead" ./cmd/bulkhead

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/registry.yml" <<CFG
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/storage}}
http: {addr: 127.0.0.1:$port}
CFG
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 & regpid=$!
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

img=localhost/bench-sign-mini:1
if ! podman image exists "$img"; then
  mkdir -p "$work/root/bin" && cp "$(command -v busybox)" "$work/root/bin/" && ln -s busybox "$work/root/bin/sh"
  tar -C "$work/root" -c . | podman import -q - "$img" >/dev/null
fi
export COSIGN_PASSWORD=bench
(cd "$work" && "$gobin/cosign-v2.6.5" generate-key-pair >/dev/null 2>&1)

# time_runs NAME SIGN-CMD VERIFY-CMD: a fresh repository per run, so every
# signature goes onto an unsigned digest.
time_runs() {
  local label=$1 signcmd=$2 verifycmd=$3 start end i ref
  start=$(date +%s%N)
  for i in $(seq "$runs"); do
    ref="127.0.0.1:$port/$label/r$i:1"
    podman push -q --tls-verify=false "$img" "$ref" >/dev/null
    eval "$signcmd" >/dev/null 2>&1
    eval "$verifycmd" >/dev/null 2>&1
  done
  end=$(date +%s%N)
  printf '%-16s %6.0f ms per sign+verify (mean of %d, including a push of the image)\n' "$label" "$(( (end-start)/runs/1000000 ))" "$runs"
}
key="$work/cosign.key" pub="$work/cosign.pub"
time_runs bulkhead "$work/bulkhead sign --key $key --tlog-upload=false \$ref" "$work/bulkhead verify --key $pub --insecure-ignore-tlog \$ref"
time_runs cosign-v2.6.5 "$gobin/cosign-v2.6.5 sign --yes --key $key --tlog-upload=false --allow-insecure-registry \$ref" "$gobin/cosign-v2.6.5 verify --key $pub --insecure-ignore-tlog=true --allow-insecure-registry \$ref"
time_runs cosign-v3.1.3 "$gobin/cosign-v3.1.3 sign --yes --key $key --tlog-upload=false --use-signing-config=false --new-bundle-format=false --allow-insecure-registry \$ref" "$gobin/cosign-v3.1.3 verify --key $pub --insecure-ignore-tlog=true --allow-insecure-registry \$ref"
time_runs push-only true true

# The same round trip with the key in a KMS: every signature is a Sign call
# to local-kms, every verify a GetPublicKey (the check itself is local).
kmsbin=$(scripts/local-kms.sh)
kport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PORT=$kport KMS_DATA_PATH="$work/kms" KMS_SEED_PATH="$work/no-seed.yaml" "$kmsbin" >/dev/null 2>&1 & kmspid=$!
for _ in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$kport) 2>/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL=http://127.0.0.1:$kport AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=eu-west-2 AWS_EC2_METADATA_DISABLED=true
kms=awskms:///alias/bench
"$work/bulkhead" generate-key-pair --kms "$kms" --output-key-prefix "$work/kms" >/dev/null 2>&1
time_runs bulkhead-kms "$work/bulkhead sign --key $kms --tlog-upload=false \$ref" "$work/bulkhead verify --key $kms --insecure-ignore-tlog \$ref"
time_runs cosign-v3.1.3-kms "$gobin/cosign-v3.1.3 sign --yes --key $kms --tlog-upload=false --use-signing-config=false --new-bundle-format=false --allow-insecure-registry \$ref" "$gobin/cosign-v3.1.3 verify --key $kms --insecure-ignore-tlog=true --allow-insecure-registry \$ref"

echo
go test -run '^$' -bench 'BenchmarkSignVerify|BenchmarkLoadPrivate' -benchmem ./sign/ ./sign/key/
