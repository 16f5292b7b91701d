package helm

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bulkhead-sec/bulkhead/internal/kubetest"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
)

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m)) }

// parent is the chart that installs every component.
const parent = "bulkhead"

// renderParent builds the parent's dependencies (the webhook subchart)
// and renders it with args.
func renderParent(t *testing.T, args ...string) *rendered {
	t.Helper()
	if _, err := runHelm(t, "dependency", "build", parent); err != nil {
		t.Fatal(err)
	}
	out, err := runHelm(t, append([]string{"template", "rel", parent, "--namespace", "bulkhead"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	r := &rendered{raw: out, objs: map[string][]map[string]any{}}
	for _, doc := range strings.Split(out, "\n---") {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered YAML: %v\n%s", err, doc)
		}
		if k, ok := m["kind"].(string); ok {
			r.objs[k] = append(r.objs[k], m)
		}
	}
	return r
}

func TestParentLint(t *testing.T) {
	if _, err := runHelm(t, "dependency", "build", parent); err != nil {
		t.Fatal(err)
	}
	out, err := runHelm(t, "lint", "--strict", parent, "--set", "sensor.enabled=true")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("lint:\n%s", out)
	}
}

// podSpecs decodes the pod templates of the rendered Deployments and
// DaemonSets, by object name.
func podSpecs(t *testing.T, r *rendered) map[string]*corev1.PodTemplateSpec {
	t.Helper()
	out := map[string]*corev1.PodTemplateSpec{}
	for _, kind := range []string{"Deployment", "DaemonSet"} {
		for _, o := range r.objs[kind] {
			b, _ := yaml.Marshal(o)
			var d appsv1.Deployment // same template path for a DaemonSet
			if err := yaml.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			out[d.Name] = &d.Spec.Template
		}
	}
	return out
}

// TestParentPodSecurity: every pod but the sensor's meets Pod Security
// restricted by the upstream evaluator; the sensor is not privileged and
// holds exactly the capabilities eBPF needs, in its own namespace.
func TestParentPodSecurity(t *testing.T) {
	r := renderParent(t, "--set", "sensor.enabled=true")
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	baseline := api.LevelVersion{Level: api.LevelBaseline, Version: api.LatestVersion()}
	pods := podSpecs(t, r)
	for _, want := range []string{"rel", "rel-server", "rel-operator", "rel-sensor"} {
		if pods[want] == nil {
			t.Fatalf("no pod template %s in %v", want, pods)
		}
	}
	for name, p := range pods {
		res := policy.AggregateCheckResults(ev.EvaluatePod(restricted, &p.ObjectMeta, &p.Spec))
		if name == "rel-sensor" {
			if res.Allowed || policy.AggregateCheckResults(ev.EvaluatePod(baseline, &p.ObjectMeta, &p.Spec)).Allowed {
				t.Errorf("the sensor passes baseline: it needs less than it is given")
			}
			continue
		}
		if !res.Allowed {
			t.Errorf("%s fails Pod Security restricted: %s", name, res.ForbiddenDetail())
		}
	}
	s := pods["rel-sensor"].Spec
	c := s.Containers[0].SecurityContext
	var caps []string
	for _, cp := range c.Capabilities.Add {
		caps = append(caps, string(cp))
	}
	slices.Sort(caps)
	if !slices.Equal(caps, []string{"BPF", "PERFMON", "SYS_PTRACE", "SYS_RESOURCE"}) || (c.Privileged != nil && *c.Privileged) ||
		!slices.Equal(c.Capabilities.Drop, []corev1.Capability{"ALL"}) || !s.HostPID || s.HostNetwork || *c.AllowPrivilegeEscalation {
		t.Errorf("sensor security: hostPID %v, %+v", s.HostPID, c)
	}
	for _, v := range s.Volumes {
		if v.HostPath != nil {
			t.Errorf("sensor mounts host path %s", v.HostPath.Path)
		}
	}
	ds := r.objs["DaemonSet"][0]
	ns := r.objs["Namespace"][0]
	if str(ds, "metadata", "namespace") != "bulkhead-sensor" || str(ns, "metadata", "name") != "bulkhead-sensor" ||
		str(ns, "metadata", "labels", "pod-security.kubernetes.io/enforce") != "privileged" {
		t.Errorf("the sensor is not alone in a privileged namespace: %v %v", ds["metadata"], ns["metadata"])
	}
	// Nothing in the release namespace needs a token but the operator.
	for name, p := range pods {
		if name != "rel-operator" && (p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken) {
			t.Errorf("%s mounts a service account token", name)
		}
	}
	// Each component has its NetworkPolicy.
	var nps []string
	for _, np := range r.objs["NetworkPolicy"] {
		nps = append(nps, str(np, "metadata", "name"))
	}
	slices.Sort(nps)
	if !slices.Equal(nps, []string{"rel-admission", "rel-operator", "rel-sensor", "rel-server"}) {
		t.Errorf("network policies %v", nps)
	}
}

// readmeRow is how the chart README lists a rule.
func readmeRow(name, kind string, rule rbacv1.PolicyRule) string {
	var groups []string
	for _, g := range rule.APIGroups {
		if g == "" {
			g = "core"
		}
		groups = append(groups, g)
	}
	return "| " + strings.TrimPrefix(name, "rel-") + " (" + kind + ") | " + strings.Join(groups, ", ") + " | " +
		strings.Join(rule.Resources, ", ") + " | " + strings.Join(rule.Verbs, ", ") + " |"
}

// rbacRules decodes the rendered Roles and ClusterRoles.
func rbacRules(t *testing.T, r *rendered) map[string][]rbacv1.PolicyRule {
	t.Helper()
	out := map[string][]rbacv1.PolicyRule{}
	for _, kind := range []string{"ClusterRole", "Role"} {
		for _, o := range r.objs[kind] {
			b, _ := yaml.Marshal(o)
			var role rbacv1.ClusterRole
			if err := yaml.UnmarshalStrict(b, &role); err != nil {
				t.Fatal(err)
			}
			out[kind+" "+role.Name] = role.Rules
		}
	}
	return out
}

// TestParentRBACInReadme: every rule the chart can grant is a row of the
// README's table (with its reason), and the README lists no rule the chart
// does not grant.
func TestParentRBACInReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(parent, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	granted := map[string]bool{}
	for _, args := range [][]string{nil, {"--set", "operator.pullSecrets=true", "--set", "operator.namespaces={a,b}"},
		{"--set", "operator.scanMode=jobs", "--set", "operator.serverTokenSecret=tok", "--set", "operator.pullSecrets=true"}} {
		r := renderParent(t, args...)
		for ref, rules := range rbacRules(t, r) {
			kind, name, _ := strings.Cut(ref, " ")
			for _, rule := range rules {
				row := readmeRow(name, kind, rule)
				granted[row] = true
				i := strings.Index(string(readme), row)
				if i < 0 {
					t.Errorf("README.md does not list %s's rule: %s", ref, row)
					continue
				}
				why, _, _ := strings.Cut(string(readme[i+len(row):]), "\n")
				if len(strings.Trim(why, " |")) < 10 {
					t.Errorf("README.md gives no reason for %s", row)
				}
			}
		}
	}
	rowRE := regexp.MustCompile(`(?m)^\| [a-z-]+ \((?:Cluster)?Role\) \|[^|]+\|[^|]+\|[^|]+\|`)
	for _, row := range rowRE.FindAllString(string(readme), -1) {
		if !granted[row] {
			t.Errorf("README.md lists a rule the chart does not grant: %s", row)
		}
	}
	if len(granted) < 10 {
		t.Errorf("%d rules", len(granted))
	}
}

// TestParentCRDsMatchDeploy: the chart's crds/ are deploy/crds.
func TestParentCRDsMatchDeploy(t *testing.T) {
	want, _ := filepath.Glob("../crds/*.yaml")
	got, _ := filepath.Glob(filepath.Join(parent, "crds", "*.yaml"))
	if len(want) == 0 || len(got) != len(want) {
		t.Fatalf("chart crds %v, deploy/crds %v", got, want)
	}
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(parent, "crds", filepath.Base(w)))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s differs from deploy/crds (cp deploy/crds/*.yaml deploy/helm/bulkhead/crds/)", filepath.Base(w))
		}
	}
}

// TestParentRBACOnAPIServer applies the rendered CRDs and RBAC to a real
// API server and asks it (SubjectAccessReview) what the operator's service
// account may do: what its controllers need, and nothing the README does
// not list (no secrets unless pullSecrets, no deletes of workload
// reports, no writes to workloads).
func TestParentRBACOnAPIServer(t *testing.T) {
	e := kubetest.Start(t)
	ctx := context.Background()
	if err := controller.InstallCRDs(ctx, e.Config); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(e.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ns := e.Namespace(t, "bulkhead", nil)
	if _, err := runHelm(t, "dependency", "build", parent); err != nil {
		t.Fatal(err)
	}
	// Job mode, so that its Role is applied too (scan Jobs in the release
	// namespace only).
	out, err := runHelm(t, "template", "rel", parent, "--namespace", ns, "--set", "operator.scanMode=jobs", "--set", "operator.serverTokenSecret=tok")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(out, "\n---") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		switch u.GetKind() {
		case "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount":
			if err := c.Create(ctx, &u); err != nil {
				t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
			}
			if u.GetKind() == "ClusterRole" || u.GetKind() == "ClusterRoleBinding" {
				t.Cleanup(func() { c.Delete(context.Background(), &u) })
			}
		}
	}
	user := "system:serviceaccount:" + ns + ":rel-operator"
	can := func(verb, group, resource, namespace string) bool {
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{User: user,
			Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Namespace: namespace}}}
		if err := c.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed
	}
	for _, a := range []struct {
		verb, group, resource, ns string
		want                      bool
	}{
		{"watch", "", "pods", "", true},
		{"list", "apps", "replicasets", "shop", true},
		{"watch", "rbac.authorization.k8s.io", "clusterroles", "", true},
		{"create", "bulkhead.dev", "clusterrbacassessmentreports", "", true},
		{"delete", "bulkhead.dev", "rbacassessmentreports", "shop", true},
		{"update", "coordination.k8s.io", "leases", ns, true},
		{"update", "coordination.k8s.io", "leases", "kube-system", false},
		{"get", "", "secrets", "shop", false},
		{"delete", "bulkhead.dev", "workloadreports", "shop", false},
		{"update", "apps", "deployments", "shop", false},
		{"create", "", "pods", "shop", false},
		{"escalate", "rbac.authorization.k8s.io", "clusterroles", "", false},
		// Job mode: scan Jobs are created and deleted in the release
		// namespace, nowhere else; jobs elsewhere are only read.
		{"create", "batch", "jobs", ns, true},
		{"delete", "batch", "jobs", ns, true},
		{"get", "batch", "jobs", ns, true},
		{"create", "batch", "jobs", "shop", false},
		{"delete", "batch", "jobs", "shop", false},
		{"create", "batch", "jobs", "", false},
		{"delete", "batch", "jobs", "", false},
		{"deletecollection", "batch", "jobs", ns, false},
		{"update", "batch", "jobs", ns, false},
		{"list", "batch", "jobs", "shop", true},
		// No pull-secret copies without operator.pullSecrets.
		{"create", "", "secrets", ns, false},
	} {
		if got := can(a.verb, a.group, a.resource, a.ns); got != a.want {
			t.Errorf("operator may %s %s/%s in %q: %v, want %v", a.verb, a.group, a.resource, a.ns, got, a.want)
		}
	}
	// The server's and webhook's service accounts hold nothing.
	user = "system:serviceaccount:" + ns + ":rel-server"
	if can("list", "", "pods", "") {
		t.Error("the server's service account may list pods")
	}
}

// TestParentJobMode: operator.scanMode=jobs gives the operator the Job
// flags (the chart's own image, the token Secret, the release namespace),
// keeps every pod at Pod Security restricted, gives the scan Jobs' pods a
// NetworkPolicy and lets them reach the server; bad settings fail the
// render with what to set.
func TestParentJobMode(t *testing.T) {
	r := renderParent(t, "--set", "operator.scanMode=jobs", "--set", "operator.serverTokenSecret=tok",
		"--set", "operator.scanJobs.concurrency=5", "--set", "image.digest=sha256:"+strings.Repeat("a", 64))
	pods := podSpecs(t, r)
	op := pods["rel-operator"]
	if op == nil {
		t.Fatal("no operator")
	}
	args := strings.Join(op.Spec.Containers[0].Args, " ")
	for _, want := range []string{"--scan-mode=jobs", "--scan-jobs-namespace=bulkhead", "--scan-jobs-concurrency=5",
		"--scan-jobs-image=ghcr.io/bulkhead-sec/bulkhead@sha256:" + strings.Repeat("a", 64), "--scan-jobs-token-secret=tok",
		"--scan-jobs-deadline=30m", "--server=http://rel-server.bulkhead.svc:8080"} {
		if !strings.Contains(args, want) {
			t.Errorf("operator args %q lack %s", args, want)
		}
	}
	if img := op.Spec.Containers[0].Image; !strings.Contains(args, "--scan-jobs-image="+img) {
		t.Errorf("the scan Jobs run another image than the operator's %s: %s", img, args)
	}
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for name, p := range pods {
		if res := policy.AggregateCheckResults(ev.EvaluatePod(restricted, &p.ObjectMeta, &p.Spec)); !res.Allowed {
			t.Errorf("%s fails Pod Security restricted in Job mode: %s", name, res.ForbiddenDetail())
		}
	}
	// Roles: Jobs in the release namespace only; no pull-secret Role
	// without operator.pullSecrets.
	rules := rbacRules(t, r)
	if _, ok := rules["Role rel-operator-scan-jobs"]; !ok {
		t.Errorf("no scan-jobs Role: %v", slices.Collect(maps.Keys(rules)))
	}
	if _, ok := rules["Role rel-operator-scan-job-pull-secrets"]; ok {
		t.Error("pull-secret Role without operator.pullSecrets")
	}
	for _, o := range r.objs["Role"] {
		if str(o, "metadata", "namespace") != "bulkhead" {
			t.Errorf("Role %s outside the release namespace", str(o, "metadata", "name"))
		}
	}
	// The scan Jobs' pods: their own policy, and the server lets them in.
	var scanNP, serverNP map[string]any
	for _, np := range r.objs["NetworkPolicy"] {
		switch str(np, "metadata", "name") {
		case "rel-scan-jobs":
			scanNP = np
		case "rel-server":
			serverNP = np
		}
	}
	if scanNP == nil || str(scanNP, "spec", "podSelector", "matchLabels", "bulkhead.dev/scan") != "true" {
		t.Fatalf("scan Jobs' NetworkPolicy: %v", scanNP)
	}
	if b, _ := yaml.Marshal(serverNP); !strings.Contains(string(b), "bulkhead.dev/scan") {
		t.Errorf("the server's NetworkPolicy does not admit the scan Jobs:\n%s", b)
	}
	// Workers mode renders none of it.
	r = renderParent(t)
	if strings.Contains(r.raw, "scan-jobs") || strings.Contains(r.raw, "--scan-mode") {
		t.Error("workers mode renders Job mode objects")
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "operator.scanMode=jobs"}, "operator.serverTokenSecret"},
		{[]string{"--set", "operator.scanMode=jobs", "--set", "operator.serverTokenSecret=tok", "--set", "server.enabled=false"}, "server.enabled=true"},
		{[]string{"--set", "operator.scanMode=job"}, "give workers or jobs"},
	} {
		_, err := runHelm(t, append([]string{"template", "rel", parent, "--namespace", "bulkhead"}, bad.args...)...)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: %v, want an error naming %s", bad.args, err, bad.want)
		}
	}
}

// TestParentSensorToServer: sensor.serverTokenSecret sends the sensor's
// alerts to the chart's server with the token mounted from the Secret as a
// file (not in the pod spec), and the sensor's NetworkPolicy lets it reach
// the server in the release namespace.
// TestParentSensorCRISocket: the CRI socket is mounted only when
// sensor.criSocket names it, as a Socket hostPath mounted read-only at the
// same path and passed as --cri-socket; a relative path is refused.
func TestParentSensorCRISocket(t *testing.T) {
	const sock = "/run/containerd/containerd.sock"
	r := renderParent(t, "--set", "sensor.enabled=true", "--set", "sensor.criSocket="+sock)
	p := podSpecs(t, r)["rel-sensor"]
	if p == nil {
		t.Fatal("no sensor")
	}
	c := p.Spec.Containers[0]
	if !slices.Contains(c.Args, "--cri-socket="+sock) {
		t.Errorf("sensor args: %v", c.Args)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].HostPath == nil || p.Spec.Volumes[0].HostPath.Path != sock ||
		p.Spec.Volumes[0].HostPath.Type == nil || *p.Spec.Volumes[0].HostPath.Type != corev1.HostPathSocket {
		t.Fatalf("CRI volume: %+v", p.Spec.Volumes)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != sock || !c.VolumeMounts[0].ReadOnly {
		t.Errorf("CRI mount: %+v", c.VolumeMounts)
	}
	if _, err := runHelm(t, "template", "rel", parent, "--set", "sensor.enabled=true", "--set", "sensor.criSocket=run/crio.sock"); err == nil ||
		!strings.Contains(err.Error(), "host path of the CRI socket") {
		t.Errorf("relative criSocket: %v", err)
	}
}

func TestParentSensorToServer(t *testing.T) {
	r := renderParent(t, "--set", "sensor.enabled=true", "--set", "sensor.serverTokenSecret=sensor-token")
	p := podSpecs(t, r)["rel-sensor"]
	if p == nil {
		t.Fatal("no sensor")
	}
	args := strings.Join(p.Spec.Containers[0].Args, " ")
	if !strings.Contains(args, "--webhook=http://rel-server.bulkhead.svc:8080/api/v1/events/falco") ||
		!strings.Contains(args, "--webhook-token-file=/var/run/bulkhead/webhook/token") {
		t.Errorf("sensor args: %s", args)
	}
	if len(p.Spec.Volumes) != 1 || p.Spec.Volumes[0].Secret == nil || p.Spec.Volumes[0].Secret.SecretName != "sensor-token" ||
		len(p.Spec.Containers[0].VolumeMounts) != 1 || !p.Spec.Containers[0].VolumeMounts[0].ReadOnly {
		t.Errorf("token volume: %+v %+v", p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts)
	}
	for _, e := range p.Spec.Containers[0].Env {
		if e.Value != "" && strings.Contains(strings.ToLower(e.Name), "token") {
			t.Errorf("a token in the pod spec: %s", e.Name)
		}
	}
	var np map[string]any
	for _, o := range r.objs["NetworkPolicy"] {
		if str(o, "metadata", "name") == "rel-sensor" {
			np = o
		}
	}
	b, _ := yaml.Marshal(np["spec"])
	var spec struct {
		Egress []struct {
			To []struct {
				NamespaceSelector *struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"namespaceSelector"`
				PodSelector *struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"podSelector"`
			} `json:"to"`
			Ports []struct {
				Port int `json:"port"`
			} `json:"ports"`
		} `json:"egress"`
	}
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	ok := false
	for _, e := range spec.Egress {
		for _, to := range e.To {
			if to.NamespaceSelector != nil && to.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == "bulkhead" &&
				to.PodSelector != nil && to.PodSelector.MatchLabels["app.kubernetes.io/name"] == "bulkhead-server" && len(e.Ports) == 1 && e.Ports[0].Port == 8080 {
				ok = true
			}
			if to.NamespaceSelector == nil && to.PodSelector != nil {
				t.Errorf("an egress peer with a pod selector only selects pods of the sensor's own namespace: %+v", to.PodSelector)
			}
		}
	}
	if !ok {
		t.Errorf("the sensor's NetworkPolicy does not reach the server:\n%s", b)
	}
	for _, bad := range [][]string{
		{"--set", "sensor.enabled=true", "--set", "sensor.serverTokenSecret=s", "--set", "sensor.webhook=https://x"},
		{"--set", "sensor.enabled=true", "--set", "sensor.serverTokenSecret=s", "--set", "server.enabled=false"},
	} {
		if _, err := runHelm(t, append([]string{"template", "rel", parent, "--namespace", "bulkhead"}, bad...)...); err == nil {
			t.Errorf("%v renders", bad)
		}
	}
}
