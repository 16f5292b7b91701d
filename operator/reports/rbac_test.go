package reports

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
)

// A ClusterRole bound to 5,000 subjects, with 2,000 long findings, gives a
// report under its budget that counts every finding, keeps the most
// severe, says it was truncated and names the role.
func TestRBACReportBudget(t *testing.T) {
	in := RBAC{Kind: "ClusterRole", Name: "system:controller:Big", UID: "u1", UpdatedAt: time.Now()}
	sevs := []finding.Severity{finding.Low, finding.Medium, finding.High, finding.Critical}
	for i := range 2000 {
		in.Findings = append(in.Findings, finding.Finding{ID: "BH-K8S-205", Severity: sevs[i%4], Title: "t", Description: strings.Repeat("held by someone; ", 200)})
	}
	for i := range 5000 {
		in.Subjects = append(in.Subjects, v1alpha1.RBACSubject{Kind: "ServiceAccount", Name: fmt.Sprintf("sa-%d", i), Namespace: "ns", Binding: "ClusterRoleBinding b", Severity: "high",
			Workloads: []string{"Deployment ns/a", "Deployment ns/b"}})
	}
	for _, budget := range []int{8 << 10, DefaultBudget} {
		r, err := NewClusterRbacAssessmentReport(in, budget)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r)
		if len(b) > budget-serverReserve {
			t.Errorf("budget %d: %d bytes", budget, len(b))
		}
		d := r.Report
		if !d.Truncated || d.Summary.Total() != 2000 || d.Summary.Critical != 500 || len(d.Checks) == 0 || len(d.Subjects) == 0 {
			t.Errorf("budget %d: truncated %v, summary %+v, %d checks, %d subjects", budget, d.Truncated, d.Summary, len(d.Checks), len(d.Subjects))
		}
		if d.Checks[0].Severity != "critical" {
			t.Errorf("most severe not first: %+v", d.Checks[0])
		}
		if r.Name != RBACName("ClusterRole", in.Name) || d.Role.Name != in.Name || r.OwnerReferences[0].UID != "u1" {
			t.Errorf("name %s, role %+v", r.Name, d.Role)
		}
	}
}

func TestRBACName(t *testing.T) {
	for _, c := range []struct{ kind, name, want string }{
		{"Role", "reader", "role-reader"},
		{"ClusterRole", "edit", "clusterrole-edit"},
	} {
		if got := RBACName(c.kind, c.name); got != c.want {
			t.Errorf("%s %s: %s", c.kind, c.name, got)
		}
	}
	// Names an object name cannot hold are cleaned and hashed, so that
	// two roles never share a report.
	a, b := RBACName("ClusterRole", "system:controller:x"), RBACName("ClusterRole", "system-controller-x")
	if a == b || !strings.HasPrefix(a, "clusterrole-system-controller-x-") {
		t.Errorf("%s %s", a, b)
	}
	if a, b := RBACName("Role", "Admin"), RBACName("Role", "admin"); a == b {
		t.Errorf("case folds to one name: %s", a)
	}
	long := RBACName("ClusterRole", strings.Repeat("x", 300))
	if len(long) > 253 {
		t.Errorf("%d chars", len(long))
	}
}
