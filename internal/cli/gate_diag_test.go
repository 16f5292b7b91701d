package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/policy"
	"github.com/bulkhead-sec/bulkhead/report"
)

// The gate summary tells exemptions, warn results and notes apart by the
// diagnostics' codes, not by their text: an exempt namespace is EXEMPT
// whatever its wording, a note is a NOTE even when its text is that of a
// warn result, and an applied exemption (policy.exempt) is never a NOTE.
func TestGateSummaryByCode(t *testing.T) {
	const same = `rule "signed" (signatures): ghcr.io/acme/app:1: passed`
	targets := []*gateTarget{
		{Name: "Pod/sys", Decision: policy.Decision{Allowed: true, Diagnostics: []diag.Diagnostic{
			diag.New(diag.PolicyExemptNamespace, diag.Info, "not judged here (worded freely)"),
		}}},
		{Name: "Pod/app", Decision: policy.Decision{Allowed: true,
			Results: []policy.Result{
				{Rule: "limits", Outcome: policy.WarnOutcome, Message: same},
				{Rule: "pss", Outcome: policy.Allow, Message: `rule "pss": privileged [exempted until 2999-01-01 by ci: builds]`, Exempted: &policy.Exemption{Rule: "pss"}},
			},
			Diagnostics: []diag.Diagnostic{
				diag.New(diag.PolicyTlogIgnored, diag.Warning, same),
				diag.New(diag.PolicyWarnRule, diag.Warning, same),
				diag.New(diag.PolicyExempt, diag.Info, `rule "pss": privileged [exempted until 2999-01-01 by ci: builds]`),
			}}},
	}
	var b bytes.Buffer
	writeGateSummary(&b, &policy.File{Source: "policy.yaml"}, targets)
	out := b.String()
	for _, want := range []string{
		"ALLOWED  Pod/sys\n  EXEMPT not judged here (worded freely)\n",
		"  WARN  " + same + "\n",
		"  EXEMPT rule \"pss\": privileged",
		"  NOTE  " + same + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "NOTE"); n != 1 {
		t.Errorf("%d NOTE lines, want 1:\n%s", n, out)
	}

	// The SARIF log has the notes and the exemptions as notifications; the
	// warn result is a result, not a notification too.
	b.Reset()
	if err := report.SARIF(&b, gateResult(&policy.File{Source: "policy.yaml"}, targets), "test"); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Invocations []struct {
				Notifications []struct {
					Descriptor struct {
						ID string `json:"id"`
					} `json:"descriptor"`
				} `json:"toolExecutionNotifications"`
			} `json:"invocations"`
			Results []json.RawMessage `json:"results"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range doc.Runs[0].Invocations[0].Notifications {
		ids = append(ids, n.Descriptor.ID)
	}
	if got := strings.Join(ids, " "); got != "policy.exempt-namespace policy.tlog-ignored policy.exempt" || len(doc.Runs[0].Results) != 1 {
		t.Errorf("notifications %s, %d results", got, len(doc.Runs[0].Results))
	}
}

// Commands print diagnostics through the one printer: severity, message
// and code on one line.
func TestCommandPrintsCodes(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/notes.txt"
	if err := writeTestFile(p, "just notes\n"); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := Main([]string{"config", "-f", "json", p}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "warning: " + p + ": not a Dockerfile or manifest by its name and content; give --type "
	if !strings.Contains(errb.String(), want) || !strings.Contains(errb.String(), "(secrets only) [config.unknown-kind]\n") {
		t.Errorf("stderr %q", errb.String())
	}
	var doc struct {
		Diagnostics []diag.Diagnostic `json:"diagnostics"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil || len(doc.Diagnostics) != 1 || doc.Diagnostics[0].Code != diag.ConfigUnknown || doc.Diagnostics[0].Location.Path != p {
		t.Errorf("JSON diagnostics %+v (%v)", doc.Diagnostics, err)
	}
}

func writeTestFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
