package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// sampleResult holds findings shaped like real ones: PYSEC-2023-192 /
// GHSA-v845-jxx5-vc9f (urllib3 cookie leak, fixed in 1.26.17), and a
// suppressed one.
func sampleResult() *Result {
	inv := sbomtest.Debian()
	layer := &inventory.Layer{Index: 0, DiffID: "sha256:24d58df9dfe44a87e8fd5adf846fb625afe0d9be2b2cdd3ebcd2d46654da07e3"}
	return &Result{
		Inventory: inv,
		Scanners:  []string{"vuln"},
		Findings: []finding.Finding{
			{
				ID: "PYSEC-2023-192", Kind: finding.KindVulnerability, Aliases: []string{"CVE-2023-43804", "GHSA-v845-jxx5-vc9f"},
				Severity: finding.High, SeveritySource: "CVSS v3.1", CVSS: []finding.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N", Score: 7.4}},
				Title: "urllib3 Cookie request header isn't stripped during cross-origin redirects", Target: inv.Target.Name,
				Package:       &finding.Package{Name: "urllib3", Version: "1.26.12", Type: "pypi", PURL: "pkg:pypi/urllib3@1.26.12", Ecosystem: "PyPI", Path: "/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info", Layer: layer},
				FixedVersions: []string{"1.26.17", "2.0.6"}, Status: finding.StatusFixed,
				References: []string{"https://github.com/urllib3/urllib3/security/advisories/GHSA-v845-jxx5-vc9f"},
			},
			{
				ID: "CVE-2024-0001", Kind: finding.KindVulnerability, Severity: finding.Low, Title: "example <script>", Target: inv.Target.Name,
				Package:    &finding.Package{Name: "bash", Version: "5.2.15-2+b2", Type: "deb", Path: "/var/lib/dpkg/status"},
				Status:     finding.StatusNoFixYet,
				Suppressed: &finding.Suppression{Kind: "vex", Status: "not_affected", Justification: "vulnerable_code_not_in_execute_path", Source: "vex.json"},
			},
		},
	}
}

func TestSARIFValidates(t *testing.T) {
	schema := sbomtest.Schema(t, "testdata/sarif", "sarif-schema-2.1.0.json")
	var buf bytes.Buffer
	if err := SARIF(&buf, sampleResult(), "1.2.3"); err != nil {
		t.Fatal(err)
	}
	if err := sbomtest.Validate(schema, buf.Bytes()); err != nil {
		t.Fatalf("SARIF 2.1.0 schema: %v\n%s", err, buf.String())
	}
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Rules []struct {
						ID         string         `json:"id"`
						Properties map[string]any `json:"properties"`
					} `json:"rules"`
				} `json:"driver"`
			} `json:"tool"`
			Results []struct {
				RuleID       string           `json:"ruleId"`
				Level        string           `json:"level"`
				Suppressions []map[string]any `json:"suppressions"`
				Locations    []struct {
					PhysicalLocation struct {
						ArtifactLocation struct{ URI string } `json:"artifactLocation"`
					} `json:"physicalLocation"`
				} `json:"locations"`
			} `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	r := doc.Runs[0]
	if len(r.Tool.Driver.Rules) != 2 || len(r.Results) != 2 {
		t.Fatalf("rules %d results %d", len(r.Tool.Driver.Rules), len(r.Results))
	}
	// GitHub code scanning reads security-severity from rule properties.
	if r.Tool.Driver.Rules[1].ID != "PYSEC-2023-192" || r.Tool.Driver.Rules[1].Properties["security-severity"] != "7.4" {
		t.Errorf("rule = %+v", r.Tool.Driver.Rules[1])
	}
	pysec := r.Results[1]
	if pysec.Level != "error" || pysec.Locations[0].PhysicalLocation.ArtifactLocation.URI != "usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info" {
		t.Errorf("result = %+v", pysec)
	}
	if len(r.Results[0].Suppressions) != 1 {
		t.Errorf("suppressed finding has no suppression: %+v", r.Results[0])
	}
}

func TestResultJSONAndTable(t *testing.T) {
	res := sampleResult()
	var buf bytes.Buffer
	if err := ResultJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	var doc ResultDocument
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Findings) != 2 || doc.Summary["HIGH"] != 1 || doc.Summary["LOW"] != 0 {
		t.Errorf("findings %d summary %v", len(doc.Findings), doc.Summary)
	}
	if doc.Findings[1].Suppressed == nil || doc.Findings[1].Suppressed.Justification != "vulnerable_code_not_in_execute_path" {
		t.Errorf("suppression lost: %+v", doc.Findings[1])
	}
	buf.Reset()
	if err := ResultTable(&buf, res, Options{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"Findings: 1 (CRITICAL: 0, HIGH: 1", "1 suppressed", "urllib3", "PYSEC-2023-192", "1.26.17, 2.0.6"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CVE-2024-0001") {
		t.Errorf("suppressed finding listed:\n%s", out)
	}
}

// TestResultJSONCompact: the compact document is ResultJSON's, byte for
// byte once ResultJSON's indentation is taken out (warnings merged, null
// locations written as []).
func TestResultJSONCompact(t *testing.T) {
	res := sampleResult()
	res.Warnings = []string{"a <warning>"}
	res.Inventory.Packages[0].Locations = nil
	var indented, compact, want bytes.Buffer
	if err := ResultJSON(&indented, res); err != nil {
		t.Fatal(err)
	}
	if err := ResultJSONCompact(&compact, res); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&want, indented.Bytes()); err != nil {
		t.Fatal(err)
	}
	want.WriteByte('\n')
	if !bytes.Equal(compact.Bytes(), want.Bytes()) {
		t.Fatalf("compact document differs from ResultJSON's:\n%s\nwant\n%s", compact.Bytes(), want.Bytes())
	}
	if res.Inventory.Packages[0].Locations != nil || len(res.Inventory.Warnings) != 0 {
		t.Fatal("ResultJSONCompact changed the result")
	}
}
