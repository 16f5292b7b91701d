package admission

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/bulkhead-sec/bulkhead/policy"
)

// TestNamespaces: an exempt namespace is allowed with the reason in the
// response's audit annotations (and not even read); an object naming
// another namespace than its request is denied, never judged by the
// request's; one naming none is judged by the request's.
func TestNamespaces(t *testing.T) {
	dir := t.TempDir()
	facts := &policy.Registry{DBPath: filepath.Join(dir, "db")}
	defer facts.Close()
	srv, err := New(Options{PolicyPath: writePolicy(t, dir, "apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission:\n  exemptNamespaces: [kube-system]\nrules:\n  - {name: pss, match: {namespaces: [prod]}, podSecurity: {level: baseline}}\n"), Facts: facts})
	if err != nil {
		t.Fatal(err)
	}
	pod := func(ns string) runtime.RawExtension {
		meta := map[string]any{"name": "p"}
		if ns != "" {
			meta["namespace"] = ns
		}
		b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta,
			"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "ghcr.io/acme/app:1", "securityContext": map[string]any{"privileged": true}}}}})
		return runtime.RawExtension{Raw: b}
	}
	for _, tc := range []struct {
		name, reqNS string
		obj         runtime.RawExtension
		allowed     bool
		want        string
	}{
		{"exempt", "kube-system", pod(""), true, "namespace kube-system is exempt (admission.exemptNamespaces: kube-system): not judged"},
		{"exempt, unreadable", "kube-system", runtime.RawExtension{Raw: []byte(`{"kind":"Pod","spec":"x"}`)}, true, "is exempt"},
		{"judged in the request's namespace", "prod", pod(""), false, `rule "pss"`},
		{"same namespace", "prod", pod("prod"), false, `rule "pss"`},
		{"object elsewhere than the request", "dev", pod("prod"), false, `the object names namespace "prod", the request "dev"`},
		{"object claims an exempt namespace", "prod", pod("kube-system"), false, `names namespace "kube-system"`},
		{"not in scope", "dev", pod(""), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := srv.Review(context.Background(), &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: tc.reqNS, Name: "p", Operation: admissionv1.Create, Object: tc.obj})
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed %v: %+v", resp.Allowed, resp.Result)
			}
			got := resp.AuditAnnotations["exempt"]
			if !tc.allowed {
				got = resp.Result.Message
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
