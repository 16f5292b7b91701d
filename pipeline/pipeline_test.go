package pipeline

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/scan"
)

const demo = "oci-archive:../testdata/images/alpine-demo.oci.tar"

// The whole pipeline on the demo image: opened, walked with a scanner,
// matched against a database built from the bundled snapshot, with
// warnings in the result and nothing left in the temp directory; then a
// shared matcher with an ignore file suppresses one of the findings
// (marked, not dropped) and notes the expired entry.
func TestRunDemoImage(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "osv.db")
	res, err := Run(t.Context(), demo, Options{TempDir: tmp, Scanners: []scan.Scanner{audit.New()}, Vulns: &MatchOptions{DBPath: dbPath}})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp directory not cleaned: %v", left)
	}
	if res.Image == nil || res.Tree == nil || len(res.Inventory.Packages) == 0 {
		t.Fatalf("result: image %v tree %v packages %d", res.Image, res.Tree, len(res.Inventory.Packages))
	}
	var vuln *finding.Finding
	kinds := map[finding.Kind]int{}
	for i, f := range res.Findings {
		kinds[f.Kind]++
		if f.Kind == finding.KindVulnerability && f.Package != nil && f.Package.Name == "lodash" && vuln == nil {
			vuln = &res.Findings[i]
		}
	}
	if vuln == nil || kinds[finding.KindMisconfiguration] == 0 {
		t.Fatalf("want a lodash vulnerability and audit findings, got %v", kinds)
	}
	if !slices.Contains(res.Used, "npm") || res.DB == nil || res.DB.Records == 0 {
		t.Errorf("used %v, db %+v", res.Used, res.DB)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "bundled in this binary") {
		t.Errorf("warnings: %q", res.Warnings)
	}

	ignore := filepath.Join(dir, "ignore")
	if err := os.WriteFile(ignore, []byte(vuln.ID+"\nCVE-2000-0001 exp:2001-01-01\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := OpenMatcher(MatchOptions{DBPath: dbPath, IgnoreFile: ignore})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res2, err := Run(t.Context(), demo, Options{TempDir: tmp, Matcher: m})
	if err != nil {
		t.Fatal(err)
	}
	suppressed := 0
	for _, f := range res2.Findings {
		if f.Kind != finding.KindVulnerability {
			t.Errorf("no scanner asked for, got a %s finding", f.Kind)
		}
		if f.ID == vuln.ID && f.Suppressed != nil {
			suppressed++
		}
	}
	if suppressed == 0 {
		t.Errorf("%s not suppressed by the ignore file", vuln.ID)
	}
	if !strings.Contains(strings.Join(res2.Warnings, "\n"), "CVE-2000-0001") {
		t.Errorf("no note of the expired entry: %q", res2.Warnings)
	}
	if got := m.Used(); !slices.Contains(got, "npm") {
		t.Errorf("matcher used: %v", got)
	}
	if act, err := m.Active(t.Context(), res2.Inventory); err != nil || len(act) >= len(res2.Findings) {
		t.Errorf("active: %d of %d, %v", len(act), len(res2.Findings), err)
	}
}
