package kubernetes

import (
	"os"
	"testing"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// scanOnce is the kind's checker made for one call, returning the findings
// sorted.
func scanOnce(name string, data []byte, o kindOptions, pol *cel.Policy) ([]finding.Finding, error) {
	k, err := newKindScanner(o, pol)
	if err != nil {
		return nil, err
	}
	var out []finding.Finding
	err = k.scan(name, data, func(fs []finding.Finding) { out = append(out, fs...) })
	SortFindings(out)
	return out, err
}

func TestKubernetesConfigKind(t *testing.T) {
	data, err := os.ReadFile("testdata/examples/_archived_sysdig-cloud_sysdig-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !LooksLikeManifest("ds.yaml", data) || !LooksLikeManifest("-", data) {
		t.Fatal("manifest not recognised")
	}
	for name, src := range map[string]string{
		"compose.yaml": "services:\n  web:\n    image: nginx\n",
		"Dockerfile":   "FROM alpine\n",
		"values.yaml":  "image:\n  tag: 1\nkind: web\n",
		"package.json": `{"name": "x", "version": "1.0.0"}`,
		"workflow.yml": "on: push\njobs: {}\n",
	} {
		if LooksLikeManifest(name, []byte(src)) {
			t.Errorf("%s taken for a manifest", name)
		}
	}
	pol, err := cel.LoadFile("../../cel/testdata/checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := scanOnce("ds.yaml", data, kindOptions{PSS: "baseline", PSSVersion: "latest"}, pol)
	if err != nil {
		t.Fatal(err)
	}
	restricted, err := scanOnce("ds.yaml", data, kindOptions{PSS: "restricted", PSSVersion: "v1.30"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(fs []finding.Finding) map[string]int {
		m := map[string]int{}
		for _, f := range fs {
			m[f.ID]++
		}
		return m
	}
	b, r := ids(base), ids(restricted)
	if b["BH-K8S-003"] != 1 || b["BH-K8S-021"] != 0 || r["BH-K8S-021"] != 1 || b["ORG-K8S-001"] != 1 || r["ORG-K8S-001"] != 0 {
		t.Errorf("baseline %v\nrestricted %v", b, r)
	}
	if _, err := scanOnce("ds.yaml", data, kindOptions{PSS: "strict"}, nil); err == nil {
		t.Error("bad --pss accepted")
	}
}
