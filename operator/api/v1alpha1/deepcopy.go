package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The deep copies runtime.Object needs, written by hand (no code generator
// runs offline); every slice and pointer field is copied.

func (in *ReportStatus) deepCopyInto(out *ReportStatus) {
	*out = *in
	if in.Conditions != nil {
		out.Conditions = make([]metav1.Condition, len(in.Conditions))
		for i := range in.Conditions {
			in.Conditions[i].DeepCopyInto(&out.Conditions[i])
		}
	}
}

// DeepCopyInto copies in into out.
func (in *ImageReport) DeepCopyInto(out *ImageReport) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Report.ScannedAt.DeepCopyInto(&out.Report.ScannedAt)
	out.Report.Vulnerabilities = append([]Vulnerability(nil), in.Report.Vulnerabilities...)
	in.Status.deepCopyInto(&out.Status)
}

// DeepCopy copies the report.
func (in *ImageReport) DeepCopy() *ImageReport {
	if in == nil {
		return nil
	}
	out := new(ImageReport)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *ImageReport) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *ImageReportList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &ImageReportList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]ImageReport, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}

// DeepCopyInto copies in into out.
func (in *WorkloadReport) DeepCopyInto(out *WorkloadReport) {
	*out = *in
	in.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	in.Report.UpdatedAt.DeepCopyInto(&out.Report.UpdatedAt)
	out.Report.Containers = append([]Container(nil), in.Report.Containers...)
	out.Report.ConfigAudit.Checks = append([]Check(nil), in.Report.ConfigAudit.Checks...)
	in.Status.deepCopyInto(&out.Status)
}

// DeepCopy copies the report.
func (in *WorkloadReport) DeepCopy() *WorkloadReport {
	if in == nil {
		return nil
	}
	out := new(WorkloadReport)
	in.DeepCopyInto(out)
	return out
}

// DeepCopyObject implements runtime.Object.
func (in *WorkloadReport) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject implements runtime.Object.
func (in *WorkloadReportList) DeepCopyObject() runtime.Object {
	if in == nil {
		return nil
	}
	out := &WorkloadReportList{TypeMeta: in.TypeMeta}
	in.ListMeta.DeepCopyInto(&out.ListMeta)
	if in.Items != nil {
		out.Items = make([]WorkloadReport, len(in.Items))
		for i := range in.Items {
			in.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
	return out
}
