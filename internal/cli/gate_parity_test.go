package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/yaml"

	"github.com/bulkhead-sec/bulkhead/admission"
	"github.com/bulkhead-sec/bulkhead/policy"
)

// parityPolicy needs no registry: Pod Security, workload checks, digest
// pinning and registries, in enforce and warn mode, scoped by image and
// namespace, with exemptions by rule, namespace and image (one expired),
// and exempt namespaces by name and by glob.
const parityPolicy = `apiVersion: bulkhead.dev/v1
kind: Policy
admission:
  exemptNamespaces: [kube-system, "infra-*"]
  maxImages: 8
rules:
  - name: pss
    podSecurity: {level: baseline}
  - name: restricted
    mode: warn
    match: {namespaces: [prod, "prod-*"]}
    podSecurity: {level: restricted}
  - name: no-root
    match: {namespaces: [prod, "prod-*"]}
    workload: {checks: [BH-K8S-109]}
  - name: limits
    mode: warn
    workload: {checks: [BH-K8S-102, BH-K8S-103]}
  - name: no-socket
    workload: {checks: [BH-K8S-110]}
  - name: pinned
    match: {images: ["ghcr.io/acme/**"], namespaces: [prod, "prod-*"]}
    digestPinning: {}
  - name: registries
    mode: warn
    registries: {allowed: [ghcr.io, registry.k8s.io]}
  - name: vulns
    match: {images: ["ghcr.io/acme/big/**"]}
    vulnerabilities: {maxSeverity: HIGH}
exemptions:
  - {rule: pss, namespaces: [ci], owner: ci-team, reason: builds run privileged, expires: 2999-01-01}
  - {rule: pinned, images: [ghcr.io/acme/legacy], owner: app-team, reason: v2 replaces it, expires: 2999-01-01}
  - {rule: pinned, images: [ghcr.io/acme/debug], owner: sre, reason: debugging, expires: 2020-01-01}
  - {rule: no-root, namespaces: [prod-eu], owner: app-team, reason: v2 replaces it, expires: 2999-01-01}
  - {rule: registries, namespaces: [sandbox], owner: sandbox-team, reason: anything goes, expires: 2999-01-01}
`

const parityDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

type pmap = map[string]any

// goodContainer passes every rule of parityPolicy.
func goodContainer(name, image string) pmap {
	return pmap{
		"name": name, "image": image,
		"securityContext": pmap{
			"runAsNonRoot": true, "runAsUser": 1000, "allowPrivilegeEscalation": false,
			"capabilities": pmap{"drop": []any{"ALL"}}, "seccompProfile": pmap{"type": "RuntimeDefault"},
			"readOnlyRootFilesystem": true,
		},
		"resources": pmap{"limits": pmap{"cpu": "100m", "memory": "64Mi"}},
	}
}

// podSpec is a pod spec of one good container, changed by the mods.
func podSpec(image string, mods ...func(spec, c pmap)) pmap {
	c := goodContainer("app", image)
	spec := pmap{"containers": []any{c}}
	for _, m := range mods {
		m(spec, c)
	}
	return spec
}

func privileged(_, c pmap) { c["securityContext"].(pmap)["privileged"] = true }
func asRoot(_, c pmap) {
	sc := c["securityContext"].(pmap)
	sc["runAsNonRoot"], sc["runAsUser"] = false, 0
}
func noLimits(_, c pmap) { delete(c, "resources") }
func hostPath(p string) func(spec, c pmap) {
	return func(spec, c pmap) {
		spec["volumes"] = []any{pmap{"name": "host", "hostPath": pmap{"path": p}}}
		c["volumeMounts"] = []any{pmap{"name": "host", "mountPath": "/host"}}
	}
}
func manyImages(n int) func(spec, c pmap) {
	return func(spec, _ pmap) {
		cs := spec["containers"].([]any)
		for i := range n {
			cs = append(cs, goodContainer(fmt.Sprintf("c%d", i), fmt.Sprintf("ghcr.io/acme/big/s%d@%s", i, parityDigest)))
		}
		spec["containers"] = cs
	}
}
func hostField(f string) func(spec, c pmap) { return func(spec, _ pmap) { spec[f] = true } }
func privilegedInit(spec, _ pmap) {
	ic := goodContainer("init", "ghcr.io/acme/init@"+parityDigest)
	ic["securityContext"].(pmap)["privileged"] = true
	spec["initContainers"] = []any{ic}
}
func sidecar(image string) func(spec, c pmap) {
	return func(spec, _ pmap) {
		spec["containers"] = append(spec["containers"].([]any), goodContainer("sidecar", image))
	}
}

// workload wraps a pod spec in an object of kind.
func workload(kind, name, ns string, spec pmap) pmap {
	meta := pmap{"name": name}
	if ns != "" {
		meta["namespace"] = ns
	}
	labels := pmap{"app": name}
	tmpl := pmap{"metadata": pmap{"labels": labels}, "spec": spec}
	sel := pmap{"matchLabels": labels}
	o := pmap{"kind": kind, "metadata": meta}
	switch kind {
	case "Pod":
		o["apiVersion"], o["spec"] = "v1", spec
	case "PodTemplate":
		o["apiVersion"], o["template"] = "v1", tmpl
	case "ReplicationController":
		o["apiVersion"], o["spec"] = "v1", pmap{"selector": labels, "template": tmpl}
	case "Deployment", "ReplicaSet", "DaemonSet":
		o["apiVersion"], o["spec"] = "apps/v1", pmap{"selector": sel, "template": tmpl}
	case "StatefulSet":
		o["apiVersion"], o["spec"] = "apps/v1", pmap{"selector": sel, "serviceName": name, "template": tmpl}
	case "Job":
		spec["restartPolicy"] = "Never"
		o["apiVersion"], o["spec"] = "batch/v1", pmap{"template": tmpl}
	case "CronJob":
		spec["restartPolicy"] = "Never"
		o["apiVersion"], o["spec"] = "batch/v1", pmap{"schedule": "*/5 * * * *", "jobTemplate": pmap{"spec": pmap{"template": tmpl}}}
	default:
		panic(kind)
	}
	return o
}

type parityCase struct {
	obj pmap
	// gateNS is the gate's --namespace (and the request's namespace for
	// an object that names none).
	gateNS string
	// list: consecutive cases with the same list name are items of one
	// List document.
	list    string
	allowed bool
	exempt  bool
	deny    []string // rules that deny
	warn    []string // rules that warn
	notes   []string // substrings of policy warnings (not rule results)
}

func parityCases() []parityCase {
	pinned := "ghcr.io/acme/app@" + parityDigest
	legacy := "ghcr.io/acme/legacy:3"
	debug := "ghcr.io/acme/debug:1"
	nginx := "docker.io/library/nginx:1.25"
	const d = "default"
	return []parityCase{
		{obj: workload("Pod", "good", "prod", podSpec(pinned)), gateNS: d, allowed: true},
		{obj: workload("Pod", "priv", "prod", podSpec(pinned, privileged)), gateNS: d, deny: []string{"pss"}, warn: []string{"restricted"}},
		{obj: workload("Deployment", "hostpath", "prod", podSpec(pinned, hostPath("/etc"))), gateNS: d, deny: []string{"pss"}, warn: []string{"restricted"}},
		{obj: workload("Deployment", "root", "prod", podSpec(pinned, asRoot)), gateNS: d, deny: []string{"no-root"}, warn: []string{"restricted"}},
		{obj: workload("StatefulSet", "unpinned", "prod", podSpec("ghcr.io/acme/app:1")), gateNS: d, deny: []string{"pinned"}},
		{obj: workload("DaemonSet", "ci-priv", "ci", podSpec(pinned, privileged)), gateNS: d, allowed: true},
		{obj: workload("Job", "sys-priv", "kube-system", podSpec(pinned, privileged)), gateNS: d, allowed: true, exempt: true},
		{obj: workload("CronJob", "infra-priv", "infra-monitoring", podSpec("ghcr.io/acme/app:1", privileged, noLimits)), gateNS: d, allowed: true, exempt: true},
		{obj: workload("ReplicaSet", "nginx", "default", podSpec(nginx)), gateNS: d, allowed: true, warn: []string{"registries"}},
		{obj: workload("Pod", "sandbox-nginx", "sandbox", podSpec(nginx)), gateNS: d, allowed: true},
		{obj: workload("Pod", "legacy", "prod", podSpec(legacy)), gateNS: d, allowed: true},
		{obj: workload("Pod", "legacy-root-eu", "prod-eu", podSpec(legacy, asRoot)), gateNS: d, allowed: true, warn: []string{"restricted"}},
		{obj: workload("Pod", "legacy-root", "prod", podSpec(legacy, asRoot)), gateNS: d, deny: []string{"no-root"}, warn: []string{"restricted"}},
		{obj: workload("Pod", "debug", "prod", podSpec(debug)), gateNS: d, deny: []string{"pinned"}, notes: []string{`exemption for rule "pinned" (owner sre`, "expired on 2020-01-01"}},
		{obj: workload("Pod", "debug-priv", "prod-us", podSpec(debug, privileged)), gateNS: d, deny: []string{"pss", "pinned"}, warn: []string{"restricted"}, notes: []string{"expired on 2020-01-01"}},
		// The expired exemption is for a rule that does not apply in dev.
		{obj: workload("Pod", "debug-dev", "dev", podSpec(debug)), gateNS: d, allowed: true},
		{obj: workload("Pod", "nolimits", "default", podSpec(pinned, noLimits)), gateNS: d, allowed: true, warn: []string{"limits"}},
		{obj: workload("Pod", "init-priv", "prod", podSpec(pinned, privilegedInit)), gateNS: d, deny: []string{"pss"}, warn: []string{"restricted"}},
		{obj: workload("Pod", "socket", "prod", podSpec(pinned, hostPath("/var/run/docker.sock"))), gateNS: d, deny: []string{"pss", "no-socket"}, warn: []string{"restricted"}},
		{obj: workload("Pod", "rejected", "prod", podSpec("ghcr.io/acme/../evil:1")), gateNS: d, deny: []string{"pinned", "vulns"}, warn: []string{"registries"}},
		{obj: workload("Pod", "tag-and-digest", "prod", podSpec("ghcr.io/acme/app:1@"+parityDigest)), gateNS: d, allowed: true, notes: []string{`the tag "1" next to the digest is ignored`}},
		{obj: workload("Pod", "no-namespace", "", podSpec("ghcr.io/acme/app:1")), gateNS: d, allowed: true},
		{obj: workload("Pod", "list-ci-priv", "ci", podSpec(pinned, privileged)), gateNS: d, list: "a", allowed: true},
		{obj: workload("Deployment", "list-unpinned", "prod-eu", podSpec("ghcr.io/acme/app:2")), gateNS: d, list: "a", deny: []string{"pinned"}},
		{obj: workload("Pod", "list-sys", "kube-system", podSpec(pinned, privileged)), gateNS: d, list: "a", allowed: true, exempt: true},
		{obj: workload("ReplicationController", "rc-priv", "prod", podSpec(pinned, privileged)), gateNS: d, deny: []string{"pss"}, warn: []string{"restricted"}},
		{obj: workload("PodTemplate", "hostnet", "prod", podSpec(pinned, hostField("hostNetwork"))), gateNS: d, deny: []string{"pss"}, warn: []string{"restricted"}},
		{obj: workload("Deployment", "sys-unpinned", "kube-system", podSpec("ghcr.io/acme/app:1", asRoot)), gateNS: d, allowed: true, exempt: true},
		{obj: workload("CronJob", "cron-good", "prod-eu", podSpec(pinned)), gateNS: d, allowed: true},
		{obj: workload("Job", "job-root", "default", podSpec(pinned, asRoot)), gateNS: d, allowed: true},
		{obj: workload("StatefulSet", "two", "prod", podSpec("ghcr.io/acme/app:2", sidecar(nginx))), gateNS: d, deny: []string{"pinned"}, warn: []string{"registries"}},
		{obj: workload("DaemonSet", "hostpid", "sandbox", podSpec(pinned, hostField("hostPID"))), gateNS: d, deny: []string{"pss"}},
		// Over admission.maxImages: the rule that needs the registry gives
		// one fail-closed result and asks nothing, in the gate as well.
		{obj: workload("Deployment", "big", "prod", podSpec(pinned, manyImages(10))), gateNS: d, deny: []string{"vulns"}},
		// Exempt namespaces are matched whole: kube-systems is judged.
		{obj: workload("Pod", "not-sys", "kube-systems", podSpec(pinned, privileged)), gateNS: d, deny: []string{"pss"}},
		// Objects that name no namespace, for the gate's --namespace.
		{obj: workload("Pod", "nons-priv", "", podSpec(pinned, privileged)), gateNS: "kube-system", allowed: true, exempt: true},
		{obj: workload("Deployment", "nons-hostpath", "", podSpec(pinned, hostPath("/"))), gateNS: "kube-system", allowed: true, exempt: true},
		{obj: workload("Pod", "nons-prod", "", podSpec("ghcr.io/acme/app:1", privileged)), gateNS: "prod", deny: []string{"pss", "pinned"}, warn: []string{"restricted"}},
	}
}

// TestGateWebhookParity: the gate judging a manifest and the webhook
// judging the same objects in AdmissionReviews give identical decisions:
// allowed, denial message, warnings (rule warnings and notes about the
// policy) and exempt namespaces, and the decisions are the expected ones.
func TestGateWebhookParity(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "bulkhead-policy.yaml")
	if err := os.WriteFile(pol, []byte(parityPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	facts := &policy.Registry{DBPath: filepath.Join(dir, "db"), CacheDir: filepath.Join(dir, "cache")}
	t.Cleanup(func() { facts.Close() })
	srv, err := admission.New(admission.Options{PolicyPath: pol, Facts: facts})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	cases := parityCases()
	// The gate: one manifest file per --namespace, in case order.
	gated := map[int]policy.Decision{}
	byNS := map[string][]int{}
	var order []string
	for i, tc := range cases {
		if _, ok := byNS[tc.gateNS]; !ok {
			order = append(order, tc.gateNS)
		}
		byNS[tc.gateNS] = append(byNS[tc.gateNS], i)
	}
	for _, ns := range order {
		idx := byNS[ns]
		var docs [][]byte
		for k := 0; k < len(idx); {
			tc := cases[idx[k]]
			if tc.list == "" {
				docs = append(docs, mustYAML(t, tc.obj))
				k++
				continue
			}
			var items []any
			for ; k < len(idx) && cases[idx[k]].list == tc.list; k++ {
				items = append(items, cases[idx[k]].obj)
			}
			docs = append(docs, mustYAML(t, pmap{"apiVersion": "v1", "kind": "List", "items": items}))
		}
		manifest := filepath.Join(dir, "manifest-"+ns+".yaml")
		if err := os.WriteFile(manifest, bytes.Join(docs, []byte("---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		jsonOut := filepath.Join(dir, "gate-"+ns+".json")
		var stdout, stderr bytes.Buffer
		cmd := newGateCmd(&stdout, &stderr)
		cmd.SetArgs([]string{"--policy", pol, "--namespace", ns, "--json", jsonOut, "--db", filepath.Join(dir, "db"), manifest})
		cmd.SetOut(&stdout)
		cmd.SetErr(&stderr)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(context.Background())
		var ee *exitError
		if err != nil && !(errors.As(err, &ee) && ee.code == 1) {
			t.Fatalf("gate -n %s: %v\n%s", ns, err, stderr.String())
		}
		var rep struct {
			Targets []struct {
				Target   string          `json:"target"`
				Decision policy.Decision `json:"decision"`
			} `json:"targets"`
		}
		b, _ := os.ReadFile(jsonOut)
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatalf("gate report: %v\n%s", err, b)
		}
		if len(rep.Targets) != len(idx) {
			t.Fatalf("gate -n %s judged %d targets, want %d:\n%s", ns, len(rep.Targets), len(idx), stdout.String())
		}
		for k, i := range idx {
			name := cases[i].obj["metadata"].(pmap)["name"].(string)
			if want := cases[i].obj["kind"].(string) + "/" + name; rep.Targets[k].Target != want {
				t.Fatalf("gate target %d is %s, want %s", k, rep.Targets[k].Target, want)
			}
			gated[i] = rep.Targets[k].Decision
		}
		// The summary says why an exempt namespace was let through.
		if ns == "kube-system" && !strings.Contains(stdout.String(), "EXEMPT namespace kube-system is exempt (admission.exemptNamespaces: kube-system): not judged") {
			t.Errorf("gate summary lacks the exemption:\n%s", stdout.String())
		}
	}

	for i, tc := range cases {
		meta := tc.obj["metadata"].(pmap)
		name := tc.obj["kind"].(string) + "/" + meta["name"].(string)
		t.Run(name, func(t *testing.T) {
			g := gated[i]
			ns, _ := meta["namespace"].(string)
			if ns == "" {
				ns = tc.gateNS
			}
			resp := parityReview(t, ts.URL, tc.obj, ns)

			// Identical decisions.
			if resp.Allowed != g.Allowed {
				t.Errorf("webhook allowed %v, gate %v", resp.Allowed, g.Allowed)
			}
			webMsg := ""
			if resp.Result != nil {
				webMsg = resp.Result.Message
			}
			if gateMsg := g.Reason(); webMsg != gateMsg {
				t.Errorf("denial messages differ:\nwebhook %q\ngate    %q", webMsg, gateMsg)
			}
			if !reflect.DeepEqual(noneIfEmpty(resp.Warnings), noneIfEmpty(g.Warnings)) {
				t.Errorf("warnings differ:\nwebhook %q\ngate    %q", resp.Warnings, g.Warnings)
			}
			if resp.AuditAnnotations["exempt"] != g.Exempt {
				t.Errorf("exemption differs: webhook %q, gate %q", resp.AuditAnnotations["exempt"], g.Exempt)
			}

			// The expected decision.
			if g.Allowed != tc.allowed {
				t.Errorf("allowed %v, want %v: %+v", g.Allowed, tc.allowed, g)
			}
			if (g.Exempt != "") != tc.exempt || (tc.exempt && (len(g.Results) > 0 || !strings.Contains(g.Exempt, "namespace "+ns+" is exempt"))) {
				t.Errorf("exempt %q with %d results, want exempt %v", g.Exempt, len(g.Results), tc.exempt)
			}
			deny, warn := outcomes(g)
			if !reflect.DeepEqual(deny, sorted(tc.deny)) || !reflect.DeepEqual(warn, sorted(tc.warn)) {
				t.Errorf("deny %v warn %v, want deny %v warn %v\n%+v", deny, warn, sorted(tc.deny), sorted(tc.warn), g.Results)
			}
			for _, r := range g.Results {
				if r.Error && !strings.Contains(r.Message, "over the limit of 8 (admission.maxImages)") {
					t.Errorf("a rule could not be checked (no registry should be asked): %s", r.Message)
				}
				if r.Outcome == policy.Deny && !strings.Contains(webMsg, fmt.Sprintf("rule %q", r.Rule)) {
					t.Errorf("webhook denial does not name rule %s: %q", r.Rule, webMsg)
				}
			}
			for _, n := range tc.notes {
				if !strings.Contains(strings.Join(g.Warnings, "\n"), n) {
					t.Errorf("warnings lack %q: %q", n, g.Warnings)
				}
			}
		})
	}
}

// parityReview posts obj in an AdmissionReview (CREATE in namespace ns, as
// the API server sends it) to the webhook and returns its response.
func parityReview(t *testing.T, url string, obj pmap, ns string) *admissionv1.AdmissionResponse {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	kind := obj["kind"].(string)
	group, version, ok := strings.Cut(obj["apiVersion"].(string), "/")
	if !ok {
		group, version = "", group
	}
	rev := pmap{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": pmap{
			"uid":       "7c2b5a0e-parity",
			"kind":      pmap{"group": group, "version": version, "kind": kind},
			"resource":  pmap{"group": group, "version": version, "resource": strings.ToLower(kind) + "s"},
			"name":      obj["metadata"].(pmap)["name"],
			"namespace": ns, "operation": "CREATE", "userInfo": pmap{"username": "alice"},
			"object": json.RawMessage(raw),
		},
	}
	body, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out admissionv1.AdmissionReview
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &out) != nil || out.Response == nil {
		t.Fatalf("webhook answered %d: %s", resp.StatusCode, b)
	}
	return out.Response
}

func mustYAML(t *testing.T, v any) []byte {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func outcomes(d policy.Decision) (deny, warn []string) {
	dset, wset := map[string]bool{}, map[string]bool{}
	for _, r := range d.Results {
		switch r.Outcome {
		case policy.Deny:
			dset[r.Rule] = true
		case policy.WarnOutcome:
			wset[r.Rule] = true
		}
	}
	return keys(dset), keys(wset)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func noneIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
