package reports

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
)

// ManyFindings is a scan result of n vulnerability findings with long
// titles, every fifth one fixable, over all severities (and one
// suppressed finding, which is not counted).
func ManyFindings(n int) *report.Result {
	res := &report.Result{Inventory: &inventory.Inventory{}}
	sevs := []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Unknown}
	for i := range n {
		f := finding.Finding{
			ID: fmt.Sprintf("CVE-2026-%05d", i), Kind: finding.KindVulnerability, Severity: sevs[i%len(sevs)],
			Title:   strings.Repeat("a long advisory title ", 20),
			Package: &finding.Package{Name: fmt.Sprintf("package-%d", i%300), Version: "1.0." + fmt.Sprint(i)},
		}
		if i%5 == 0 {
			f.FixedVersions = []string{"2.0.0"}
		}
		res.Findings = append(res.Findings, f)
		res.Inventory.Packages = append(res.Inventory.Packages, inventory.Package{Name: f.Package.Name})
	}
	res.Findings = append(res.Findings, finding.Finding{ID: "CVE-SUPPRESSED", Kind: finding.KindVulnerability, Severity: finding.Critical, Suppressed: &finding.Suppression{Kind: "ignore"}})
	return res
}

// An image with 5,000 findings gives a report under the default budget
// that counts all of them, lists the most severe first, and says it was
// truncated; a small image's report is complete.
func TestImageReportBudget(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	r, err := NewImageReport(Image{Digest: d, Repository: "r/app", Result: ManyFindings(5000), ScannedAt: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	if len(b) > DefaultBudget {
		t.Fatalf("%d bytes, over the budget of %d", len(b), DefaultBudget)
	}
	rep := r.Report
	if !rep.Truncated || len(rep.Vulnerabilities) == 0 || len(rep.Vulnerabilities) >= 5000 {
		t.Errorf("truncated %v with %d listed", rep.Truncated, len(rep.Vulnerabilities))
	}
	if rep.Summary.Total() != 5000 || rep.Summary.Critical != 1000 || rep.Fixable.Total() != 1000 {
		t.Errorf("summary %+v fixable %+v", rep.Summary, rep.Fixable)
	}
	// The budget is used, not wasted: one more finding would not fit.
	if len(b) < DefaultBudget*9/10 {
		t.Errorf("%d bytes: the report stops well short of its budget", len(b))
	}
	for i, v := range rep.Vulnerabilities {
		if v.Severity != "critical" {
			t.Fatalf("listed finding %d is %s; the most severe come first", i, v.Severity)
		}
		if i < 200 && v.FixedVersion == "" {
			t.Fatalf("listed finding %d has no fix before all fixable criticals were listed", i)
		}
	}
	small, err := NewImageReport(Image{Digest: d, Repository: "r/app", Result: ManyFindings(10), ScannedAt: time.Now()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if small.Report.Truncated || len(small.Report.Vulnerabilities) != 10 {
		t.Errorf("small: truncated %v, %d listed", small.Report.Truncated, len(small.Report.Vulnerabilities))
	}
	// A budget too small for the report's own fields is an error.
	if _, err := NewImageReport(Image{Digest: d, Repository: "r/app", Result: ManyFindings(10)}, 2200); err == nil {
		t.Error("a 2,200-byte budget was met")
	}
}

// A workload with thousands of failed checks (a pod of many containers)
// stays under its budget too.
func TestWorkloadReportBudget(t *testing.T) {
	var audit []finding.Finding
	for i := range 3000 {
		audit = append(audit, finding.Finding{ID: fmt.Sprintf("BH-K8S-%03d", i%100), Kind: finding.KindMisconfiguration, Severity: finding.High, Title: strings.Repeat("container runs as root ", 10)})
	}
	r, err := NewWorkloadReport(Workload{Kind: "Deployment", Namespace: "ns", Name: "web", UID: "u", Audit: audit, PodSecurity: "privileged", UpdatedAt: time.Now()}, 16<<10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(r)
	if len(b) > 16<<10 || !r.Report.ConfigAudit.Truncated || r.Report.ConfigAudit.Summary.High != 3000 {
		t.Errorf("%d bytes, truncated %v, summary %+v", len(b), r.Report.ConfigAudit.Truncated, r.Report.ConfigAudit.Summary)
	}
}
