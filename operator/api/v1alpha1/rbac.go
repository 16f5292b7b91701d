package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels set on RBAC assessment reports. A role name may hold characters a
// label value cannot (system:controller:...): the full name is in
// report.role.
const (
	LabelRoleKind = "bulkhead.dev/role-kind"
)

// RoleRef names the Role or ClusterRole a report is about.
type RoleRef struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	UID       string `json:"uid,omitempty"`
}

// RBACCheck is one risky permission of the role, with the subjects that
// hold it (the description says who, through which binding, and which
// workloads run as them), the checks of bulkhead config (BH-K8S-201..209).
type RBACCheck struct {
	ID          string `json:"id"`
	Severity    string `json:"severity"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// RBACSubject is a subject bound to the role, and the workloads that run
// as it (a ServiceAccount's).
type RBACSubject struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Binding is the binding that grants the role.
	Binding string `json:"binding"`
	// Severity is the highest risk the subject holds through the role.
	Severity string `json:"severity"`
	// Broad marks system:authenticated, system:unauthenticated and the
	// like.
	Broad bool `json:"broad,omitempty"`
	// Workloads run as this service account ("Deployment ns/name").
	Workloads []string `json:"workloads,omitempty"`
}

// RBACReportData is what an RBAC assessment report says of one role.
type RBACReportData struct {
	Role    RoleRef `json:"role"`
	Summary Counts  `json:"summary"`
	// Checks are the failed checks, most severe first.
	Checks []RBACCheck `json:"checks,omitempty"`
	// Subjects hold the role through a binding, most exposed first.
	Subjects []RBACSubject `json:"subjects,omitempty"`
	// Truncated is true when Checks or Subjects were cut to keep the
	// object under its size budget (Summary counts every check).
	Truncated bool        `json:"truncated"`
	UpdatedAt metav1.Time `json:"updatedAt"`
}

// RbacAssessmentReport is the RBAC assessment of a Role, in its namespace,
// owned by the Role.
type RbacAssessmentReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Report            RBACReportData `json:"report"`
}

// RbacAssessmentReportList is a list of RbacAssessmentReports.
type RbacAssessmentReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RbacAssessmentReport `json:"items"`
}

// ClusterRbacAssessmentReport is the RBAC assessment of a ClusterRole,
// cluster-scoped, owned by the ClusterRole.
type ClusterRbacAssessmentReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Report            RBACReportData `json:"report"`
}

// ClusterRbacAssessmentReportList is a list of ClusterRbacAssessmentReports.
type ClusterRbacAssessmentReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterRbacAssessmentReport `json:"items"`
}

func (in *RBACReportData) deepCopyInto(out *RBACReportData) {
	*out = *in
	in.UpdatedAt.DeepCopyInto(&out.UpdatedAt)
	out.Checks = append([]RBACCheck(nil), in.Checks...)
	if in.Subjects != nil {
		out.Subjects = make([]RBACSubject, len(in.Subjects))
		for i, s := range in.Subjects {
			out.Subjects[i] = s
			out.Subjects[i].Workloads = append([]string(nil), s.Workloads...)
		}
	}
}

// DeepCopyInto copies in into out.
func (in *RbacAssessmentReport) DeepCopyInto(out *RbacAssessmentReport) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Report.deepCopyInto(&out.Report)
}

// DeepCopy copies the report.
func (in *RbacAssessmentReport) DeepCopy() *RbacAssessmentReport {
	if in == nil {
		return nil
	}
	out := new(RbacAssessmentReport)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *RbacAssessmentReport) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *RbacAssessmentReportList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &RbacAssessmentReportList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]RbacAssessmentReport, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *ClusterRbacAssessmentReport) DeepCopyInto(out *ClusterRbacAssessmentReport) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Report.deepCopyInto(&out.Report)
}

// DeepCopy copies the report.
func (in *ClusterRbacAssessmentReport) DeepCopy() *ClusterRbacAssessmentReport {
	if in == nil {
		return nil
	}
	out := new(ClusterRbacAssessmentReport)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *ClusterRbacAssessmentReport) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *ClusterRbacAssessmentReportList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &ClusterRbacAssessmentReportList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]ClusterRbacAssessmentReport, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}
