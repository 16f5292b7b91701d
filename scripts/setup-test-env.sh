#!/usr/bin/env bash
# Installs what bulkhead's tests need on a Debian machine (run as root):
# podman + runc (images built in tests), Debian's docker-registry (a real
# registry on loopback), debootstrap (Debian root filesystems), rpm (the
# native tool the rpm cataloger is compared with), dpkg-query (dpkg, always
# there), apache2-utils (htpasswd for registry auth); node, npm, python3, ruby
# and unzip are the ecosystem tools the language catalogers are compared with;
# chromium is the headless browser report/html's tests open the HTML reports in.
# postgresql is the server internal/pgtest starts for the store's tests.
# skopeo is the peer image/crypt's encryption tests interoperate with.
# catatonit is the pause binary `podman kube play` needs (runtime/sensor's
# Kubernetes-context test plays a pod). containerd (and its ctr) is the CRI
# runtime runtime/sensor's CRI test starts in a private root with its own
# socket, driving pods through the CRI as kubelet does.
set -euo pipefail
need=()
for pair in podman:podman runc:runc busybox:busybox-static docker-registry:docker-registry \
            debootstrap:debootstrap rpm:rpm htpasswd:apache2-utils /usr/bin/time:time \
            ruby:ruby bundle:ruby-bundler python3:python3 node:nodejs npm:npm unzip:unzip \
            dpkg-deb:dpkg chromium:chromium skopeo:skopeo catatonit:catatonit \
            containerd:containerd; do
  bin=${pair%%:*} pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || need+=("$pkg")
done
# Debian keeps initdb and postgres out of PATH, under /usr/lib/postgresql/<major>/bin.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" uidmap >/dev/null
  # The tests start their own containerd: no system one on the CRI socket.
  if [[ " ${need[*]} " == *" containerd "* ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now containerd >/dev/null 2>&1 || true
  fi
fi
# crun fails here on rlimits and hybrid cgroups: use runc with cgroupfs.
mkdir -p /etc/containers
if ! grep -q 'runtime = "runc"' /etc/containers/containers.conf 2>/dev/null; then
  cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
[engine.runtimes]
runc = ["/usr/sbin/runc"]
CONF
fi
# A real kube-apiserver, etcd and kubectl for the tests against a Kubernetes
# API server (internal/kubetest), built from the Go module proxy once and
# cached outside the clone (a cold build is ~12 CPU-minutes; warm, nothing).
# The tests find the cache by themselves; KUBEBUILDER_ASSETS overrides it.
assets=$("$(dirname "$0")/kube-assets.sh")
echo "setup: KUBEBUILDER_ASSETS=$assets" >&2
# nsmithuk/local-kms, a real AWS-KMS-compatible server the KMS signing-key
# tests run on loopback (internal/kmstest), built from the Go module proxy and
# cached outside the clone (~30 s cold).
kms=$("$(dirname "$0")/local-kms.sh")
echo "setup: local-kms $kms" >&2
# cosign, the peer of the signing interop tests (e2e/sign_test.go and
# sign/kmsinterop), built from the Go module proxy into $(go env GOPATH)/bin
# as cosign-<version>, where the tests look (a few CPU-minutes cold, once).
gobin=$(go env GOPATH)/bin
for mod in github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5; do
  ver=${mod##*@}
  [[ -x $gobin/cosign-$ver ]] && continue
  echo "setup: building cosign $ver" >&2
  tmpbin=$(mktemp -d)
  GOBIN=$tmpbin GOFLAGS= go install "$mod"
  mkdir -p "$gobin"
  mv -f "$tmpbin/cosign" "$gobin/cosign-$ver"
  rmdir "$tmpbin"
done
