package kubernetes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/config"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// loadSet parses files of testdata as one manifest set.
func loadSet(t *testing.T, files ...string) []*Object {
	t.Helper()
	var objs []*Object
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseBytes(filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, got...)
	}
	return objs
}

// verdicts are findings of the checks under test, as "ID SEVERITY file:line".
func verdicts(fs []finding.Finding, ids map[string]bool) []string {
	var out []string
	for _, f := range fs {
		if ids[f.ID] || (f.Kind == finding.KindSecret && ids["secret"]) {
			out = append(out, fmt.Sprintf("%s %s %s:%d", f.ID, f.Severity, f.Location.Path, f.Location.StartLine))
		}
	}
	sort.Strings(out)
	return out
}

// hygieneIDs are the checks of the RBAC assessment and Secrets hygiene.
var hygieneIDs = map[string]bool{
	RBACWildcard: true, RBACEscalate: true, RBACImpersonate: true, RBACExecAttach: true, RBACReadSecrets: true,
	RBACNodesProxy: true, RBACClusterAdmin: true, RBACBroadSubject: true, RBACDefaultSA: true,
	automountCheckID: true, SecretEnvCheckID: true, "BH-K8S-108": true, "secret": true,
}

// hygieneCases are real public manifests (testdata/SOURCES.md) with their
// known verdicts: every finding of the RBAC and Secrets hygiene checks,
// exactly. A set lists the files read as one manifest set.
var hygieneCases = []struct {
	name string
	set  []string
	want []string
}{
	// Role ingress-nginx reads secrets in its namespace (Medium), the
	// ClusterRole lists and watches them cluster-wide (High); the
	// admission Jobs' Role gets secrets. The service accounts are bound,
	// so the pods keep their tokens without BH-K8S-104.
	{"ingress-nginx", []string{"rbac/ingress-nginx_cloud_deploy.yaml"}, []string{
		"BH-K8S-205 HIGH ingress-nginx_cloud_deploy.yaml:164",
		"BH-K8S-205 MEDIUM ingress-nginx_cloud_deploy.yaml:141",
		"BH-K8S-205 MEDIUM ingress-nginx_cloud_deploy.yaml:60",
	}},
	// argocd-application-controller: every verb on every resource (one
	// Critical finding, not one per risky permission); argocd-server:
	// delete/get/patch on every resource of every group reads secrets and
	// reaches nodes/proxy.
	{"argo-cd", []string{"rbac/argo-cd_argocd-application-controller-clusterrole.yaml", "rbac/argo-cd_argocd-application-controller-clusterrolebinding.yaml",
		"rbac/argo-cd_argocd-server-clusterrole.yaml", "rbac/argo-cd_argocd-server-clusterrolebinding.yaml"}, []string{
		"BH-K8S-201 CRITICAL argo-cd_argocd-application-controller-clusterrole.yaml:10",
		"BH-K8S-201 HIGH argo-cd_argocd-server-clusterrole.yaml:10",
		"BH-K8S-201 HIGH argo-cd_argocd-server-clusterrole.yaml:18",
		"BH-K8S-205 HIGH argo-cd_argocd-server-clusterrole.yaml:14",
		"BH-K8S-206 HIGH argo-cd_argocd-server-clusterrole.yaml:12",
	}},
	// the ClusterRole is unbound in its own file: base severity
	{"argo-cd role alone", []string{"rbac/argo-cd_argocd-server-clusterrole.yaml"}, []string{
		"BH-K8S-201 HIGH argo-cd_argocd-server-clusterrole.yaml:10",
		"BH-K8S-201 HIGH argo-cd_argocd-server-clusterrole.yaml:18",
		"BH-K8S-205 MEDIUM argo-cd_argocd-server-clusterrole.yaml:14",
		"BH-K8S-206 HIGH argo-cd_argocd-server-clusterrole.yaml:12",
	}},
	// the CSI driver syncs secrets cluster-wide; with its binding in the
	// set the DaemonSet needs the API and keeps its token
	{"secrets-store-csi-driver with RBAC", []string{"rbac/secrets-store-csi-driver_rbac-secretprovidersyncing.yaml", "rbac/secrets-store-csi-driver_daemonset.yaml"}, []string{
		"BH-K8S-205 HIGH secrets-store-csi-driver_rbac-secretprovidersyncing.yaml:10",
	}},
	// alone, nothing binds its service account: the token is flagged
	{"secrets-store-csi-driver daemonset alone", []string{"rbac/secrets-store-csi-driver_daemonset.yaml"}, []string{
		"BH-K8S-104 LOW secrets-store-csi-driver_daemonset.yaml:16",
	}},
	// the API server's own default bindings grant nothing new
	{"bootstrap bindings", []string{"rbac/bootstrap-cluster-role-bindings.yaml"}, nil},
	// built-in admin (aggregated from edit and view) bound cluster-wide:
	// impersonate service accounts, exec, read secrets; and cluster-admin
	{"kube-linter cluster-admin", []string{"rbac/kube-linter_cluster-admin-role-binding.yml"}, []string{
		"BH-K8S-203 HIGH kube-linter_cluster-admin-role-binding.yml:14",
		"BH-K8S-204 HIGH kube-linter_cluster-admin-role-binding.yml:14",
		"BH-K8S-205 HIGH kube-linter_cluster-admin-role-binding.yml:14",
		"BH-K8S-207 CRITICAL kube-linter_cluster-admin-role-binding.yml:28",
	}},
	{"kube-linter wildcard", []string{"rbac/kube-linter_wildcard-in-rules.yml"}, []string{
		"BH-K8S-201 HIGH kube-linter_wildcard-in-rules.yml:20",
		"BH-K8S-205 MEDIUM kube-linter_wildcard-in-rules.yml:20",
	}},
	// the bootstrap ClusterRoles, unbound: cluster-admin, the
	// controller-manager's list/watch on everything, kubelet-api-admin's
	// nodes/proxy, edit's impersonate/exec/secrets, system:node's secrets;
	// view (system:aggregate-to-view) reads no secrets
	{"bootstrap cluster roles", []string{"../builtin/cluster-roles.yaml"}, []string{
		"BH-K8S-201 CRITICAL cluster-roles.yaml:25",
		"BH-K8S-201 HIGH cluster-roles.yaml:1016",
		"BH-K8S-201 HIGH cluster-roles.yaml:1024",
		"BH-K8S-201 HIGH cluster-roles.yaml:718",
		"BH-K8S-203 HIGH cluster-roles.yaml:106",
		"BH-K8S-204 HIGH cluster-roles.yaml:110",
		"BH-K8S-205 MEDIUM cluster-roles.yaml:1149",
		"BH-K8S-205 MEDIUM cluster-roles.yaml:697",
		"BH-K8S-205 MEDIUM cluster-roles.yaml:722",
		"BH-K8S-205 MEDIUM cluster-roles.yaml:98",
		"BH-K8S-206 HIGH cluster-roles.yaml:1011",
	}},
	// Secrets hygiene. External stores are never flagged.
	{"external-secrets", []string{"secrets/external-secrets_basic-external-secret.yaml", "secrets/external-secrets_basic-secret-store.yaml"}, nil},
	{"sealed-secrets SealedSecret", []string{"secrets/sealed-secrets_sealedsecret.yaml"}, nil},
	{"secrets-store-csi-driver SecretProviderClass", []string{"secrets/secrets-store-csi-driver_aws_BasicTestMountSPC.yaml"}, nil},
	// a pod reading its secrets from a CSI volume: only its token
	{"secrets-store-csi-driver pod", []string{"secrets/secrets-store-csi-driver_aws_BasicTestMount.yaml"}, []string{
		"BH-K8S-104 LOW secrets-store-csi-driver_aws_BasicTestMount.yaml:5",
	}},
	// a secret volume, not env: only the token
	{"sealed-secrets deployment", []string{"secrets/sealed-secrets_deployment.yaml"}, []string{
		"BH-K8S-104 LOW sealed-secrets_deployment.yaml:14",
	}},
	// a synced Secret's key passed in env
	{"secrets-store-csi-driver env", []string{"secrets/secrets-store-csi-driver_deployment-synck8s-e2e-provider.yaml"}, []string{
		"BH-K8S-104 LOW secrets-store-csi-driver_deployment-synck8s-e2e-provider.yaml:16",
		"BH-K8S-111 LOW secrets-store-csi-driver_deployment-synck8s-e2e-provider.yaml:28",
	}},
	// committed Secrets: the scanner over the decoded values finds the
	// Azure storage key and the literal password; the Ceph key matches no
	// rule (BH-K8S-108 alone)
	{"azure secret", []string{"secrets/kubernetes-examples_azure-secret.yaml"}, []string{
		"BH-K8S-108 MEDIUM kubernetes-examples_azure-secret.yaml:7",
		"BH-K8S-108 MEDIUM kubernetes-examples_azure-secret.yaml:8",
		"azure-storage-key CRITICAL kubernetes-examples_azure-secret.yaml:8",
	}},
	{"scaleio secret", []string{"secrets/kubernetes-examples_scaleio-secret.yaml"}, []string{
		"BH-K8S-108 MEDIUM kubernetes-examples_scaleio-secret.yaml:7",
		"BH-K8S-108 MEDIUM kubernetes-examples_scaleio-secret.yaml:8",
		"credential-assignment MEDIUM kubernetes-examples_scaleio-secret.yaml:8",
	}},
	{"ceph secret", []string{"secrets/kubernetes-examples_ceph-secret.yaml"}, []string{
		"BH-K8S-108 MEDIUM kubernetes-examples_ceph-secret.yaml:7",
	}},
}

func TestHygieneRealManifests(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range hygieneCases {
		t.Run(c.name, func(t *testing.T) {
			objs := loadSet(t, c.set...)
			fs, err := s.Scan(objs)
			if err != nil {
				t.Fatal(err)
			}
			got := verdicts(fs, hygieneIDs)
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			// document by document, as bulkhead config reads a file, gives the same
			if len(c.set) == 1 {
				data, _ := os.ReadFile(filepath.Join("testdata", c.set[0]))
				st, err := streamAll(t, s, NewDecoder(filepath.Base(c.set[0]), data))
				if err != nil {
					t.Fatal(err)
				}
				if g := verdicts(st, hygieneIDs); !reflect.DeepEqual(g, got) {
					t.Errorf("stream: %v\nscan: %v", g, got)
				}
			}
		})
	}
}

func TestRBACSubjects(t *testing.T) {
	find := func(a RBACAssessment, subj string) *SubjectPermissions {
		for i := range a.Subjects {
			if a.Subjects[i].Subject.String() == subj {
				return &a.Subjects[i]
			}
		}
		t.Fatalf("no subject %s in %+v", subj, a.Subjects)
		return nil
	}
	assess := func(files ...string) RBACAssessment {
		var set RBACSet
		for _, o := range loadSet(t, files...) {
			if err := set.Add(o); err != nil {
				t.Fatal(err)
			}
		}
		return AssessRBAC(&set)
	}

	a := assess("rbac/ingress-nginx_cloud_deploy.yaml")
	sp := find(a, "ServiceAccount ingress-nginx/ingress-nginx")
	if sp.Severity != finding.High || len(sp.Workloads) != 1 || sp.Workloads[0].Kind != "Deployment" || sp.Workloads[0].Name != "ingress-nginx-controller" {
		t.Errorf("ingress-nginx: %+v", sp)
	}
	scopes := map[string]finding.Severity{}
	for _, r := range sp.Risks {
		if r.Check == RBACReadSecrets {
			scopes[r.Scope] = r.Severity
		}
	}
	if scopes["cluster"] != finding.High || scopes["ingress-nginx"] != finding.Medium {
		t.Errorf("ingress-nginx secrets scopes: %v", scopes)
	}
	adm := find(a, "ServiceAccount ingress-nginx/ingress-nginx-admission")
	if len(adm.Workloads) != 2 || adm.Severity != finding.Medium {
		t.Errorf("admission: %+v", adm)
	}
	if a.Subjects[0].Subject.Name != "ingress-nginx" {
		t.Errorf("subjects not sorted by severity: %+v", a.Subjects[0])
	}

	a = assess("rbac/argo-cd_argocd-application-controller-clusterrole.yaml", "rbac/argo-cd_argocd-application-controller-clusterrolebinding.yaml")
	if sp := find(a, "ServiceAccount argocd/argocd-application-controller"); sp.Severity != finding.Critical || sp.Roles[0] != "ClusterRole argocd-application-controller" {
		t.Errorf("argocd: %+v", sp)
	}

	// the defaults are summarised though not reported
	a = assess("rbac/bootstrap-cluster-role-bindings.yaml")
	if len(a.Findings) != 0 {
		t.Errorf("bootstrap: %v", a.Findings)
	}
	if sp := find(a, "Group system:masters"); sp.Severity != finding.Critical || sp.Risks[0].Check != RBACClusterAdmin {
		t.Errorf("system:masters: %+v", sp)
	}
	if sp := find(a, "Group system:unauthenticated"); !sp.Broad || len(sp.Risks) != 0 {
		t.Errorf("system:unauthenticated: %+v", sp)
	}
}

// TestRBACBindings covers the binding checks on the cases no public
// manifest of the corpus has: broad groups, default service accounts,
// unresolved roles, resourceNames.
func TestRBACBindings(t *testing.T) {
	data := []byte(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: secret-reader}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-reads-secrets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}
subjects:
- {kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: self-review-for-all}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:basic-user"}
subjects:
- {kind: Group, name: "system:unauthenticated", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: all-sa-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: Group, name: "system:serviceaccounts", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: default-edits, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {kind: ServiceAccount, name: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: anon-mystery}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: not-in-the-set}
subjects:
- {kind: User, name: "system:anonymous", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-secret, namespace: team}
rules:
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: ["tls"]
  verbs: ["get"]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team}
spec:
  template:
    spec:
      containers: [{name: c, image: "x:1"}]
`)
	objs, err := ParseBytes("b.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(Options{})
	fs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	got := verdicts(fs, hygieneIDs)
	want := []string{
		// secret-reader: held by everyone
		"BH-K8S-205 CRITICAL b.yaml:7",
		"BH-K8S-208 CRITICAL b.yaml:14",
		// view to every service account: no risky permission, but more than discovery
		"BH-K8S-208 HIGH b.yaml:28",
		// edit in namespace team to its default service account (the Deployment's)
		"BH-K8S-203 HIGH b.yaml:33",
		"BH-K8S-204 HIGH b.yaml:33",
		"BH-K8S-205 MEDIUM b.yaml:33",
		"BH-K8S-209 MEDIUM b.yaml:35",
		// an unknown role to system:anonymous
		"BH-K8S-208 HIGH b.yaml:42",
		// get on one named secret
		"BH-K8S-205 LOW b.yaml:51",
	}
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, f := range fs {
		if f.ID == RBACDefaultSA && !strings.Contains(f.Description, "used by Deployment team/web") {
			t.Errorf("default SA finding does not name the workload: %s", f.Description)
		}
	}
}

// TestRBACHostileScale: a binding of many subjects to a role of many
// rules costs rules plus subjects, not their product, and the findings
// name a bounded number of holders.
func TestRBACHostileScale(t *testing.T) {
	const rules, subjects = 3000, 30000
	var b strings.Builder
	b.WriteString("apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: big}\nrules:\n")
	for i := 0; i < rules; i++ {
		fmt.Fprintf(&b, "- {apiGroups: [\"\"], resources: [secrets, pods/exec, r%d], verbs: [get, create]}\n", i)
	}
	b.WriteString("---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: many}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: big}\nsubjects:\n")
	for i := 0; i < subjects; i++ {
		fmt.Fprintf(&b, "- {kind: ServiceAccount, name: sa%d, namespace: ns}\n", i)
	}
	objs, err := ParseBytes("big.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	var set RBACSet
	for _, o := range objs {
		if err := set.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	a := AssessRBAC(&set)
	if len(a.Findings) != 2*rules || len(a.Subjects) != subjects {
		t.Fatalf("%d findings, %d subjects", len(a.Findings), len(a.Subjects))
	}
	for _, f := range a.Findings[:10] {
		if n := strings.Count(f.Description, "ServiceAccount ns/"); n > maxHolders+1 {
			t.Fatalf("finding names %d holders", n)
		}
	}
	if r := a.Subjects[0].Risks; len(r) != 2 {
		t.Errorf("subject risks not one per check: %d", len(r))
	}
}

func TestRBACMalformed(t *testing.T) {
	objs, err := ParseBytes("bad.yaml", []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: n}\nrules:\n- verbs: get\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := New(Options{})
	if _, err := s.Scan(objs); err == nil || !strings.Contains(err.Error(), "bad.yaml: Role n/r") {
		t.Fatalf("malformed Role: %v", err)
	}
}

// TestSecretValuesRedacted: nothing of a committed Secret's value, decoded
// or as written, appears in any finding.
func TestSecretValuesRedacted(t *testing.T) {
	objs := loadSet(t, "secrets/kubernetes-examples_azure-secret.yaml", "secrets/kubernetes-examples_scaleio-secret.yaml")
	s, _ := New(Options{})
	fs, err := s.Scan(objs)
	if err != nil {
		t.Fatal(err)
	}
	all := fmt.Sprintf("%+v", fs)
	for _, o := range objs {
		for _, v := range o.Raw["data"].(map[string]any) {
			raw := v.(string)
			dec, _ := base64Decode(raw)
			for _, x := range []string{raw, dec} {
				if len(x) >= 8 && strings.Contains(all, x[:8]) || len(x) > 5 && strings.Contains(all, x[1:len(x)-1]) {
					t.Errorf("a value of Secret %s appears in the findings", o.Meta.Name)
				}
			}
		}
	}
}

// TestExternalStoresThroughConfigScan: bulkhead config over the external
// secret stores' manifests, with the secret scanner on, says nothing of
// them: no finding, no warning, no unknown-kind note.
func TestExternalStoresThroughConfigScan(t *testing.T) {
	k, err := newKindScanner(kindOptions{PSS: "restricted", PSSVersion: "latest", MaxObjects: DefaultMaxObjects}, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := []string{
		"testdata/secrets/external-secrets_basic-external-secret.yaml",
		"testdata/secrets/external-secrets_basic-secret-store.yaml",
		"testdata/secrets/sealed-secrets_sealedsecret.yaml",
		"testdata/secrets/secrets-store-csi-driver_aws_BasicTestMountSPC.yaml",
	}
	var got []finding.Finding
	sum, err := config.Scan(context.Background(), files, config.Options{Checkers: map[string]config.Checker{"kubernetes": k.scan}, Secrets: secret.Default()},
		func(fs []finding.Finding) { got = append(got, fs...) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Checked != len(files) || len(sum.Diagnostics) != 0 || len(got) != 0 {
		t.Errorf("checked %d, diagnostics %v, findings %v", sum.Checked, sum.Diagnostics, got)
	}
	for _, f := range files {
		objs := loadSet(t, strings.TrimPrefix(f, "testdata/"))
		if len(objs) != 1 || !IsExternalSecretStore(objs[0]) {
			t.Errorf("%s: not recognised as an external secret store", f)
		}
	}
}
