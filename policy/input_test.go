package policy

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
)

// TestInputFor: the input of a workload takes the object's namespace, else
// the one given; every container's image, init containers included; and
// admission.maxImages. An exempt namespace gives an allow that says why,
// an unknown one is never exempt.
func TestInputFor(t *testing.T) {
	f, err := Parse("p.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission:\n  exemptNamespaces: [kube-system, \"infra-*\", \"*-sandbox\"]\n  maxImages: 7\nrules:\n  - {name: pss, podSecurity: {level: baseline}}\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	const manifest = `apiVersion: v1
kind: Pod
metadata: {name: a, namespace: infra-logs}
spec:
  initContainers: [{name: i, image: ghcr.io/acme/init:1}]
  containers: [{name: c, image: ghcr.io/acme/app:1, securityContext: {privileged: true}}]
---
apiVersion: v1
kind: Pod
metadata: {name: b}
spec:
  containers: [{name: c, image: ghcr.io/acme/app:1, securityContext: {privileged: true}}]
`
	objs, err := kubernetes.ParseBytes("m.yaml", []byte(manifest))
	if err != nil || len(objs) != 2 {
		t.Fatal(objs, err)
	}
	in := f.InputFor(objs[0], "prod")
	if in.Namespace != "infra-logs" || in.Object != objs[0] || in.MaxImages != 7 ||
		!reflect.DeepEqual(in.Images, []string{"ghcr.io/acme/init:1", "ghcr.io/acme/app:1"}) {
		t.Errorf("input %+v", in)
	}
	e := &Engine{File: f, Facts: &demoFacts{}}
	for _, tc := range []struct {
		obj     *kubernetes.Object
		ns      string
		allowed bool
		exempt  string
	}{
		{objs[0], "prod", true, "namespace infra-logs is exempt (admission.exemptNamespaces: infra-*): not judged"},
		{objs[1], "kube-system", true, "namespace kube-system is exempt (admission.exemptNamespaces: kube-system): not judged"},
		{objs[1], "team-sandbox", true, "namespace team-sandbox is exempt (admission.exemptNamespaces: *-sandbox): not judged"},
		{objs[1], "prod", false, ""},
		{objs[1], "kube-systems", false, ""},
		// Unknown namespace: not exempt, whatever the globs.
		{objs[1], "", false, ""},
	} {
		in := f.InputFor(tc.obj, tc.ns)
		d := e.Evaluate(context.Background(), in)
		if d.Allowed != tc.allowed || d.Exempt != tc.exempt || (tc.exempt != "" && len(d.Results) != 0) {
			t.Errorf("%s in %q: %+v", tc.obj.Meta.Name, tc.ns, d)
		}
	}
	// Bare images: the same exemption.
	if d := e.Evaluate(context.Background(), f.ImageInput("kube-system", "ghcr.io/acme/app:1")); !d.Allowed || !strings.Contains(d.Exempt, "kube-system is exempt") {
		t.Errorf("bare image in kube-system: %+v", d)
	}
	star, _ := Parse("p.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission:\n  exemptNamespaces: [\"*\"]\nrules:\n  - {name: pss, podSecurity: {level: baseline}}\n"), ".")
	if star.Exempt("") != "" || star.Exempt("x") == "" {
		t.Errorf("exemptNamespaces [*]: %q %q", star.Exempt(""), star.Exempt("x"))
	}
}

// TestNamespaceExemptionUnknownNamespace: an exemption for some
// namespaces does not cover a workload whose namespace is unknown (the
// gate judging a manifest that names none, without --namespace); one for
// every namespace does.
func TestNamespaceExemptionUnknownNamespace(t *testing.T) {
	obj := pod(t, "testdata/pods/privileged.yaml", "ghcr.io/acme/app:1")
	for _, tc := range []struct {
		exemption string
		ns        string
		allowed   bool
	}{
		{"{rule: pss, namespaces: [ci], owner: o, reason: r, expires: 2999-01-01}", "", false},
		{"{rule: pss, namespaces: [ci], owner: o, reason: r, expires: 2999-01-01}", "ci", true},
		{"{rule: pss, owner: o, reason: r, expires: 2999-01-01}", "", true},
	} {
		f, err := Parse("p.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - {name: pss, podSecurity: {level: baseline}}\nexemptions:\n  - "+tc.exemption+"\n"), ".")
		if err != nil {
			t.Fatal(err)
		}
		d := (&Engine{File: f, Facts: &demoFacts{}}).Evaluate(context.Background(), f.InputFor(obj, tc.ns))
		if d.Allowed != tc.allowed {
			t.Errorf("%s in %q: allowed %v: %s", tc.exemption, tc.ns, d.Allowed, d.Reason())
		}
	}
}
