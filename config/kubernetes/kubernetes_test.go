package kubernetes

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/examples.golden")

// render writes findings as "file ID@line" lines: the golden format.
func renderFindings(t *testing.T, s *Scanner, files []string) string {
	t.Helper()
	var b bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := ParseBytes(filepath.Base(f), data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fs, err := s.Scan(objs)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:", filepath.Base(f))
		for _, x := range fs {
			fmt.Fprintf(&b, " %s@%d", x.ID, x.Location.StartLine)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestExamplesGolden pins every finding on real manifests from
// kubernetes/examples and kube-score. A change shows up as a diff to review
// (go test -update rewrites it).
func TestExamplesGolden(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/examples/*")
	if len(files) == 0 {
		t.Fatal("no examples")
	}
	got := renderFindings(t, s, files)
	if *update {
		if err := os.WriteFile("testdata/examples.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/examples.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("findings changed; review and run go test -update\n got:\n%s\nwant:\n%s", got, want)
	}
}

// TestExamplesExpected states, check by check, what a reviewer expects on a
// few real manifests: the dangerous settings found on their lines, and no
// finding of the high-severity checks where the manifest is harmless.
func TestExamplesExpected(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		file    string
		want    []string // ID@line that must be there
		notWant []string // IDs that must not be there at all
	}{
		{"_archived_sysdig-cloud_sysdig-daemonset.yaml",
			[]string{"BH-K8S-003@44", "BH-K8S-110@21", "BH-K8S-002@38", "BH-K8S-002@39", "BH-K8S-005@20", "BH-K8S-005@36", "BH-K8S-107@47", "BH-K8S-105@42"},
			[]string{"BH-K8S-004", "BH-K8S-006", "BH-K8S-108"}},
		{"_archived_javaee_mysql-pod.yaml",
			[]string{"BH-K8S-107@16", "BH-K8S-107@20"},
			[]string{"BH-K8S-002", "BH-K8S-003", "BH-K8S-005", "BH-K8S-110"}},
		{"_archived_volumes_rbd_secret_ceph-secret.yaml", []string{"BH-K8S-108@7"}, nil},
		// MYSQL_DATABASE and other plain settings are not secrets; the
		// guestbook runs nothing privileged
		{"web_guestbook_all-in-one_guestbook-all-in-one.yaml", nil,
			[]string{"BH-K8S-002", "BH-K8S-003", "BH-K8S-004", "BH-K8S-005", "BH-K8S-006", "BH-K8S-107", "BH-K8S-108", "BH-K8S-110"}},
		{"web_guestbook_redis-master-deployment.yaml", []string{"BH-K8S-106@21"}, []string{"BH-K8S-105", "BH-K8S-107"}},
		{"_archived_meteor_mongo-pod.json", []string{"BH-K8S-020@13", "BH-K8S-105@24"}, []string{"BH-K8S-005"}},
	}
	for _, c := range cases {
		got := renderFindings(t, s, []string{filepath.Join("testdata/examples", c.file)})
		for _, w := range c.want {
			if !strings.Contains(got, " "+w+" ") && !strings.HasSuffix(strings.TrimSpace(got), " "+w) {
				t.Errorf("%s: missing %s in %s", c.file, w, got)
			}
		}
		for _, n := range c.notWant {
			if strings.Contains(got, " "+n+"@") {
				t.Errorf("%s: unexpected %s in %s", c.file, n, got)
			}
		}
	}
}

func TestWorkloadKinds(t *testing.T) {
	pod := `{"containers":[{"name":"c","image":"x:1"}],"initContainers":[{"name":"i","image":"x:1"}],"ephemeralContainers":[{"name":"e","image":"x:1"}]}`
	cases := []struct {
		api, kind, wrap, specPath string
	}{
		{"v1", "Pod", `"spec":%s`, "spec"},
		{"v1", "PodTemplate", `"template":{"spec":%s}`, "template.spec"},
		{"apps/v1", "Deployment", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"extensions/v1beta1", "Deployment", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"apps/v1", "ReplicaSet", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"apps/v1", "StatefulSet", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"apps/v1", "DaemonSet", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"batch/v1", "Job", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"batch/v1", "CronJob", `"spec":{"jobTemplate":{"spec":{"template":{"spec":%s}}}}`, "spec.jobTemplate.spec.template.spec"},
		{"v1", "ReplicationController", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
		{"serving.knative.dev/v1", "Service", `"spec":{"template":{"spec":%s}}`, "spec.template.spec"},
	}
	for _, c := range cases {
		doc := fmt.Sprintf(`{"apiVersion":%q,"kind":%q,"metadata":{"name":"n"},%s}`, c.api, c.kind, fmt.Sprintf(c.wrap, pod))
		objs, err := ParseBytes("x.json", []byte(doc))
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %v %d", c.kind, err, len(objs))
		}
		p := objs[0].Pod
		if p == nil || p.SpecPath != c.specPath {
			t.Fatalf("%s %s: pod %+v", c.api, c.kind, p)
		}
		var types []string
		for _, cr := range p.Containers() {
			types = append(types, cr.Type+"="+cr.Path)
		}
		want := fmt.Sprintf("initContainer=%[1]s.initContainers[0] container=%[1]s.containers[0] ephemeralContainer=%[1]s.ephemeralContainers[0]", c.specPath)
		if strings.Join(types, " ") != want {
			t.Errorf("%s: containers %v", c.kind, types)
		}
	}
	// a core Service is not a workload
	objs, _ := ParseBytes("s.yaml", []byte("apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  template:\n    spec: {}\n"))
	if len(objs) != 1 || objs[0].Pod != nil {
		t.Errorf("core Service taken for a workload")
	}
}

// TestInitAndEphemeralCount: a privileged init or ephemeral container fails
// like any other, on its own line.
func TestInitAndEphemeralCount(t *testing.T) {
	src := `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  initContainers:
  - name: init
    image: busybox:1
    securityContext:
      privileged: true
  containers:
  - name: app
    image: app:1
  ephemeralContainers:
  - name: dbg
    image: busybox:1
    securityContext:
      privileged: true
`
	got := scanString(t, Options{}, src)
	for _, w := range []string{"BH-K8S-003@10", "BH-K8S-003@18"} {
		if !contains(got, w) {
			t.Errorf("missing %s in %v", w, got)
		}
	}
}

func scanString(t *testing.T, opts Options, src string) []string {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseBytes("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		tag := fmt.Sprintf("%s@%d", f.ID, f.Location.StartLine)
		if f.Suppressed != nil {
			tag += "(ignored)"
		}
		out = append(out, tag)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestSecurityContextMerge: the pod's runAsUser and seccomp profile reach
// containers that do not set their own, and a container's own wins.
func TestSecurityContextMerge(t *testing.T) {
	src := `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  securityContext:
    runAsUser: 1000
    runAsNonRoot: true
    seccompProfile:
      type: RuntimeDefault
  containers:
  - name: inherits
    image: app:1
  - name: overrides
    image: app:1
    securityContext:
      runAsUser: 0
      seccompProfile:
        type: Unconfined
`
	got := scanString(t, Options{}, src)
	// only the overriding container runs as root and unconfined
	for _, w := range []string{"BH-K8S-109@17", "BH-K8S-023@17", "BH-K8S-010@19"} {
		if !contains(got, w) {
			t.Errorf("missing %s in %v", w, got)
		}
	}
	for _, g := range got {
		if strings.HasPrefix(g, "BH-K8S-109@") && g != "BH-K8S-109@17" || strings.HasPrefix(g, "BH-K8S-022@") || strings.HasPrefix(g, "BH-K8S-024@") {
			t.Errorf("unexpected %s in %v", g, got)
		}
	}
	eff := EffectiveSecurityContext(&corev1.PodSecurityContext{RunAsUser: ptr(int64(7)), RunAsGroup: ptr(int64(8))},
		&corev1.SecurityContext{RunAsUser: ptr(int64(9))})
	if *eff.RunAsUser != 9 || *eff.RunAsGroup != 8 {
		t.Errorf("merge: %+v", eff)
	}
}

func ptr[T any](v T) *T { return &v }

// TestLevels: --pss baseline leaves the restricted controls out.
func TestLevels(t *testing.T) {
	src := `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  hostNetwork: true
  containers:
  - name: app
    image: app:1
`
	base := scanString(t, Options{Level: LevelBaseline}, src)
	restr := scanString(t, Options{Level: LevelRestricted}, src)
	if !contains(base, "BH-K8S-002@6") || !contains(restr, "BH-K8S-002@6") {
		t.Errorf("host network not reported: %v / %v", base, restr)
	}
	if contains(base, "BH-K8S-021@8") || !contains(restr, "BH-K8S-021@8") {
		t.Errorf("restricted control at the wrong level: %v / %v", base, restr)
	}
	if _, err := New(Options{Level: "privileged"}); err == nil {
		t.Error("privileged level accepted")
	}
	if _, err := New(Options{Version: "v2.0"}); err == nil {
		t.Error("bad version accepted")
	}
	if _, err := ParseLevel("strict"); err == nil {
		t.Error("bad level accepted")
	}
}

func TestIgnoreAnnotation(t *testing.T) {
	src := `apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  annotations:
    bulkhead.dev/ignore: "BH-K8S-003, bh-k8s-101"
spec:
  template:
    metadata:
      annotations:
        bulkhead.dev/ignore: BH-K8S-106
    spec:
      containers:
      - name: app
        image: app:1
        securityContext:
          privileged: true
`
	got := scanString(t, Options{}, src)
	for _, w := range []string{"BH-K8S-003@17(ignored)", "BH-K8S-101@16(ignored)", "BH-K8S-106@15(ignored)", "BH-K8S-021@16"} {
		if !contains(got, w) {
			t.Errorf("missing %s in %v", w, got)
		}
	}
}

func TestAutomountFromServiceAccount(t *testing.T) {
	src := `apiVersion: v1
kind: ServiceAccount
metadata:
  name: quiet
automountServiceAccountToken: false
---
apiVersion: v1
kind: Pod
metadata:
  name: uses-quiet
spec:
  serviceAccountName: quiet
  containers:
  - name: app
    image: app:1
---
apiVersion: v1
kind: Pod
metadata:
  name: uses-default
spec:
  containers:
  - name: app
    image: app:1
`
	got := scanString(t, Options{}, src)
	n := 0
	for _, g := range got {
		if strings.HasPrefix(g, "BH-K8S-104@") {
			n++
			if g != "BH-K8S-104@21" {
				t.Errorf("unexpected %s", g)
			}
		}
	}
	if n != 1 {
		t.Errorf("want one BH-K8S-104 (the pod on the default account), got %v", got)
	}
}

func TestParseStreams(t *testing.T) {
	// Helm output: comments, "---" with empty documents, a List, JSON
	src := `---
# Source: chart/templates/sa.yaml
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
  spec:
    containers: [{name: c, image: "x:1", securityContext: {privileged: true}}]
---
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"},
 "spec": {"hostPID": true, "containers": [{"name": "c", "image": "x:1"}]}}
---
just a string
---
- a list
---
base: &b {privileged: true}
kind: ""
`
	got := scanString(t, Options{}, src)
	for _, w := range []string{"BH-K8S-003@11", "BH-K8S-002@14"} {
		if !contains(got, w) {
			t.Errorf("missing %s in %v", w, got)
		}
	}
	objs, _ := ParseBytes("t", []byte(src))
	if len(objs) != 2 || objs[0].Path != "items[0]" {
		t.Errorf("objects: %d, first path %q", len(objs), objs[0].Path)
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"bad yaml":        "apiVersion: v1\nkind: Pod\n  bad: [",
		"bad type":        "apiVersion: v1\nkind: Pod\nspec:\n  containers: 3\n",
		"template":        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Values.name }}\n",
		"alias expansion": aliasBomb(),
	}
	for name, src := range cases {
		_, err := ParseBytes("t.yaml", []byte(src))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), "t.yaml") {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
	}
	_, err := ParseBytes("t.yaml", []byte(cases["template"]))
	if !strings.Contains(err.Error(), "helm template") {
		t.Errorf("no rendering hint: %v", err)
	}
	big := strings.NewReader(strings.Repeat(" ", MaxInputSize+10))
	if _, err := Parse("big.yaml", big); err == nil {
		t.Error("oversized input accepted")
	}
}

// aliasBomb is a "billion laughs" document: small, exponential when
// expanded.
func aliasBomb() string {
	var b strings.Builder
	b.WriteString("kind: Pod\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	return b.String()
}

func TestLineOfMissingField(t *testing.T) {
	objs, err := ParseBytes("t.yaml", []byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    a.b/c: x\nspec:\n  containers:\n  - name: c\n    image: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := objs[0]
	for path, want := range map[string]int{
		"spec.containers[0].image":                    10,
		"spec.containers[0].securityContext.readOnly": 9,
		`metadata.annotations["a.b/c"]`:               6,
		"spec.nothing":                                7,
		"":                                            1,
	} {
		if got := o.LineOf(path); got != want {
			t.Errorf("LineOf(%q) = %d, want %d", path, got, want)
		}
	}
}
