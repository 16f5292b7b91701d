package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

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
