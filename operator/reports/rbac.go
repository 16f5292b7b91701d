package reports

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
)

// RBACName is the report name of a Role or ClusterRole: "role-<name>" or
// "clusterrole-<name>" in lower case. A role name may hold what an object
// name cannot (system:controller:..., upper case): those characters become
// '-' and a hash of the real name is appended, so two roles never share a
// report.
func RBACName(kind, name string) string {
	n := strings.ToLower(kind) + "-"
	clean := true
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			n += string(r)
		default:
			clean = false
			n += "-"
		}
	}
	if !clean || len(n) > 253 {
		h := fnv.New32a()
		h.Write([]byte(name))
		suffix := fmt.Sprintf("-%08x", h.Sum32())
		n = strings.TrimRight(n[:min(len(n), 253-len(suffix))], "-.") + suffix
	}
	return n
}

// RBAC is what an RBAC assessment report is built from: one role, the
// findings written on it (and on the bindings that bind it) and the
// subjects that hold it.
type RBAC struct {
	Kind, Namespace, Name, UID string
	Findings                   []finding.Finding
	Subjects                   []v1alpha1.RBACSubject
	UpdatedAt                  time.Time
}

// rbacData builds the report of a role within budget bytes; wrap gives the
// object the budget is measured on.
func rbacData(in RBAC, meta *metav1.ObjectMeta, d *v1alpha1.RBACReportData, budget int, wrap func() any) error {
	if budget <= 0 {
		budget = DefaultBudget
	}
	meta.Name = RBACName(in.Kind, in.Name)
	meta.Namespace = in.Namespace
	meta.Labels = map[string]string{v1alpha1.LabelRoleKind: in.Kind}
	if in.UID != "" {
		t := true
		meta.OwnerReferences = []metav1.OwnerReference{{APIVersion: "rbac.authorization.k8s.io/v1", Kind: in.Kind, Name: in.Name, UID: typesUID(in.UID), Controller: &t}}
	}
	d.Role = v1alpha1.RoleRef{Kind: in.Kind, Name: in.Name, Namespace: in.Namespace, UID: in.UID}
	d.UpdatedAt = metav1.NewTime(in.UpdatedAt.UTC().Truncate(time.Second))
	var checks []v1alpha1.RBACCheck
	for _, f := range in.Findings {
		if f.Suppressed != nil {
			continue
		}
		Count(&d.Summary, f.Severity)
		checks = append(checks, v1alpha1.RBACCheck{ID: truncate(f.ID, 64), Severity: severityName(f.Severity), Title: truncate(f.Title, 512), Description: truncate(f.Description, 2048)})
	}
	slices.SortStableFunc(checks, func(x, y v1alpha1.RBACCheck) int { return sevRank(y.Severity) - sevRank(x.Severity) })
	subjects := make([]v1alpha1.RBACSubject, 0, len(in.Subjects))
	for _, s := range in.Subjects {
		s.Name, s.Namespace, s.Binding = truncate(s.Name, 512), truncate(s.Namespace, 63), truncate(s.Binding, 600)
		if len(s.Workloads) > 21 {
			s.Workloads = append(s.Workloads[:20:20], fmt.Sprintf("and %d more", len(s.Workloads)-20))
		}
		for i := range s.Workloads {
			s.Workloads[i] = truncate(s.Workloads[i], 600)
		}
		subjects = append(subjects, s)
	}
	slices.SortStableFunc(subjects, func(x, y v1alpha1.RBACSubject) int { return sevRank(y.Severity) - sevRank(x.Severity) })
	// The checks get at most three quarters of the budget, the subjects
	// the rest; the summary counts every check.
	nc, err := fit(min(len(checks), 500), budget*3/4+serverReserve/4, func(n int) any {
		d.Checks, d.Subjects = checks[:n], nil
		return wrap()
	})
	if err != nil {
		return fmt.Errorf("RBAC report of %s %s: %w", in.Kind, qualify(in.Namespace, in.Name), err)
	}
	d.Checks = checks[:nc:nc]
	ns, err := fit(min(len(subjects), 500), budget, func(n int) any {
		d.Subjects = subjects[:n]
		d.Truncated = nc < len(checks) || n < len(subjects)
		return wrap()
	})
	if err != nil {
		return fmt.Errorf("RBAC report of %s %s: %w", in.Kind, qualify(in.Namespace, in.Name), err)
	}
	d.Subjects, d.Truncated = subjects[:ns:ns], nc < len(checks) || ns < len(subjects)
	if len(d.Checks) == 0 {
		d.Checks = nil
	}
	if len(d.Subjects) == 0 {
		d.Subjects = nil
	}
	return nil
}

func qualify(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// NewRbacAssessmentReport builds the report of a Role, within budget bytes
// (0: DefaultBudget), owned by the Role.
func NewRbacAssessmentReport(in RBAC, budget int) (*v1alpha1.RbacAssessmentReport, error) {
	r := &v1alpha1.RbacAssessmentReport{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "RbacAssessmentReport"}}
	if err := rbacData(in, &r.ObjectMeta, &r.Report, budget, func() any { return r }); err != nil {
		return nil, err
	}
	return r, nil
}

// NewClusterRbacAssessmentReport builds the report of a ClusterRole,
// within budget bytes (0: DefaultBudget), owned by the ClusterRole.
func NewClusterRbacAssessmentReport(in RBAC, budget int) (*v1alpha1.ClusterRbacAssessmentReport, error) {
	in.Namespace = ""
	r := &v1alpha1.ClusterRbacAssessmentReport{TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ClusterRbacAssessmentReport"}}
	if err := rbacData(in, &r.ObjectMeta, &r.Report, budget, func() any { return r }); err != nil {
		return nil, err
	}
	return r, nil
}
