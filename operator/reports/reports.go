// Package reports turns scan results and audits into the bulkhead.dev
// report objects, each within a hard size budget: the top findings are
// kept, most severe first, until the serialized object would pass the
// budget, and the report says it was truncated. The counts always cover
// every finding; the full list lives in bulkhead server.
package reports

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/report"
)

// DefaultBudget is the default size budget of one report object, in bytes
// of JSON: far below etcd's 1.5 MiB request limit, so thousands of reports
// cost etcd little.
const DefaultBudget = 64 << 10

// serverReserve is the part of a budget left for what the API server adds
// to a stored object (uid, resourceVersion, timestamps, managedFields).
const serverReserve = 2048

// maxTitle bounds a finding's title in a report.
const maxTitle = 200

// ImageName is the ImageReport name of a digest: "sha256-<hex>".
func ImageName(digest string) string { return strings.Replace(digest, ":", "-", 1) }

// Count adds f to c by its severity.
func Count(c *v1alpha1.Counts, sev finding.Severity) {
	switch sev {
	case finding.Critical:
		c.Critical++
	case finding.High:
		c.High++
	case finding.Medium:
		c.Medium++
	case finding.Low:
		c.Low++
	default:
		c.Unknown++
	}
}

// Image is what an ImageReport is built from.
type Image struct {
	Digest, Repository string
	Result             *report.Result
	ScannedAt          time.Time
	Server             string
	ScanID             int64
}

// NewImageReport builds the ImageReport of a scan, within budget bytes
// (0: DefaultBudget).
func NewImageReport(in Image, budget int) (*v1alpha1.ImageReport, error) {
	if budget <= 0 {
		budget = DefaultBudget
	}
	r := &v1alpha1.ImageReport{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ImageReport"},
		ObjectMeta: metav1.ObjectMeta{Name: ImageName(in.Digest)},
	}
	d := &r.Report
	d.Digest, d.Repository, d.Server, d.ScanID = in.Digest, in.Repository, in.Server, in.ScanID
	d.ScannedAt = metav1.NewTime(in.ScannedAt.UTC().Truncate(time.Second))
	var vulns []finding.Finding
	if res := in.Result; res != nil {
		if res.Inventory != nil {
			d.Packages = len(res.Inventory.Packages)
		}
		if res.DB != nil {
			d.DBVersion = res.DB.UpdatedAt.UTC().Format(time.RFC3339)
			if res.DB.Source != "" {
				d.DBVersion += " (" + truncate(res.DB.Source, 100) + ")"
			}
		}
		for _, f := range res.Findings {
			if f.Kind != finding.KindVulnerability || f.Suppressed != nil {
				continue
			}
			vulns = append(vulns, f)
			Count(&d.Summary, f.Severity)
			if len(f.FixedVersions) > 0 {
				Count(&d.Fixable, f.Severity)
			}
		}
	}
	// Most severe first, then fixable first, then by ID: the order the
	// report keeps them in when it must drop some.
	slices.SortStableFunc(vulns, func(a, b finding.Finding) int {
		if a.Severity != b.Severity {
			return int(b.Severity) - int(a.Severity)
		}
		if fa, fb := len(a.FixedVersions) > 0, len(b.FixedVersions) > 0; fa != fb {
			if fa {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	all := make([]v1alpha1.Vulnerability, 0, len(vulns))
	for _, f := range vulns {
		v := v1alpha1.Vulnerability{ID: truncate(f.ID, 128), Severity: severityName(f.Severity), Title: truncate(f.Title, maxTitle)}
		if f.Package != nil {
			v.Package, v.Version = truncate(f.Package.Name, 256), truncate(f.Package.Version, 128)
		}
		if v.Package == "" {
			v.Package = "-"
		}
		if len(f.FixedVersions) > 0 {
			v.FixedVersion = truncate(f.FixedVersions[0], 128)
		}
		all = append(all, v)
	}
	// The CRD allows at most 1,000 listed findings.
	keep := min(len(all), 1000)
	n, err := fit(keep, budget, func(n int) any {
		d.Vulnerabilities = all[:n]
		d.Truncated = n < len(all)
		return r
	})
	if err != nil {
		return nil, fmt.Errorf("image report of %s: %w", in.Digest, err)
	}
	d.Vulnerabilities, d.Truncated = all[:n:n], n < len(all)
	return r, nil
}

// fit returns the largest n <= max for which the object set(n) returns
// serializes within budget (a binary search over the prefix length).
func fit(max, budget int, set func(n int) any) (int, error) {
	budget -= serverReserve
	size := func(n int) (int, error) {
		b, err := json.Marshal(set(n))
		return len(b), err
	}
	s, err := size(max)
	if err != nil {
		return 0, err
	}
	if s <= budget {
		return max, nil
	}
	if s, err = size(0); err != nil {
		return 0, err
	} else if s > budget {
		return 0, fmt.Errorf("%d bytes with no finding listed, over the budget of %d", s, budget)
	}
	lo, hi := 0, max // size(lo) fits, size(hi) does not
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		s, err := size(mid)
		if err != nil {
			return 0, err
		}
		if s <= budget {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

func severityName(s finding.Severity) string {
	switch s {
	case finding.Critical:
		return "critical"
	case finding.High:
		return "high"
	case finding.Medium:
		return "medium"
	case finding.Low:
		return "low"
	}
	return "unknown"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// WorkloadName is the WorkloadReport name of a workload:
// "<kind>-<name>" in lower case.
func WorkloadName(kind, name string) string {
	n := strings.ToLower(kind) + "-" + name
	if len(n) > 253 {
		n = n[:253]
	}
	return n
}

// Workload is what a WorkloadReport is built from.
type Workload struct {
	Kind, Namespace, Name, UID string
	Containers                 []v1alpha1.Container
	// Images are the ImageReports of the containers' digests that exist.
	Images map[string]*v1alpha1.ImageReport
	// Audit is the configuration audit's findings and level.
	Audit       []finding.Finding
	PodSecurity string
	UpdatedAt   time.Time
}

// NewWorkloadReport builds the WorkloadReport of a workload, within budget
// bytes (0: DefaultBudget), owned by the workload.
func NewWorkloadReport(in Workload, budget int) (*v1alpha1.WorkloadReport, error) {
	if budget <= 0 {
		budget = DefaultBudget
	}
	r := &v1alpha1.WorkloadReport{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "WorkloadReport"},
		ObjectMeta: metav1.ObjectMeta{
			Name: WorkloadName(in.Kind, in.Name), Namespace: in.Namespace,
			Labels: map[string]string{v1alpha1.LabelWorkloadKind: in.Kind, v1alpha1.LabelWorkloadName: labelValue(in.Name)},
		},
	}
	if in.UID != "" {
		t := true
		r.OwnerReferences = []metav1.OwnerReference{{APIVersion: apiVersion(in.Kind), Kind: in.Kind, Name: in.Name, UID: typesUID(in.UID), Controller: &t}}
	}
	d := &r.Report
	d.Workload = v1alpha1.WorkloadRef{Kind: in.Kind, Name: in.Name, UID: in.UID}
	d.Containers = in.Containers
	if d.Containers == nil {
		d.Containers = []v1alpha1.Container{}
	}
	d.UpdatedAt = metav1.NewTime(in.UpdatedAt.UTC().Truncate(time.Second))
	complete, seen := true, map[string]bool{}
	var missing []string
	for _, c := range in.Containers {
		if c.Digest == "" {
			complete = false
			missing = append(missing, c.Name+": "+truncate(c.Error, 200))
			continue
		}
		ir := in.Images[c.Digest]
		if ir == nil || ir.Report.Error != "" {
			complete = false
			missing = append(missing, c.Name+": no image report yet")
			continue
		}
		if !seen[c.Digest] {
			seen[c.Digest] = true
			d.Vulnerabilities.Add(ir.Report.Summary)
		}
	}
	a := &d.ConfigAudit
	a.PodSecurity = in.PodSecurity
	if a.PodSecurity == "" {
		a.PodSecurity = "restricted"
	}
	var checks []v1alpha1.Check
	for _, f := range in.Audit {
		if f.Suppressed != nil {
			continue
		}
		Count(&a.Summary, f.Severity)
		checks = append(checks, v1alpha1.Check{ID: truncate(f.ID, 64), Severity: severityName(f.Severity), Title: truncate(f.Title, 512)})
	}
	slices.SortStableFunc(checks, func(x, y v1alpha1.Check) int { return sevRank(y.Severity) - sevRank(x.Severity) })
	cond := metav1.Condition{Type: v1alpha1.ConditionComplete, Status: metav1.ConditionTrue, Reason: "AllImagesScanned", Message: "every container's image has its ImageReport", LastTransitionTime: d.UpdatedAt}
	if !complete {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "ImagesPending", truncate(strings.Join(missing, "; "), 1000)
	}
	r.Status.Conditions = []metav1.Condition{cond}
	keep := min(len(checks), 500)
	n, err := fit(keep, budget, func(n int) any {
		a.Checks = checks[:n]
		a.Truncated = n < len(checks)
		return r
	})
	if err != nil {
		return nil, fmt.Errorf("workload report of %s/%s/%s: %w", in.Namespace, in.Kind, in.Name, err)
	}
	a.Checks, a.Truncated = checks[:n:n], n < len(checks)
	return r, nil
}

func sevRank(s string) int {
	return slices.Index([]string{"unknown", "low", "medium", "high", "critical"}, s)
}

func labelValue(s string) string {
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.TrimRight(s, "-_.")
}

func apiVersion(kind string) string {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "v1"
}
