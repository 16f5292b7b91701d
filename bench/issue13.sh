#!/usr/bin/env bash
# Before/after figures for issue 13 (one application layer): image scan, gate
# and webhook, for two builds of bulkhead. Runs are interleaved (A B A B ...)
# so that a noisy machine hurts both sides alike; each line gives the median
# wall time, the median CPU time (user+sys), the peak RSS over all runs, the
# exit status and a one-line summary of the output (so a difference in the
# work done shows next to the time).
#
#   bench/issue13.sh BEFORE_BIN AFTER_BIN [RUNS]          (default RUNS 9)
#
#   BEFORE_SRC=DIR AFTER_SRC=DIR   checkouts of the two versions: also run the
#       in-process webhook benchmarks (BenchmarkReview, BenchmarkEvaluate in
#       ./admission and ./policy) there, -count $GO_COUNT (default 6) each,
#       interleaved, compared with benchstat when the module proxy serves it.
#   BENCH_DIR=DIR                   work directory (default a fresh one in /var/tmp)
#
# 0. startup: `--help`, the cost every command pays before its work.
# 1. image: `image --input testdata/images/alpine-demo.oci.tar`, table and
#    json output, with a warm vulnerability database (the bundled snapshot,
#    built once by BEFORE_BIN into $BENCH_DIR/cache; both binaries read the
#    same file; the scan reads but never rewrites it).
# 2. gate: `gate --insecure` over the kubernetes/examples corpus
#    (../shared/corpus/k8s/kubernetes-examples, when there) and a manifest of
#    workloads running the demo image from a loopback docker-registry (needs
#    podman and docker-registry, scripts/setup-test-env.sh), one signed
#    with a throwaway key, in plain, prod-* and exempted namespaces, under
#    a policy with every rule kind that needs no network beyond loopback:
#    vulnerabilities, signatures, secrets (scans of the loopback images),
#    podSecurity, workload, registries, digestPinning, cel, an exemption.
#    Without podman or docker-registry only the corpus is judged, under the
#    same policy minus the image rules.
#    `-n default`, and no workload in an admission.exemptNamespaces namespace:
#    before issue 13 the gate ignored exemptNamespaces and let a rule
#    exemption by namespace cover objects that name no namespace; the
#    bench keeps both binaries on the same work.
#    The signature rule states `transparencyLog: ignore` for a binary that
#    knows the field (since issue 13 skipping the log must be written);
#    older binaries accept tlog-less signatures silently, so both do the
#    same verification.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
before=$(readlink -f "${1:?usage: bench/issue13.sh BEFORE_BIN AFTER_BIN [RUNS]}")
after=$(readlink -f "${2:?usage: bench/issue13.sh BEFORE_BIN AFTER_BIN [RUNS]}")
runs=${3:-9}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/bulkhead-bench13.XXXXXX)}
mkdir -p "$work"
export BULKHEAD_CACHE_DIR="$work/cache"
img=$repo/testdata/images/alpine-demo.oci.tar
corpus=${CORPUS:-$repo/../shared/corpus}/k8s/kubernetes-examples
[ -d "$corpus" ] || corpus=/work/shared/corpus/k8s/kubernetes-examples
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) {print "nan"; exit} if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# bench NAME SUMMARY_CMD -- ARGS...: ARGS run with "$BIN" replaced by each
# binary, interleaved; SUMMARY_CMD reads $work/out.<side> and prints one line.
bench() {
  local name=$1 summary=$2; shift 3
  local side bin i
  for side in before after; do : >"$work/t.$side"; done
  for i in $(seq "$runs"); do
    for side in before after; do
      bin=$before; [ "$side" = after ] && bin=$after
      local args=() a
      for a in "$@"; do args+=("${a//@BIN@/$bin}"); done
      args=("${args[@]//@SIDE@/$side}")
      local rc=0
      /usr/bin/time -f '%e %U %S %M' -o "$work/time.txt" "${args[@]}" >"$work/out.$side" 2>"$work/err.$side" || rc=$?
      echo "$(tail -1 "$work/time.txt") $rc" >>"$work/t.$side"
    done
  done
  for side in before after; do
    local wall cpu rss rcs sum
    wall=$(awk '{print $1}' "$work/t.$side" | median)
    cpu=$(awk '{print $2+$3}' "$work/t.$side" | median)
    rss=$(awk 'BEGIN{m=0} {if ($4>m) m=$4} END {printf "%.1f", m/1024}' "$work/t.$side")
    rcs=$(awk '{print $5}' "$work/t.$side" | sort -u | paste -sd, -)
    sum=$(SIDE=$side $summary)
    printf "%-14s %-6s wall %6.3fs  cpu %6.3fs  peak RSS %6s MB  exit %s  %s\n" "$name" "$side" "$wall" "$cpu" "$rss" "$rcs" "$sum"
  done
  # The raw runs, for whoever wants more than the median.
  for side in before after; do cp "$work/t.$side" "$work/runs.$name.$side"; done
}

sum_image_json() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(len(d.get("packages") or []), "packages,", len(d.get("findings") or []), "findings")' "$work/out.$SIDE" 2>/dev/null || head -c 200 "$work/err.$SIDE"; }
sum_help() { printf '%s lines of help' "$(wc -l <"$work/out.$SIDE")"; }
sum_image_table() { printf '%s lines of table, stderr: %s' "$(wc -l <"$work/out.$SIDE")" "$(head -c 120 "$work/err.$SIDE" | tr '\n' ' ')"; }
sum_gate() { printf '%s | %s' "$(grep -E 'denied|allowed|passed' "$work/out.$SIDE" | tail -1)" "$(grep -cE '^\s+(DENY|WARN|NOTE)' "$work/out.$SIDE") DENY/WARN/NOTE lines"; }

echo "== issue 13 before/after: $runs runs each, interleaved; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "before: $before"
echo "after:  $after"
echo "work:   $work"

# ---- 1. image scan, warm database
"$before" image -q --input "$img" --format json --db-max-age 0 -o /dev/null 2>/dev/null || true # builds the DB
sha_db=$(sha256sum "$work/cache/db/osv.db" | cut -c1-16)
echo
echo "== 1. image --input $(basename "$img") (warm DB $work/cache/db/osv.db, sha256 $sha_db...)"
# Start-up alone (no scan): what every command pays, peak RSS included.
bench startup sum_help -- @BIN@ --help
bench image-json sum_image_json -- @BIN@ image -q --input "$img" --format json --db-max-age 0
bench image-table sum_image_table -- @BIN@ image -q --input "$img" --db-max-age 0
[ "$(sha256sum "$work/cache/db/osv.db" | cut -c1-16)" = "$sha_db" ] || echo "WARNING: the database changed during the runs"

# ---- 2. gate
echo
gd=$work/gate
mkdir -p "$gd"
manifests=()
if [ -d "$corpus" ]; then
  while IFS= read -r f; do manifests+=("$f"); done < <(find "$corpus" \( -name '*.yaml' -o -name '*.yml' \) | sort)
fi
reg=""
if command -v podman >/dev/null && command -v docker-registry >/dev/null; then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  reg=127.0.0.1:$port
  printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$gd/storage" "$reg" >"$gd/registry.yml"
  docker-registry serve "$gd/registry.yml" >"$gd/registry.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  ref=$(podman load -i "$img" 2>/dev/null | sed -n 's/^Loaded image: //p' | head -1)
  podman push -q --tls-verify=false "$ref" "$reg/demo/app:1"
  podman push -q --tls-verify=false "$ref" "$reg/demo/unsigned:1"
  digest=$(curl -fsI -H 'Accept: application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json' \
    "http://$reg/v2/demo/app/manifests/1" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest" {print $2}')
  (cd "$gd" && COSIGN_PASSWORD= "$before" generate-key-pair -f --output-key-prefix release >/dev/null 2>&1)
  COSIGN_PASSWORD= "$before" sign --key "$gd/release.key" --tlog-upload=false --allow-http-registry "$reg/demo/app@$digest" >/dev/null 2>&1
  python3 - "$gd/workloads.yaml" "$reg" "$digest" <<'PY'
import sys
out, reg, digest = sys.argv[1:]
good = """      securityContext: {runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}
        resources: {limits: {cpu: 100m, memory: 64Mi}}"""
docs = []
images = [f"{reg}/demo/app@{digest}", f"{reg}/demo/app:1", f"{reg}/demo/unsigned:1"]
for ns in ["default", "prod-web", "dev-tools"]:
    for i, image in enumerate(images):
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata: {{name: app-{i}, namespace: {ns}}}
spec:
  selector: {{matchLabels: {{app: app-{i}}}}}
  template:
    metadata: {{labels: {{app: app-{i}}}}}
    spec:
      containers:
      - name: app
        image: {image}
  {good}
""")
open(out, "w").write("---\n".join(docs))
PY
  manifests+=("$gd/workloads.yaml")
fi
write_policy() { # FILE TLOG_FIELD
  {
    cat <<'EOF'
apiVersion: bulkhead.dev/v1
kind: Policy
metadata: {name: bench-issue13}
admission:
  failurePolicy: closed
  exemptNamespaces: [kube-system]
rules:
EOF
    if [ -n "$reg" ]; then
      cat <<'EOF'
  - name: no-critical-vulns
    match: {images: ["127.0.0.1:*/**"]}
    vulnerabilities: {maxSeverity: HIGH, onlyFixed: true, ignore: [CVE-2099-0001], dbMaxAge: 36500d}
  - name: signed-by-release-key
    match: {images: ["127.0.0.1:*/demo/app*"]}
    signatures:
      keys: [release.pub]
EOF
      [ -n "$2" ] && echo "      transparencyLog: ignore"
      cat <<'EOF'
  - name: no-secrets
    match: {images: ["127.0.0.1:*/**"]}
    secrets: {}
EOF
    fi
    cat <<'EOF'
  - name: pod-security
    podSecurity: {level: restricted}
  - name: workload-hygiene
    mode: warn
    workload: {checks: [BH-K8S-101, BH-K8S-102, BH-K8S-103]}
  - name: trusted-registries
    registries: {allowed: ["ghcr.io", "registry.k8s.io", "127.0.0.1:*"]}
  - name: pinned
    mode: warn
    match: {namespaces: ["prod-*"]}
    digestPinning: {}
  - name: priority-class
    mode: warn
    cel:
      checks:
        - id: ORG-K8S-001
          title: Pods must set a priority class
          severity: LOW
          target: kubernetes
          expression: isWorkload && !has(podSpec.priorityClassName)
          message: the pod has no priorityClassName
exemptions:
  - rule: pod-security
    namespaces: [dev-tools]
    owner: platform-team@acme.example
    reason: debugging tools
    expires: 2999-03-31
EOF
  } >"$1"
}
# One policy file per binary, next to the key it names.
for side in before after; do
  bin=$before; [ "$side" = after ] && bin=$after
  mkdir -p "$gd/$side"; cp "$gd/release.pub" "$gd/$side/" 2>/dev/null || true
  write_policy "$gd/$side/policy.yaml" "tlog"
  probe=$("$bin" gate -p "$gd/$side/policy.yaml" -n default "$repo/policy/testdata/pods/restricted-pass.yaml" 2>&1 || true)
  if grep -q 'transparencyLog not found' <<<"$probe"; then
    write_policy "$gd/$side/policy.yaml" ""
    echo "($side binary does not know signatures.transparencyLog: its policy leaves it out)"
  fi
done
# Leave out the corpus files neither binary can read (unrendered templates):
# the gate stops at the first one.
for side in before after; do
  bin=$before; [ "$side" = after ] && bin=$after
  for _ in $(seq 50); do
    probe=$("$bin" gate --insecure -n default -p "$gd/$side/policy.yaml" "${manifests[@]}" 2>&1 >/dev/null || true)
    bad=$(sed -n 's/^bulkhead: \([^:]*\.ya\?ml\): .*/\1/p' <<<"$probe" | head -1)
    [ -n "$bad" ] || break
    echo "(left out $bad: $(grep -F "bulkhead: $bad" <<<"$probe" | head -1 | cut -c1-160 | sed "s|^bulkhead: $bad: ||"))"
    kept=(); for f in "${manifests[@]}"; do [ "$f" = "$bad" ] || kept+=("$f"); done; manifests=("${kept[@]}")
  done
done
echo "== 2. gate --insecure over ${#manifests[@]} manifest files ($(cat "${manifests[@]}" | grep -c '^kind:') objects)${reg:+, images from $reg}"
bench gate sum_gate -- @BIN@ gate --insecure -n default -p "$gd/@SIDE@/policy.yaml" "${manifests[@]}"

# ---- 3. webhook: in-process Go benchmarks
if [ -n "${BEFORE_SRC:-}" ] && [ -n "${AFTER_SRC:-}" ]; then
  echo
  count=${GO_COUNT:-6}
  echo "== 3. go test -bench 'BenchmarkReview|BenchmarkEvaluate' ./admission ./policy, $count x 1 interleaved"
  for side in before after; do
    src=$BEFORE_SRC; [ "$side" = after ] && src=$AFTER_SRC
    : >"$work/go.$side.txt"; : >"$work/gocpu.$side.txt"
    (cd "$src" && go test -c -o "$work/admission.$side.test" ./admission && go test -c -o "$work/policy.$side.test" ./policy)
  done
  for i in $(seq "$count"); do
    for side in before after; do
      src=$BEFORE_SRC; [ "$side" = after ] && src=$AFTER_SRC
      for pkg in admission policy; do
        (cd "$src/$pkg" && "$work/$pkg.$side.test" -test.run '^$' -test.bench 'BenchmarkReview|BenchmarkEvaluate' -test.benchmem -test.count 1) |
          grep -E '^(goos|goarch|pkg|cpu|Benchmark)' >>"$work/go.$side.txt"
      done
    done
  done
  # On a loaded machine the ns/op above is mostly other processes' noise.
  # CPU time per operation is steadier: each benchmark run for N1 and N2
  # iterations under /usr/bin/time, (cpu(N2) - cpu(N1)) / (N2 - N1), so the
  # set-up (scanning the demo image, loading the policy) cancels out.
  n1=${GO_N1:-300} n2=${GO_N2:-3000}
  for i in $(seq "$count"); do
    for side in before after; do
      src=$BEFORE_SRC; [ "$side" = after ] && src=$AFTER_SRC
      for pb in admission:BenchmarkReview policy:BenchmarkEvaluate; do
        pkg=${pb%%:*} b=${pb#*:}
        for n in "$n1" "$n2"; do
          (cd "$src/$pkg" && /usr/bin/time -f '%U %S' -o "$work/gotime.txt" "$work/$pkg.$side.test" -test.run '^$' -test.bench "^$b\$" -test.benchtime "${n}x" >/dev/null)
          echo "$b $n $(awk '{print $1+$2}' "$work/gotime.txt")" >>"$work/gocpu.$side.txt"
        done
      done
    done
  done
  echo "CPU time per operation (user+sys, median over $count pairs of runs of ${n1}x and ${n2}x):"
  for b in BenchmarkReview BenchmarkEvaluate; do
    for side in before after; do
      awk -v b="$b" -v n1="$n1" -v n2="$n2" '$1==b && $2==n1 {c1[++i]=$3} $1==b && $2==n2 {c2[++j]=$3} END {for (k=1; k<=i; k++) printf "%.1f\n", (c2[k]-c1[k])/(n2-n1)*1e6}' "$work/gocpu.$side.txt" |
        median | xargs printf "  %-20s %-6s %8.1f µs/op CPU\n" "$b" "$side"
    done
  done
  if (cd "$repo" && go run golang.org/x/perf/cmd/benchstat@latest "$work/go.before.txt" "$work/go.after.txt") >"$work/benchstat.txt" 2>"$work/benchstat.err"; then
    cat "$work/benchstat.txt"
  else
    echo "(benchstat unavailable: $(head -1 "$work/benchstat.err")); medians:"
    for side in before after; do
      awk -v s="$side" '/^Benchmark/ {n[$1]++; v[$1, n[$1]] = $3} END {for (b in n) {m = n[b]; k = 0; delete a; for (i = 1; i <= m; i++) a[++k] = v[b, i]; asort(a); printf "%-40s %-6s median %s ns/op (n=%d)\n", b, s, (m % 2 ? a[(m+1)/2] : (a[m/2] + a[m/2+1]) / 2), m}}' "$work/go.$side.txt"
    done | sort
  fi
fi
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
