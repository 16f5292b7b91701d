package policy

import (
	"context"
	"testing"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// Each note of a decision carries its code, the policy file and the line
// of the rule or exemption it is about: the gate and other readers tell
// exemptions, warn rules and notes apart by code, not by text.
func TestDecisionDiagnosticCodes(t *testing.T) {
	sc := demo(t)
	const head = "apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission:\n  exemptNamespaces: [kube-system]\n  namespaces: [{match: dev-*, failurePolicy: open}]\n"
	for _, tc := range []struct {
		name, policy, ns, pod, image string
		code                         diag.Code
		sev                          diag.Severity
		line                         int // of the rule or exemption; 0: no file location
		warning                      bool
	}{
		{name: "warn rule", policy: "rules:\n  - {name: no-critical, mode: warn, vulnerabilities: {}}\n", image: "ghcr.io/acme/app:1",
			code: diag.PolicyWarnRule, sev: diag.Warning, line: 7, warning: true},
		{name: "unchecked under fail-open", policy: "rules:\n  - {name: signed, signatures: {keys: [release.pub]}}\n", ns: "dev-bob", image: "unreachable.example/app:1",
			code: diag.PolicyUnchecked, sev: diag.Warning, line: 7, warning: true},
		{name: "exempted", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\nexemptions:\n  - {rule: pss, namespaces: [ci], owner: ci-team, reason: builds need it, expires: 2999-01-01}\n", ns: "ci", pod: "testdata/pods/privileged.yaml",
			code: diag.PolicyExempt, sev: diag.Info, line: 9},
		{name: "expired exemption", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\nexemptions:\n  - {rule: pss, owner: ci-team, reason: builds need it, expires: 2020-01-01}\n", pod: "testdata/pods/privileged.yaml",
			code: diag.PolicyExemptionExpired, sev: diag.Warning, line: 9, warning: true},
		{name: "exempt namespace", policy: "rules:\n  - {name: pss, podSecurity: {level: baseline}}\n", ns: "kube-system", pod: "testdata/pods/privileged.yaml",
			code: diag.PolicyExemptNamespace, sev: diag.Info},
		{name: "tag next to digest", policy: "rules:\n  - {name: pinned, digestPinning: {}}\n", image: "ghcr.io/acme/app:1@sha256:" + sixtyFour,
			code: diag.PolicyTagIgnored, sev: diag.Warning, warning: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("test.yaml", []byte(head+tc.policy), "testdata")
			if err != nil {
				t.Fatal(err)
			}
			e := &Engine{File: f, Facts: &demoFacts{scan: sc}}
			in := Input{Namespace: tc.ns}
			if tc.pod != "" {
				in.Object = pod(t, tc.pod, "ghcr.io/acme/app:1")
				in.Images = images(in.Object)
			} else {
				in.Images = []string{tc.image}
			}
			d := e.Evaluate(context.Background(), in)
			var warnings []string
			found := false
			for _, x := range d.Diagnostics {
				if x.Severity != diag.Info {
					warnings = append(warnings, x.Message)
				}
				if x.Code != tc.code {
					continue
				}
				found = true
				if x.Severity != tc.sev {
					t.Errorf("%s: severity %s, want %s", x.Code, x.Severity, tc.sev)
				}
				if tc.line > 0 && (x.Location == nil || x.Location.Path != "test.yaml" || x.Location.Line != tc.line) {
					t.Errorf("%s at %+v, want test.yaml:%d", x.Code, x.Location, tc.line)
				}
			}
			if !found {
				t.Fatalf("no %s among %+v", tc.code, d.Diagnostics)
			}
			if len(warnings) != len(d.Warnings) {
				t.Errorf("warnings %q, want the warning diagnostics' messages %q", d.Warnings, warnings)
			}
			for i := range warnings {
				if warnings[i] != d.Warnings[i] {
					t.Errorf("warning %d: %q, diagnostic %q", i, d.Warnings[i], warnings[i])
				}
			}
			if got := len(d.Warnings) > 0; got != tc.warning {
				t.Errorf("warnings %q", d.Warnings)
			}
		})
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
