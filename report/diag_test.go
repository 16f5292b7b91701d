package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// diagResult is sampleResult with coded diagnostics in the inventory and
// the result, besides the inventory's uncoded warning.
func diagResult() (*Result, []diag.Diagnostic) {
	r := sampleResult()
	r.Inventory.Warnings = append(r.Inventory.Warnings, "rpm: /var/lib/rpm/Packages: unsupported rpmdb format, skipped") // decoded, no code
	walkD := diag.Warnf(diag.WalkAbsoluteName, `layer 0 (sha256:feed): entry "/etc/passwd" is an absolute name; read as /etc/passwd inside the image`).
		At(diag.Location{Layer: "layer 0 (sha256:feed)", Path: "/etc/passwd"})
	staleD := diag.Warnf(diag.VulnDBStale, "vulnerability data for npm is 9 days old").At(diag.Location{Object: "npm"})
	ignoreD := diag.Warnf(diag.IgnoreExpired, ".bulkheadignore:3: ignore entry for CVE-1 expired").At(diag.Location{Path: ".bulkheadignore", Line: 3, Object: "CVE-1"})
	infoD := diag.Infof(diag.PolicyExempt, "rule \"pss\": exempted")
	r.Inventory.Diagnose(walkD)
	r.Diagnose(staleD, ignoreD, infoD)
	return r, []diag.Diagnostic{walkD, staleD, ignoreD, infoD}
}

// The JSON report keeps "warnings" (every message, as before) and adds
// "diagnostics": the coded ones with code, severity and location.
func TestJSONDiagnostics(t *testing.T) {
	r, coded := diagResult()
	legacy := r.Inventory.Warnings[0] // sbomtest's uncoded rpm warning
	var buf bytes.Buffer
	if err := ResultJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Warnings    []string          `json:"warnings"`
		Diagnostics []diag.Diagnostic `json:"diagnostics"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	wantWarnings := append([]string{legacy}, diag.Messages(coded[:3])...) // not the note (info)
	if !reflect.DeepEqual(doc.Warnings, wantWarnings) {
		t.Errorf("warnings %q, want %q", doc.Warnings, wantWarnings)
	}
	if !reflect.DeepEqual(doc.Diagnostics, coded) {
		t.Errorf("diagnostics %+v, want %+v", doc.Diagnostics, coded)
	}
	var raw map[string]any
	json.Unmarshal(buf.Bytes(), &raw)
	first := raw["diagnostics"].([]any)[0].(map[string]any)
	if first["code"] != "walk.absolute-name" || first["severity"] != "warning" || first["location"].(map[string]any)["path"] != "/etc/passwd" {
		t.Errorf("first diagnostic as written: %v", first)
	}
}

// The SARIF log carries every diagnostic, the uncoded warning too, as a
// tool execution notification of the run's invocation, with its level and
// a descriptor naming its code among the driver's notifications.
func TestSARIFNotifications(t *testing.T) {
	r, coded := diagResult()
	legacy := r.Inventory.Warnings[0]
	var buf bytes.Buffer
	if err := SARIF(&buf, r, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	schema := sbomtest.Schema(t, "testdata/sarif", "sarif-schema-2.1.0.json")
	if err := sbomtest.Validate(schema, buf.Bytes()); err != nil {
		t.Fatalf("SARIF 2.1.0 schema: %v\n%s", err, buf.String())
	}
	type ref struct {
		ID    string `json:"id"`
		Index *int   `json:"index"`
	}
	var doc struct {
		Runs []struct {
			Tool struct {
				Driver struct {
					Notifications []struct {
						ID string `json:"id"`
					} `json:"notifications"`
				} `json:"driver"`
			} `json:"tool"`
			Invocations []struct {
				ExecutionSuccessful *bool `json:"executionSuccessful"`
				Notifications       []struct {
					Level      string `json:"level"`
					Descriptor ref    `json:"descriptor"`
					Message    struct {
						Text string `json:"text"`
					} `json:"message"`
					Locations []struct {
						PhysicalLocation *struct {
							ArtifactLocation struct {
								URI string `json:"uri"`
							} `json:"artifactLocation"`
							Region *struct {
								StartLine int `json:"startLine"`
							} `json:"region"`
						} `json:"physicalLocation"`
						LogicalLocations []struct {
							FullyQualifiedName string `json:"fullyQualifiedName"`
						} `json:"logicalLocations"`
					} `json:"locations"`
				} `json:"toolExecutionNotifications"`
			} `json:"invocations"`
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	run := doc.Runs[0]
	if len(run.Results) != 2 || len(run.Invocations) != 1 || run.Invocations[0].ExecutionSuccessful == nil || !*run.Invocations[0].ExecutionSuccessful {
		t.Fatalf("%d results, invocations %+v", len(run.Results), run.Invocations)
	}
	ns := run.Invocations[0].Notifications
	want := []struct {
		code  diag.Code
		level string
		msg   string
	}{
		{diag.WalkAbsoluteName, "warning", coded[0].Message},
		{diag.Unclassified, "warning", legacy},
		{diag.VulnDBStale, "warning", coded[1].Message},
		{diag.IgnoreExpired, "warning", coded[2].Message},
		{diag.PolicyExempt, "note", coded[3].Message},
	}
	if len(ns) != len(want) {
		t.Fatalf("%d notifications, want %d: %s", len(ns), len(want), buf.String())
	}
	for i, w := range want {
		n := ns[i]
		if n.Descriptor.ID != string(w.code) || n.Level != w.level || n.Message.Text != w.msg {
			t.Errorf("notification %d: %s %s %q, want %s %s %q", i, n.Descriptor.ID, n.Level, n.Message.Text, w.code, w.level, w.msg)
		}
		if n.Descriptor.Index == nil || run.Tool.Driver.Notifications[*n.Descriptor.Index].ID != string(w.code) {
			t.Errorf("notification %d: descriptor %+v does not index %s in the driver's notifications", i, n.Descriptor, w.code)
		}
	}
	if l := ns[0].Locations; len(l) != 1 || l[0].PhysicalLocation == nil || l[0].PhysicalLocation.ArtifactLocation.URI != "etc/passwd" || l[0].LogicalLocations[0].FullyQualifiedName != "layer layer 0 (sha256:feed)" {
		t.Errorf("walk notification location %+v", l)
	}
	if l := ns[3].Locations; len(l) != 1 || l[0].PhysicalLocation == nil || l[0].PhysicalLocation.Region == nil || l[0].PhysicalLocation.Region.StartLine != 3 {
		t.Errorf("ignore notification location %+v", l)
	}
}
