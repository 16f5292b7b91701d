package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigCommand(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../../config/dockerfile/testdata/official/mysql-8.0-debian.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "app"), 0o755)
	os.WriteFile(filepath.Join(dir, "app", "Dockerfile"), src, 0o644)
	os.WriteFile(filepath.Join(dir, "app", "notes.txt"), []byte("AKIAIOSFODNN7EXAMPLE\n"), 0o644) // not a config file: not read
	os.WriteFile(filepath.Join(dir, "web.Dockerfile"), []byte("FROM alpine:latest\nENV GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n# bulkhead:ignore:BH-DF-019\nEXPOSE 22\nCOPY . /src\n"), 0o644)

	var out, errb bytes.Buffer
	code := Main([]string{"config", "-f", "json", "--exit-code", "4", dir}, &out, &errb)
	if code != 4 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var doc struct {
		Findings []struct {
			ID       string `json:"id"`
			Location struct {
				Path      string `json:"path"`
				StartLine int    `json:"startLine"`
			} `json:"location"`
			Suppressed *struct{} `json:"suppressed"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range doc.Findings {
		k := filepath.Base(f.Location.Path) + ":" + f.ID
		if f.Suppressed != nil {
			k += "(suppressed)"
		}
		got[k] = true
	}
	for _, want := range []string{"Dockerfile:BH-DF-001", "Dockerfile:BH-DF-014", "web.Dockerfile:BH-DF-007", "web.Dockerfile:BH-DF-009", "web.Dockerfile:BH-DF-019(suppressed)", "web.Dockerfile:BH-DF-021"} {
		if !got[want] {
			t.Errorf("missing %s in %v", want, got)
		}
	}
	for k := range got {
		if strings.HasPrefix(k, "notes.txt") || strings.Contains(k, "github-token") {
			t.Errorf("unexpected %s", k)
		}
	}
	if strings.Contains(out.String(), "ghp_0123456789abcdefghij") {
		t.Error("secret not redacted in the JSON report")
	}

	// stdin with --type, severity filter, SARIF.
	out.Reset()
	cmd := newRoot(&out, &errb)
	cmd.SetIn(bytes.NewReader(src))
	cmd.SetArgs([]string{"config", "--type", "dockerfile", "--severity", "HIGH", "-f", "sarif", "-"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"ruleId": "BH-DF-001"`) || strings.Contains(out.String(), `"ruleId": "BH-DF-014"`) {
		t.Errorf("sarif: %s", out.String())
	}
	// Bad input is a clear error.
	if code := Main([]string{"config", "--type", "yaml", dir}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "--type") {
		t.Errorf("bad --type: %d %s", code, errb.String())
	}
}
