#!/usr/bin/env bash
# Rebuilds testdata/images/alpine-demo.oci.tar, the image the README's first
# command scans. Needs root, podman, the Alpine 3.18.9 minirootfs from
# ../shared/corpus/rootfs/alpine, network access to Debian's mirror, the npm
# registry and the Go module proxy (it runs offline once built).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
minirootfs=${MINIROOTFS:-$here/../../../shared/corpus/rootfs/alpine/alpine-minirootfs-3.18.9-x86_64.tar.gz}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

podman import -q "$minirootfs" localhost/alpine-base:3.18 >/dev/null

# Real package metadata: Debian bookworm's python3-urllib3 and python3-jinja2
# (their egg-info is the upstream PKG-INFO), npm's lodash 4.17.15 and
# minimist 1.2.5 (package.json only), and a Go program built against
# golang.org/x/text v0.3.5.
apt-get download python3-urllib3=1.26.12-1+deb12u4 python3-jinja2=3.1.2-1+deb12u3 >/dev/null
for d in *.deb; do dpkg-deb -x "$d" x; done
npm pack -q lodash@4.17.15 minimist@1.2.5 >/dev/null
mkdir -p ctx/py ctx/node_modules/lodash ctx/node_modules/minimist ctx/bin
cp -r x/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info x/usr/lib/python3/dist-packages/Jinja2-3.1.2.egg-info ctx/py/
tar -xzf lodash-4.17.15.tgz -O package/package.json > ctx/node_modules/lodash/package.json
tar -xzf minimist-1.2.5.tgz -O package/package.json > ctx/node_modules/minimist/package.json
(cd "$here/demo-src/server" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w" -o "$work/ctx/bin/server" .)
cat > ctx/Containerfile <<'CF'
FROM localhost/alpine-base:3.18
RUN apk del --no-network libc-utils && adduser -D -u 10001 app
COPY py/ /usr/lib/python3.11/site-packages/
COPY node_modules/ /app/node_modules/
COPY bin/server /app/bin/server
USER app
ENTRYPOINT ["/app/bin/server"]
CF
podman build --network=none -q -t localhost/bulkhead-demo:2 ctx >/dev/null
rm -f "$here/alpine-demo.oci.tar"
podman save -q --format oci-archive -o "$here/alpine-demo.oci.tar" localhost/bulkhead-demo:2
ls -la "$here/alpine-demo.oci.tar"
