package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/internal/cli"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
)

// k8sRBAC runs bulkhead k8s --scanners rbac with args and gives its
// findings' verdicts by role ("ID severity", sorted) and descriptions.
func k8sRBAC(t *testing.T, kc string, args ...string) (verdicts map[string][]string, desc map[string]string, code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = cli.Main(append([]string{"k8s", "--kubeconfig", kc, "--scanners", "rbac", "--format", "json"}, args...), &out, &errb)
	var doc struct {
		Scanners []string `json:"scanners"`
		Findings []struct {
			ID, Kind, Target, Severity, Description string
		} `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("bulkhead k8s %v: exit %d: %v: %.300s %s", args, code, err, out.String(), errb.String())
	}
	if !slices.Equal(doc.Scanners, []string{"rbac"}) {
		t.Errorf("scanners %v", doc.Scanners)
	}
	verdicts, desc = map[string][]string{}, map[string]string{}
	for _, f := range doc.Findings {
		if f.Kind != "misconfiguration" || !strings.HasPrefix(f.ID, "BH-K8S-2") {
			t.Errorf("not an RBAC finding: %+v", f)
		}
		verdicts[f.Target] = append(verdicts[f.Target], f.ID+" "+strings.ToLower(f.Severity))
		desc[f.Target] += f.Description + "\n"
	}
	for _, v := range verdicts {
		sort.Strings(v)
	}
	return verdicts, desc, code, out.String(), errb.String()
}

// operatorVerdicts reads every RBAC report the operator wrote, by role
// ("ClusterRole x", "Role ns/x"), leaving out roles with no finding.
func operatorVerdicts(ctx context.Context, c client.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	var nl v1alpha1.RbacAssessmentReportList
	if err := c.List(ctx, &nl); err != nil {
		return nil, err
	}
	for i := range nl.Items {
		d := &nl.Items[i].Report
		if d.Truncated {
			return nil, fmt.Errorf("report of %s truncated", d.Role.Name)
		}
		if v := reportVerdicts(d); len(v) > 0 {
			out["Role "+nl.Items[i].Namespace+"/"+d.Role.Name] = v
		}
	}
	var cl v1alpha1.ClusterRbacAssessmentReportList
	if err := c.List(ctx, &cl); err != nil {
		return nil, err
	}
	for i := range cl.Items {
		d := &cl.Items[i].Report
		if d.Truncated {
			return nil, fmt.Errorf("report of %s truncated", d.Role.Name)
		}
		if v := reportVerdicts(d); len(v) > 0 {
			out["ClusterRole "+d.Role.Name] = v
		}
	}
	return out, nil
}

// TestK8sCommandRBAC: bulkhead k8s, on the real Role and ClusterRole
// manifests of bulkhead config's RBAC table applied to a real API server,
// gives per role exactly the findings of the operator's RBAC reports for
// the same cluster (the API server's built-in ClusterRoles included) and
// the table's known verdicts, names the subjects and their workloads in
// every format, and fails the run with --exit-code like other findings.
func TestK8sCommandRBAC(t *testing.T) {
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
	kc := kubeconfig(t, e)

	got, desc, code, _, stderr := k8sRBAC(t, kc, "cluster")
	if code != 0 {
		t.Fatalf("bulkhead k8s --scanners rbac cluster: exit %d: %s", code, stderr)
	}
	// The known verdicts of bulkhead config's table, and bulkhead config's
	// own verdicts on the same files.
	known := map[string][]string{
		"ClusterRole argocd-application-controller":  {"BH-K8S-201 critical"},
		"ClusterRole argocd-server":                  {"BH-K8S-201 high", "BH-K8S-201 high", "BH-K8S-205 high", "BH-K8S-206 high"},
		"ClusterRole ingress-nginx":                  {"BH-K8S-205 high"},
		"Role ingress-nginx/ingress-nginx":           {"BH-K8S-205 medium"},
		"Role ingress-nginx/ingress-nginx-admission": {"BH-K8S-205 medium"},
		"ClusterRole secretprovidersyncing-role":     {"BH-K8S-205 high"},
	}
	for ref, v := range known {
		if !slices.Equal(got[ref], v) {
			t.Errorf("bulkhead k8s on %s: %v, the table says %v", ref, got[ref], v)
		}
	}
	for ref, v := range configVerdicts(t, files) {
		if !slices.Equal(got[ref], v) {
			t.Errorf("bulkhead k8s on %s: %v, bulkhead config %v", ref, got[ref], v)
		}
	}
	if !slices.Contains(got["ClusterRole cluster-admin"], "BH-K8S-209 critical") && !slices.ContainsFunc(got["ClusterRole cluster-admin"], func(s string) bool { return strings.HasSuffix(s, " critical") }) {
		t.Errorf("the binding to cluster-admin: %v", got["ClusterRole cluster-admin"])
	}
	// Subjects and their workloads.
	if d := desc["ClusterRole ingress-nginx"]; !strings.Contains(d, "Held by ServiceAccount ingress-nginx/ingress-nginx via ClusterRoleBinding ingress-nginx (run by Deployment ingress-nginx/ingress-nginx-controller)") {
		t.Errorf("ClusterRole ingress-nginx's holders: %s", d)
	}

	// The operator's reports on the same cluster: the same findings, role
	// for role, once its assessment has settled.
	startRBAC(t, e, nil, 300*time.Millisecond)
	waitFor(t, 60*time.Second, "the operator's reports equal bulkhead k8s", func() (bool, string) {
		want, err := operatorVerdicts(ctx, c)
		if err != nil {
			return false, err.Error()
		}
		var diff []string
		for ref, v := range want {
			if !slices.Equal(got[ref], v) {
				diff = append(diff, fmt.Sprintf("%s: k8s %v, operator %v", ref, got[ref], v))
			}
		}
		for ref := range got {
			if want[ref] == nil {
				diff = append(diff, ref+": no operator report finding")
			}
		}
		return len(diff) == 0 && len(want) >= len(known), strings.Join(diff, "; ")
	})

	// A namespace: its Roles and every ClusterRole, as the operator with
	// --namespaces reads them.
	nsGot, _, _, _, _ := k8sRBAC(t, kc, "namespace", "ingress-nginx")
	for ref, v := range got {
		inNS := strings.HasPrefix(ref, "ClusterRole ") || strings.HasPrefix(ref, "Role ingress-nginx/")
		if inNS != slices.Equal(nsGot[ref], v) {
			t.Errorf("namespace ingress-nginx, %s: %v (cluster: %v)", ref, nsGot[ref], v)
		}
	}

	// The gate: RBAC findings fail the run as other findings do, and
	// --severity filters them.
	if _, _, code, _, _ := k8sRBAC(t, kc, "--exit-code", "4", "cluster"); code != 4 {
		t.Errorf("--exit-code 4 with RBAC findings: exit %d", code)
	}
	med, _, _, _, _ := k8sRBAC(t, kc, "--severity", "MEDIUM", "cluster")
	for ref, v := range med {
		for _, x := range v {
			if !strings.HasSuffix(x, " medium") {
				t.Errorf("--severity MEDIUM, %s: %v", ref, v)
			}
		}
	}
	if med["Role ingress-nginx/ingress-nginx"] == nil || med["ClusterRole argocd-server"] != nil {
		t.Errorf("--severity MEDIUM: %v", med)
	}

	// Table and SARIF carry them too, with the holders; the table has the
	// summary by role.
	var out, errb bytes.Buffer
	code = cli.Main([]string{"k8s", "--kubeconfig", kc, "--scanners", "rbac", "cluster"}, &out, &errb)
	if s := out.String(); code != 0 || !strings.HasPrefix(s, "ROLE") || !strings.Contains(s, "ClusterRole argocd-server") ||
		!strings.Contains(s, "roles hold a risky permission") || !strings.Contains(s, "BH-K8S-206") ||
		!strings.Contains(s, "ClusterRole ingress-nginx: Held by ServiceAccount ingress-nginx/ingress-nginx via ClusterRoleBinding ingress-nginx (run by Deployment ingress-nginx/ingress-nginx-controller)") {
		t.Errorf("table: exit %d: %.2000s %s", code, s, errb.String())
	}
	out.Reset()
	code = cli.Main([]string{"k8s", "--kubeconfig", kc, "--scanners", "rbac", "--format", "sarif", "cluster"}, &out, &errb)
	if s := out.String(); code != 0 || !strings.Contains(s, "BH-K8S-205") || !strings.Contains(s, "Deployment ingress-nginx/ingress-nginx-controller") {
		t.Errorf("sarif: exit %d: %.600s", code, s)
	}
	// KIND/NAME targets take no RBAC assessment.
	code = cli.Main([]string{"k8s", "--kubeconfig", kc, "--scanners", "rbac", "--namespaces", "argocd", "deployment/x"}, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "not KIND/NAME targets") {
		t.Errorf("rbac with KIND/NAME: exit %d: %s", code, errb.String())
	}
}
