package policy

import (
	"context"
	"strings"
	"testing"
)

// TestVulnsOnIncompleteInventory: an image whose package database was left
// out for being over a limit for hostile input is not judged clean by a
// vulnerability rule: the rule could not be checked, so fail-closed denies
// and fail-open warns, naming the file. Other rules are unaffected.
func TestVulnsOnIncompleteInventory(t *testing.T) {
	sc := *demo(t)
	sc.Findings = nil // what a rejected database leaves: no packages, no findings
	sc.Incomplete = []string{"apk: /lib/apk/db/installed: more than 100000 packages in one apk database"}
	for _, tc := range []struct {
		mode    string
		allowed bool
	}{{"closed", false}, {"open", true}} {
		t.Run(tc.mode, func(t *testing.T) {
			f, err := Parse("test.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission: {failurePolicy: "+tc.mode+"}\nrules:\n  - {name: vulns, vulnerabilities: {maxSeverity: CRITICAL}}\n  - {name: secrets, secrets: {}}\n"), "testdata")
			if err != nil {
				t.Fatal(err)
			}
			d := (&Engine{File: f, Facts: &demoFacts{scan: &sc}}).Evaluate(context.Background(), Input{Images: []string{"ghcr.io/acme/app:1"}})
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %s", d.Allowed, tc.allowed, d.Reason())
			}
			var msg string
			for _, r := range d.Results {
				if r.Rule == "vulns" {
					msg = r.Message
				}
				if r.Rule == "secrets" && r.Outcome != Allow {
					t.Errorf("secrets rule: %s", r.Message)
				}
			}
			if !strings.Contains(msg, "could not all be read") || !strings.Contains(msg, "/lib/apk/db/installed") {
				t.Errorf("vulns result: %q", msg)
			}
		})
	}
	// The complete scan passes the same rule.
	clean := sc
	clean.Incomplete = nil
	f, _ := Parse("test.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - {name: vulns, vulnerabilities: {maxSeverity: CRITICAL}}\n"), "testdata")
	if d := (&Engine{File: f, Facts: &demoFacts{scan: &clean}}).Evaluate(context.Background(), Input{Images: []string{"ghcr.io/acme/app:1"}}); !d.Allowed {
		t.Errorf("complete scan without findings: %s", d.Reason())
	}
}
