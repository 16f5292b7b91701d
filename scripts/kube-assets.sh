#!/usr/bin/env bash
# Builds a real kube-apiserver, kubectl and etcd from the Go module proxy for the
# tests that need a Kubernetes API server (internal/kubetest, envtest), caches
# them outside the clone keyed by version, and prints the directory that holds
# them (use it as KUBEBUILDER_ASSETS):
#
#   KUBEBUILDER_ASSETS=$(scripts/kube-assets.sh) go test ./e2e/ -run Kube
#
# No kind/k3s image and no Debian package gives a 1.37 kube-apiserver, and
# setup-envtest downloads from the internet, so the binaries are built here:
#   kube-apiserver, kubectl  from k8s.io/kubernetes $K8S_VERSION (its staging
#                            modules taken from the proxy at v0.<minor>.<patch>)
#   etcd                     a three-line main over go.etcd.io/etcd/server/v3
# A cold kube-apiserver build costs ~12 CPU-minutes; with the binaries cached
# a run costs nothing. The Go build cache is kept (no -trimpath, and the
# sources are built from a fixed path) so a rebuild after wiping the binaries
# only relinks. Each binary is built in a temporary directory on the cache's
# file system and renamed into place, so a killed build never leaves a half
# binary behind; a lock keeps two concurrent runs from building twice.
#
# Environment: K8S_VERSION (default v1.37.2, keep it at the release of k8s.io/api
# in go.mod), ETCD_VERSION (default v3.6.16), BULKHEAD_KUBE_CACHE (default
# /var/cache/bulkhead-kube). Progress goes to stderr, the directory to stdout.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CACHE_ROOT=${BULKHEAD_KUBE_CACHE:-/var/cache/bulkhead-kube}
STAGING_VERSION=v0.${K8S_VERSION#v1.}   # v1.37.2 -> v0.37.2
minor=${K8S_VERSION#v1.}; minor=${minor%%.*}

dir=$CACHE_ROOT/$K8S_VERSION
src=$CACHE_ROOT/src

log() { echo "kube-assets: $*" >&2; }

have() { # the binaries are there and etcd is the wanted version
  [[ -x $dir/kube-apiserver && -x $dir/kubectl && -x $dir/etcd ]] &&
    [[ $(cat "$dir/etcd.version" 2>/dev/null) == "$ETCD_VERSION" ]]
}

if have; then echo "$dir"; exit 0; fi

mkdir -p "$dir" "$src"
exec 9>"$CACHE_ROOT/.lock"
flock 9
if have; then echo "$dir"; exit 0; fi   # built by a concurrent run

export GOWORK=off GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=${GOTOOLCHAIN:-local}
rm -rf "$CACHE_ROOT"/.build.* # left by a killed run (we hold the lock)
tmp=$(mktemp -d "$CACHE_ROOT/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# install NAME: moves $tmp/NAME into $dir atomically (rename on one file system).
install_bin() { chmod 0755 "$tmp/$1"; mv -f "$tmp/$1" "$dir/$1"; }

# k8s.io/kubernetes sources, made buildable outside its workspace, at a fixed
# path (the path is part of the Go build cache's keys when -trimpath is off).
k8s_src=$src/kubernetes-$K8S_VERSION
if [[ ! -f $k8s_src/.ready ]]; then
  log "fetching k8s.io/kubernetes@$K8S_VERSION from the module proxy"
  mod_dir=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | jq -r '.Dir // empty')
  [[ -n $mod_dir && -d $mod_dir ]] || { log "go mod download k8s.io/kubernetes@$K8S_VERSION failed; check GOPROXY"; exit 1; }
  rm -rf "$k8s_src" "$tmp/k8s"
  cp -r "$mod_dir" "$tmp/k8s"
  chmod -R u+w "$tmp/k8s"
  rm -f "$tmp/k8s/go.work" "$tmp/k8s/go.work.sum"
  # The staging modules are replaced by ./staging/src/k8s.io/X and required at
  # v0.0.0; take them from the proxy at the matching release instead.
  edits=()
  while read -r old; do edits+=("-dropreplace=$old"); done < <(
    go mod edit -json "$tmp/k8s/go.mod" | jq -r '.Replace[]? | select(.New.Path | startswith("./staging/")) | .Old.Path')
  while read -r path; do edits+=("-require=$path@$STAGING_VERSION"); done < <(
    go mod edit -json "$tmp/k8s/go.mod" | jq -r '.Require[]? | select(.Version == "v0.0.0") | .Path')
  log "go mod edit: ${#edits[@]} edits (staging modules at $STAGING_VERSION)"
  go mod edit "${edits[@]}" "$tmp/k8s/go.mod"
  touch "$tmp/k8s/.ready"
  mv "$tmp/k8s" "$k8s_src"
fi

ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor
 -X k8s.io/component-base/version.gitTreeState=clean"
for cmd in kube-apiserver kubectl; do
  [[ -x $dir/$cmd ]] && continue
  note=; [[ $cmd == kube-apiserver ]] && note=" (~12 CPU-minutes cold)"
  log "building $cmd $K8S_VERSION$note"
  start=$SECONDS
  (cd "$k8s_src" && go build -ldflags "$ldflags" -o "$tmp/$cmd" "./cmd/$cmd")
  install_bin "$cmd"
  log "built $cmd in $((SECONDS - start)) s"
done

if [[ ! -x $dir/etcd || $(cat "$dir/etcd.version" 2>/dev/null) != "$ETCD_VERSION" ]]; then
  etcd_src=$src/etcd-$ETCD_VERSION
  if [[ ! -f $etcd_src/.ready ]]; then
    rm -rf "$etcd_src" "$tmp/etcd"
    mkdir -p "$tmp/etcd"
    cat > "$tmp/etcd/main.go" <<'GO'
// Command etcd is etcd's own server main, built from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    (cd "$tmp/etcd" && go mod init bulkhead.local/etcd >/dev/null 2>&1 &&
      go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1) ||
      { log "fetching go.etcd.io/etcd/server/v3@$ETCD_VERSION failed; check GOPROXY"; exit 1; }
    touch "$tmp/etcd/.ready"
    mv "$tmp/etcd" "$etcd_src"
  fi
  log "building etcd $ETCD_VERSION"
  start=$SECONDS
  (cd "$etcd_src" && go build -ldflags "-s -w" -o "$tmp/etcd" .)
  echo "$ETCD_VERSION" > "$tmp/etcd.version"
  install_bin etcd
  mv -f "$tmp/etcd.version" "$dir/etcd.version"
  log "built etcd in $((SECONDS - start)) s"
fi

have || { log "binaries missing in $dir after the build"; exit 1; }
echo "$dir"
