package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// TestAnswerMatchesResultJSONCompact: the upload answer spliced from the
// stored JSON is the document report.ResultJSONCompact writes (the same
// JSON value, field by field), with packages without locations, findings
// with aliases, CVSS scores, suppressions and text JSON and HTML escape
// differently, a database and none, findings and none.
func TestAnswerMatchesResultJSONCompact(t *testing.T) {
	inv := sbomtest.Alpine()
	inv.Packages[0].Locations = nil
	fs := []finding.Finding{
		{ID: "CVE-2026-1", Kind: finding.KindVulnerability, Aliases: []string{"GHSA-aaaa-bbbb-cccc"}, Severity: finding.High,
			CVSS: []finding.CVSS{{Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8}}, Title: "a <b> & \"c\" \u2028 é",
			Target: inv.Target.Name, Package: &finding.Package{Name: inv.Packages[0].Name, Version: inv.Packages[0].Version}, FixedVersions: []string{"1.2", "1.3"}},
		{ID: "aws-key", Kind: finding.KindSecret, Severity: finding.Critical, Target: "/etc/x", Location: &finding.Location{Path: "/etc/x"},
			Suppressed: &finding.Suppression{Kind: "ignore", Source: "test"}},
	}
	db := &report.DBInfo{Source: "osv", UpdatedAt: time.Date(2026, 12, 1, 2, 3, 4, 5, time.UTC), Records: 42}
	for _, tc := range []struct {
		name string
		r    report.Result
	}{
		{"findings", report.Result{Inventory: inv, Findings: fs, Scanners: []string{"vuln"}, DB: db}},
		{"none", report.Result{Inventory: inv, Scanners: []string{"vuln"}}},
		{"no scanners", report.Result{Inventory: inv, Findings: fs[:1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want bytes.Buffer
			if err := report.ResultJSONCompact(&want, &tc.r); err != nil {
				t.Fatal(err)
			}
			e, err := encodeResult(&tc.r)
			if err != nil {
				t.Fatal(err)
			}
			got := e.answer(&tc.r)
			var w, g any
			if err := json.Unmarshal(want.Bytes(), &w); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(got, &g); err != nil {
				t.Fatalf("the answer is not JSON: %v\n%s", err, got)
			}
			if !reflect.DeepEqual(w, g) {
				t.Fatalf("answer differs from ResultJSONCompact:\nwant %s\ngot  %s", want.Bytes(), got)
			}
			// The stored inventory decodes to the answered one.
			var stored inventory.Inventory
			if err := json.Unmarshal(e.invJSON, &stored); err != nil || !reflect.DeepEqual(&stored, e.inv) {
				t.Fatalf("stored inventory JSON does not decode to the inventory kept: %v", err)
			}
		})
	}
}
