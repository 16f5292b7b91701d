package cli

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/finding"
)

func TestKubernetesConfigKind(t *testing.T) {
	data, err := os.ReadFile("../../config/kubernetes/testdata/examples/_archived_sysdig-cloud_sysdig-daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !looksLikeKubernetes("ds.yaml", data) || !looksLikeKubernetes("-", data) {
		t.Fatal("manifest not recognised")
	}
	for name, src := range map[string]string{
		"compose.yaml": "services:\n  web:\n    image: nginx\n",
		"Dockerfile":   "FROM alpine\n",
		"values.yaml":  "image:\n  tag: 1\nkind: web\n",
		"package.json": `{"name": "x", "version": "1.0.0"}`,
		"workflow.yml": "on: push\njobs: {}\n",
	} {
		if looksLikeKubernetes(name, []byte(src)) {
			t.Errorf("%s taken for a manifest", name)
		}
	}
	pol, err := cel.LoadFile("../../cel/testdata/checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base, err := scanKubernetesConfig("ds.yaml", data, kubernetesConfigOptions{PSS: "baseline", PSSVersion: "latest"}, pol)
	if err != nil {
		t.Fatal(err)
	}
	restricted, err := scanKubernetesConfig("ds.yaml", data, kubernetesConfigOptions{PSS: "restricted", PSSVersion: "v1.30"}, nil)
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
	if _, err := scanKubernetesConfig("ds.yaml", data, kubernetesConfigOptions{PSS: "strict"}, nil); err == nil {
		t.Error("bad --pss accepted")
	}
}

// TestConfigCommandKubernetes runs `bulkhead config` on a manifest file and
// on Helm-style output from standard input.
func TestConfigCommandKubernetes(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"config", "--format", "json", "--pss", "baseline", "--scanners", "misconfig",
		"../../config/kubernetes/testdata/examples/_archived_sysdig-cloud_sysdig-daemonset.yaml"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, w := range []string{`"BH-K8S-003"`, `"BH-K8S-110"`, `"startLine": 44`} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("missing %s in output", w)
		}
	}
	if strings.Contains(out.String(), `"BH-K8S-021"`) {
		t.Error("restricted control reported at --pss baseline")
	}
	cmd := newRoot(&out, &errb)
	out.Reset()
	cmd.SetIn(strings.NewReader("---\n# Source: chart/templates/pod.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  hostPID: true\n  containers:\n  - name: c\n    image: x:1\n"))
	cmd.SetArgs([]string{"config", "--format", "json", "--exit-code", "3", "-"})
	err := cmd.Execute()
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("want exit code 3, got %v", err)
	}
	if !strings.Contains(out.String(), `"BH-K8S-002"`) {
		t.Errorf("stdin manifest not checked: %s", out.String())
	}
}
