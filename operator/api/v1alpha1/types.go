// Package v1alpha1 holds the bulkhead.dev/v1alpha1 report kinds the operator
// writes: ImageReport (cluster-scoped, one per image digest) and
// WorkloadReport (namespaced, one per workload), and the RBAC assessment of
// each Role (RbacAssessmentReport) and ClusterRole
// (ClusterRbacAssessmentReport). Their CRDs, with OpenAPI
// validation and printer columns, are hand-written in deploy/crds.
//
// Reports are small on purpose: each object has a size budget (see
// operator/report) far below etcd's request limit; the full findings live in
// bulkhead server, and a report says when it was truncated.
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group and Version of the report kinds.
const (
	Group   = "bulkhead.dev"
	Version = "v1alpha1"
)

// GroupVersion is bulkhead.dev/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: Group, Version: Version}

// AddToScheme registers the kinds.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &ImageReport{}, &ImageReportList{}, &WorkloadReport{}, &WorkloadReportList{},
		&RbacAssessmentReport{}, &RbacAssessmentReportList{}, &ClusterRbacAssessmentReport{}, &ClusterRbacAssessmentReportList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Condition types.
const (
	// ConditionScanned is True when the image was scanned (or its result
	// taken from bulkhead server), False with the error when it failed.
	ConditionScanned = "Scanned"
	// ConditionComplete on a WorkloadReport is True when every container's
	// image has its ImageReport.
	ConditionComplete = "Complete"
)

// Labels set on reports.
const (
	LabelWorkloadKind = "bulkhead.dev/workload-kind"
	LabelWorkloadName = "bulkhead.dev/workload-name"
)

// Counts are findings per severity.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	Unknown  int `json:"unknown"`
}

// Total is the sum of the counts.
func (c Counts) Total() int { return c.Critical + c.High + c.Medium + c.Low + c.Unknown }

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Critical += o.Critical
	c.High += o.High
	c.Medium += o.Medium
	c.Low += o.Low
	c.Unknown += o.Unknown
}

// Vulnerability is one of an ImageReport's top findings.
type Vulnerability struct {
	ID           string `json:"id"`
	Severity     string `json:"severity"`
	Package      string `json:"package"`
	Version      string `json:"version,omitempty"`
	FixedVersion string `json:"fixedVersion,omitempty"`
	Title        string `json:"title,omitempty"`
}

// ImageReportData is what an ImageReport says of one digest.
type ImageReportData struct {
	// Digest is the image's digest ("sha256:...").
	Digest string `json:"digest"`
	// Repository is the repository it was pulled from.
	Repository string `json:"repository"`
	// ScannedAt is when the scan (or the server's stored scan) was made.
	ScannedAt metav1.Time `json:"scannedAt"`
	// DBVersion dates the vulnerability data used.
	DBVersion string `json:"dbVersion,omitempty"`
	// Server is bulkhead server's URL and ScanID the stored scan with
	// every finding, when a server is configured.
	Server string `json:"server,omitempty"`
	ScanID int64  `json:"scanID,omitempty"`
	// Packages is the number of packages found.
	Packages int `json:"packages"`
	// Summary counts the vulnerabilities that count (not suppressed);
	// Fixable those of them with a fixed version.
	Summary Counts `json:"summary"`
	Fixable Counts `json:"fixable"`
	// Vulnerabilities are the top findings, most severe first.
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitempty"`
	// Truncated is true when Vulnerabilities holds fewer than Summary
	// counts, to keep the object under its size budget.
	Truncated bool `json:"truncated"`
	// Error is why the last scan failed.
	Error string `json:"error,omitempty"`
}

// ReportStatus holds a report's conditions.
type ReportStatus struct {
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ImageReport is the vulnerability report of one image digest,
// cluster-scoped and named "sha256-<hex>".
type ImageReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Report            ImageReportData `json:"report"`
	Status            ReportStatus    `json:"status,omitempty"`
}

// ImageReportList is a list of ImageReports.
type ImageReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ImageReport `json:"items"`
}

// Container is one container of a workload and the image it runs.
type Container struct {
	Name  string `json:"name"`
	Init  bool   `json:"init,omitempty"`
	Image string `json:"image"`
	// Digest is the image's digest ("" when it could not be resolved;
	// Error says why).
	Digest string `json:"digest,omitempty"`
	// ImageReport names the ImageReport of Digest.
	ImageReport string `json:"imageReport,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Check is one failed configuration check.
type Check struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Title    string `json:"title"`
}

// ConfigAudit is the workload's configuration audit, with the checks of
// bulkhead config.
type ConfigAudit struct {
	// PodSecurity is the Pod Security Standards level the workload's pods
	// meet: restricted, baseline or privileged.
	PodSecurity string  `json:"podSecurity"`
	Summary     Counts  `json:"summary"`
	Checks      []Check `json:"checks,omitempty"`
	Truncated   bool    `json:"truncated"`
}

// WorkloadRef names the workload a report is about.
type WorkloadRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// WorkloadReportData is what a WorkloadReport says of one workload.
type WorkloadReportData struct {
	Workload   WorkloadRef `json:"workload"`
	Containers []Container `json:"containers"`
	// Vulnerabilities sums the ImageReports of the workload's distinct
	// digests.
	Vulnerabilities Counts      `json:"vulnerabilities"`
	ConfigAudit     ConfigAudit `json:"configAudit"`
	UpdatedAt       metav1.Time `json:"updatedAt"`
}

// WorkloadReport is the report of one workload, in its namespace, named
// "<kind>-<name>" in lower case, owned by the workload.
type WorkloadReport struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Report            WorkloadReportData `json:"report"`
	Status            ReportStatus       `json:"status,omitempty"`
}

// WorkloadReportList is a list of WorkloadReports.
type WorkloadReportList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WorkloadReport `json:"items"`
}
