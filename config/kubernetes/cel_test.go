package kubernetes

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// manifestFiles lists the YAML and JSON files under root.
func manifestFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !strings.HasSuffix(p, "_expected_result.json") && !strings.Contains(p, string(filepath.Separator)+"fuzz"+string(filepath.Separator)) {
				out = append(out, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// key is a finding reduced to what both implementations must agree on.
func key(f finding.Finding) string {
	return fmt.Sprintf("%s:%d:%s", f.Target, f.Location.StartLine, f.ID)
}

// celAgreement compares the Go checks with their CEL versions on every
// manifest under the roots.
func celAgreement(t *testing.T, roots ...string) {
	t.Helper()
	pol, err := cel.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, c := range pol.Checks {
		ids[c.ID] = true
	}
	goScan, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	celScan := NewCELChecks(pol)
	var objects, goN, celN, disagree int
	perID := map[string]int{}
	for _, root := range roots {
		for _, f := range manifestFiles(t, root) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			objs, _ := ParseBytes(f, data)
			for _, o := range objs {
				objects++
				gfs, err := goScan.object(o, nil)
				if err != nil {
					t.Fatal(err)
				}
				cfs, err := celScan.CheckObject(o)
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				want := map[string]bool{}
				for _, x := range gfs {
					if ids[x.ID] {
						want[key(x)] = true
						goN++
						perID[x.ID]++
					}
				}
				got := map[string]bool{}
				for _, x := range cfs {
					got[key(x)] = true
					celN++
				}
				for k := range want {
					if !got[k] {
						disagree++
						t.Errorf("CEL misses %s", k)
					}
				}
				for k := range got {
					if !want[k] {
						disagree++
						t.Errorf("CEL adds %s", k)
					}
				}
			}
		}
	}
	t.Logf("%d objects: Go %d findings, CEL %d, %d disagreements; per check %v", objects, goN, celN, disagree, perID)
	for id := range ids {
		if perID[id] == 0 {
			t.Errorf("%s: no finding in the fixtures, the comparison proves nothing for it", id)
		}
	}
}

func TestCELBuiltinAgreesFixtures(t *testing.T) {
	celAgreement(t, "testdata")
}

func TestCELBuiltinAgreesCorpus(t *testing.T) {
	celAgreement(t, corpusDir(t, "k8s"))
}

func TestCustomPolicy(t *testing.T) {
	pol, err := cel.Load("test.yaml", []byte(`
checks:
  - id: ORG-001
    title: Pods need a priority class
    severity: high
    target: kubernetes
    expression: isWorkload && !has(podSpec.priorityClassName)
    message: no priorityClassName
  - id: ORG-002
    severity: low
    target: kubernetes
    expression: containers.filter(c, c.name.startsWith("debug")).map(c, c.path + ".name")
    message: debug container
  - id: ORG-003
    severity: low
    target: imageconfig
    expression: "true"
    message: not for manifests
`))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Extra: []ObjectChecker{NewCELChecks(pol)}})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := ParseBytes("pod.yaml", []byte(`apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    bulkhead.dev/ignore: ORG-001
spec:
  containers:
  - name: app
    image: app:1
  - name: debug-shell
    image: busybox:1
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  template:
    spec:
      priorityClassName: high
      containers:
      - name: debugger
        image: x:1
`))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		if strings.HasPrefix(f.ID, "ORG-") {
			got = append(got, fmt.Sprintf("%s@%d:%v:%s", f.ID, f.Location.StartLine, f.Suppressed != nil, f.Severity))
		}
	}
	want := []string{"ORG-001@1:true:HIGH", "ORG-002@11:false:LOW", "ORG-002@23:false:LOW"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}
