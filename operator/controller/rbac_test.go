package controller_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
)

// rbacTestdata are bulkhead config's real RBAC manifests with known
// verdicts (config/kubernetes/testdata/rbac, TestHygieneRealManifests).
const rbacTestdata = "../../config/kubernetes/testdata/rbac"

// applyKinds are the kinds applied from the manifests: RBAC, service
// accounts and the workloads that run as them.
var applyKinds = map[string]bool{"Namespace": true, "ServiceAccount": true, "Role": true, "ClusterRole": true, "RoleBinding": true,
	"ClusterRoleBinding": true, "Deployment": true, "DaemonSet": true, "Job": true}

// apply creates (or replaces) the objects of applyKinds from a manifest file through
// the API server.
func apply(t *testing.T, c client.Client, file string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(rbacTestdata, file))
	if err != nil {
		t.Fatal(err)
	}
	d := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var u unstructured.Unstructured
		if err := d.Decode(&u.Object); errors.Is(err, io.EOF) {
			return
		} else if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if u.Object == nil || !applyKinds[u.GetKind()] {
			continue
		}
		if u.GetKind() == "DaemonSet" && u.GetAPIVersion() == "" {
			u.SetAPIVersion("apps/v1")
		}
		err := c.Create(context.Background(), &u)
		if apierrors.IsAlreadyExists(err) && u.GetKind() == "Job" {
			// A Job's pod template is immutable and the API server has
			// added its selector: the one an earlier test of this binary
			// applied from the same file stays.
			continue
		}
		if apierrors.IsAlreadyExists(err) {
			// a later document of the same name replaces it, as kubectl
			// apply does
			var cur unstructured.Unstructured
			cur.SetGroupVersionKind(u.GroupVersionKind())
			if err = c.Get(context.Background(), client.ObjectKeyFromObject(&u), &cur); err == nil {
				u.SetResourceVersion(cur.GetResourceVersion())
				err = c.Update(context.Background(), &u)
			}
		}
		if err != nil {
			t.Fatalf("%s: apply %s %s: %v", file, u.GetKind(), u.GetName(), err)
		}
	}
}

// configVerdicts runs bulkhead config's assessment over files as one set
// and gives each role's verdicts ("ID severity", sorted), the role found
// by the line of the finding ("ClusterRole x", "Role ns/x").
func configVerdicts(t *testing.T, files []string) map[string][]string {
	t.Helper()
	var objs []*kubernetes.Object
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(rbacTestdata, f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := kubernetes.ParseBytes(f, data)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got...)
	}
	sc, err := kubernetes.New(kubernetes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := sc.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, f := range fs {
		if kubernetes.RBACCheckByID(f.ID) == nil {
			continue
		}
		var at *kubernetes.Object
		for _, o := range objs {
			if o.File == f.Location.Path && o.Line <= f.Location.StartLine && (at == nil || o.Line > at.Line) {
				at = o
			}
		}
		if at == nil || (at.Kind != "Role" && at.Kind != "ClusterRole") {
			t.Fatalf("config finding %s at %s:%d is on no role", f.ID, f.Location.Path, f.Location.StartLine)
		}
		ref := "ClusterRole " + at.Meta.Name
		if at.Kind == "Role" {
			ref = "Role " + at.Meta.Namespace + "/" + at.Meta.Name
		}
		out[ref] = append(out[ref], f.ID+" "+strings.ToLower(f.Severity.String()))
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func reportVerdicts(d *v1alpha1.RBACReportData) []string {
	var out []string
	for _, c := range d.Checks {
		out = append(out, c.ID+" "+c.Severity)
	}
	sort.Strings(out)
	return out
}

// rbacReport reads the report of a role ("ClusterRole x", "Role ns/x").
func rbacReport(ctx context.Context, c client.Reader, ref string) (*v1alpha1.RBACReportData, metav1.Object, error) {
	kind, name, _ := strings.Cut(ref, " ")
	if kind == "Role" {
		ns, n, _ := strings.Cut(name, "/")
		var r v1alpha1.RbacAssessmentReport
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: reports.RBACName("Role", n)}, &r)
		return &r.Report, &r, err
	}
	var r v1alpha1.ClusterRbacAssessmentReport
	err := c.Get(ctx, client.ObjectKey{Name: reports.RBACName("ClusterRole", name)}, &r)
	return &r.Report, &r, err
}

func startRBAC(t *testing.T, e *kubetest.Env, reg prometheus.Registerer, interval time.Duration) {
	t.Helper()
	mgr, err := controller.NewManager(e.Config, controller.ManagerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.SetupRBAC(mgr, controller.RBACOptions{MinInterval: interval, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
}

// TestRBACReports: the real Role and ClusterRole manifests of bulkhead
// config's RBAC table, applied to a real API server, get one report per
// role with the verdicts bulkhead config gives the same manifests, the
// known verdicts of the table, the subjects and the workloads that run as
// them, and owner references to the role. A new binding to a broad group
// raises a role's report; a deleted role's report goes.
func TestRBACReports(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	c := directClient(t, e)
	files := []string{"ingress-nginx_cloud_deploy.yaml",
		"argo-cd_argocd-application-controller-clusterrole.yaml", "argo-cd_argocd-application-controller-clusterrolebinding.yaml",
		"argo-cd_argocd-server-clusterrole.yaml", "argo-cd_argocd-server-clusterrolebinding.yaml",
		"secrets-store-csi-driver_rbac-secretprovidersyncing.yaml", "secrets-store-csi-driver_daemonset.yaml",
		"kube-linter_wildcard-in-rules.yml"}
	for _, ns := range []string{"argocd", "namespace-dev"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		apply(t, c, f)
	}
	apply(t, c, "kube-linter_cluster-admin-role-binding.yml")
	reg := prometheus.NewRegistry()
	startRBAC(t, e, reg, 300*time.Millisecond)

	want := configVerdicts(t, files)
	// The known verdicts of bulkhead config's table, by role.
	known := map[string][]string{
		"ClusterRole argocd-application-controller":  {"BH-K8S-201 critical"},
		"ClusterRole argocd-server":                  {"BH-K8S-201 high", "BH-K8S-201 high", "BH-K8S-205 high", "BH-K8S-206 high"},
		"ClusterRole ingress-nginx":                  {"BH-K8S-205 high"},
		"Role ingress-nginx/ingress-nginx":           {"BH-K8S-205 medium"},
		"Role ingress-nginx/ingress-nginx-admission": {"BH-K8S-205 medium"},
		"ClusterRole secretprovidersyncing-role":     {"BH-K8S-205 high"},
	}
	for ref, v := range known {
		if !slices.Equal(want[ref], v) {
			t.Fatalf("bulkhead config's verdicts on %s: %v, the table says %v", ref, want[ref], v)
		}
	}
	for ref, v := range want {
		waitFor(t, 30*time.Second, "report of "+ref, func() (bool, string) {
			d, _, err := rbacReport(ctx, c, ref)
			if err != nil {
				return false, err.Error()
			}
			got := reportVerdicts(d)
			return slices.Equal(got, v), fmt.Sprintf("got %v, want %v", got, v)
		})
	}

	// Subjects, their workloads, owner references. The workloads come
	// from the operator's cache: a report written before the Deployment
	// was seen (its verdicts already right) is rewritten once it is.
	waitFor(t, 30*time.Second, "workloads of ClusterRole ingress-nginx's subject", func() (bool, string) {
		d, _, err := rbacReport(ctx, c, "ClusterRole ingress-nginx")
		if err != nil {
			return false, err.Error()
		}
		ok := len(d.Subjects) == 1 && len(d.Subjects[0].Workloads) > 0
		return ok, fmt.Sprintf("subjects %+v", d.Subjects)
	})
	d, obj, _ := rbacReport(ctx, c, "ClusterRole ingress-nginx")
	var role rbacv1.ClusterRole
	if err := c.Get(ctx, client.ObjectKey{Name: "ingress-nginx"}, &role); err != nil {
		t.Fatal(err)
	}
	if refs := obj.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != role.UID || refs[0].Kind != "ClusterRole" {
		t.Errorf("owner references %+v", refs)
	}
	if d.Summary.High != 1 || len(d.Subjects) != 1 || d.Subjects[0].Name != "ingress-nginx" || d.Subjects[0].Severity != "high" ||
		!slices.Equal(d.Subjects[0].Workloads, []string{"Deployment ingress-nginx/ingress-nginx-controller"}) {
		t.Errorf("ClusterRole ingress-nginx: %+v", d)
	}
	if !strings.Contains(d.Checks[0].Description, "ServiceAccount ingress-nginx/ingress-nginx cluster-wide via ClusterRoleBinding ingress-nginx") {
		t.Errorf("description names no holder: %s", d.Checks[0].Description)
	}
	d, obj, _ = rbacReport(ctx, c, "Role ingress-nginx/ingress-nginx-admission")
	if obj.GetNamespace() != "ingress-nginx" || len(d.Subjects) != 1 || len(d.Subjects[0].Workloads) != 2 {
		t.Errorf("Role ingress-nginx-admission: %+v", d)
	}
	// The binding to the built-in cluster-admin is on cluster-admin's
	// report, naming its subject.
	waitFor(t, 30*time.Second, "cluster-admin's report", func() (bool, string) {
		d, _, err := rbacReport(ctx, c, "ClusterRole cluster-admin")
		if err != nil {
			return false, err.Error()
		}
		for _, ch := range d.Checks {
			if ch.ID == kubernetes.RBACClusterAdmin && ch.Severity == "critical" && strings.Contains(ch.Description, "namespace-dev") {
				return true, ""
			}
		}
		return false, fmt.Sprint(reportVerdicts(d))
	})

	// Everyone gets argocd-server: its risks become Critical, with a
	// BH-K8S-208 on the new binding.
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "everyone-argocd-server"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "argocd-server"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:authenticated"}}}
	if err := c.Create(ctx, crb); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "argocd-server raised", func() (bool, string) {
		d, _, err := rbacReport(ctx, c, "ClusterRole argocd-server")
		if err != nil {
			return false, err.Error()
		}
		got := reportVerdicts(d)
		return slices.Contains(got, "BH-K8S-208 critical") && d.Summary.Critical == len(d.Checks), fmt.Sprint(got)
	})
	if err := c.Delete(ctx, crb); err != nil {
		t.Fatal(err)
	}

	// A deleted role's report goes (no garbage collector runs here).
	if err := c.Delete(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "ingress-nginx", Name: "ingress-nginx-admission"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "report of the deleted role gone", func() (bool, string) {
		_, _, err := rbacReport(ctx, c, "Role ingress-nginx/ingress-nginx-admission")
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})

	// The metrics count the findings.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var findings float64
	for _, mf := range mfs {
		if mf.GetName() == "bulkhead_operator_rbac_findings" {
			for _, m := range mf.GetMetric() {
				findings += m.GetGauge().GetValue()
			}
		}
	}
	if findings < 8 {
		t.Errorf("bulkhead_operator_rbac_findings sums to %v", findings)
	}
}
