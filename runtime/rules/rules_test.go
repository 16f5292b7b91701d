package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

func loadStable(t testing.TB) *Ruleset {
	t.Helper()
	rs, err := LoadFiles([]string{filepath.Join("testdata", "falco_rules.yaml")}, WithHostname("node-1"))
	if err != nil {
		t.Fatalf("load stable rules: %v", err)
	}
	return rs
}

// TestStableRuleset: the stable ruleset loads with no error and every rule
// compiles, "Contact K8S API Server From Container" (fd.sip.name, k8s.ns.name)
// included.
func TestStableRuleset(t *testing.T) {
	rs := loadStable(t)
	t.Logf("stable ruleset: %d rules active, %d skipped", len(rs.Active()), len(rs.Skipped))
	for _, s := range rs.Skipped {
		t.Errorf("skipped %q: %s", s.Name, s.Reason)
	}
	if got := len(rs.Active()); got != 25 {
		t.Errorf("%d active rules, want 25", got)
	}
	for _, w := range rs.Warnings {
		if w.Code == WarnUnknownField {
			t.Errorf("warning %v", w)
		}
	}
	for _, r := range rs.Active() {
		if r.EventTypes() == nil {
			t.Errorf("rule %q is not indexed by event type", r.Name)
		}
	}
	if !rs.UsesField("k8s.ns.name") || !rs.UsesField("fd.sip.name") || !rs.UsesField("proc.cmdline") || rs.UsesField("proc.env") {
		t.Errorf("UsesField: k8s.ns.name %v fd.sip.name %v proc.cmdline %v proc.env %v", rs.UsesField("k8s.ns.name"),
			rs.UsesField("fd.sip.name"), rs.UsesField("proc.cmdline"), rs.UsesField("proc.env"))
	}
}

type stableCase struct {
	Name   string          `json:"name"`
	Expect []string        `json:"expect"`
	Event  json.RawMessage `json:"event"`
}

// TestStableEvents replays hand-written events (the --record format)
// through the stable rules and checks exactly which rules fire.
func TestStableEvents(t *testing.T) {
	rs := loadStable(t)
	data, err := os.ReadFile(filepath.Join("testdata", "stable_events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	m := rs.Matcher()
	for i, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var c stableCase
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		evs, err := event.ReadAll(strings.NewReader(string(c.Event)), "fixture")
		if err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v", c.Name, err)
		}
		ev := &evs[0]
		var got []string
		for _, r := range m.Match(ev) {
			got = append(got, r.Name)
			a := m.Alert(r, ev)
			if a.Hostname != "node-1" || a.Rule != r.Name || !strings.Contains(a.Output, ": "+r.Priority.String()+" ") {
				t.Errorf("%s: alert %+v", c.Name, a)
			}
			if strings.Contains(a.Output, "%") {
				t.Errorf("%s: unformatted output %q", c.Name, a.Output)
			}
		}
		sort.Strings(got)
		sort.Strings(c.Expect)
		if strings.Join(got, "|") != strings.Join(c.Expect, "|") {
			t.Errorf("%s: fired %q, want %q", c.Name, got, c.Expect)
		}
	}
}

// TestAlertOutput checks Falco's text rendering, <NA> for missing values
// and output_fields typing on a stable rule.
func TestAlertOutput(t *testing.T) {
	rs := loadStable(t)
	ev := &event.Event{Num: 1, Time: time.Date(2025, 6, 1, 12, 0, 0, 5, time.UTC), Type: "execve",
		Proc: event.Process{Name: "bash", Exe: "/bin/bash", ExePath: "/bin/bash", Args: []string{"-i"}, TTY: 34816},
		User: event.User{UID: 0, Name: "root", LoginUID: -1}, Container: &event.Container{ID: "0f3b6a1c2d4e", Name: "web"}}
	m := rs.Matcher()
	var a *Alert
	for _, r := range m.Match(ev) {
		if r.Name == "Terminal shell in container" {
			al := m.Alert(r, ev)
			a = &al
		}
	}
	if a == nil {
		t.Fatal("Terminal shell in container did not fire")
	}
	want := "2025-06-01T12:00:00.000000005+0000: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=bash proc_exepath=/bin/bash parent=<NA> command=bash -i terminal=34816 exe_flags=<NA>"
	if a.Output != want {
		t.Errorf("output\n got %q\nwant %q", a.Output, want)
	}
	if a.OutputFields["proc.tty"] != int64(34816) || a.OutputFields["proc.pname"] != nil || a.OutputFields["user.name"] != "root" {
		t.Errorf("output_fields %v", a.OutputFields)
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"time":"2025-06-01T12:00:00.000000005Z"`, `"priority":"Notice"`, `"source":"syscall"`, `"proc.pname":null`, `"tags":["T1059","container","maturity_stable","mitre_execution","shell"]`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("alert JSON lacks %s: %s", k, b)
		}
	}
}

func TestMinPriority(t *testing.T) {
	rs, err := LoadFiles([]string{filepath.Join("testdata", "falco_rules.yaml")}, WithMinPriority(PriorityCritical))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs.Active() {
		if r.Priority > PriorityCritical {
			t.Errorf("rule %q (%s) active below the minimum priority", r.Name, r.Priority)
		}
	}
	if len(rs.Active()) == 0 || len(rs.Active()) >= 24 {
		t.Errorf("%d active rules at Critical", len(rs.Active()))
	}
	ev := catWriteEvent()
	ev.Proc.Name, ev.FD.Name, ev.Args[2].Value = "cat", "/etc/shadow", "O_RDONLY"
	if got := rs.Matcher().Match(ev); len(got) != 0 {
		t.Errorf("a Warning rule fired under a Critical minimum: %v", got[0].Name)
	}
	if n := rs.SetEnabled("Drop and execute new binary in container", false, false); n != 1 {
		t.Errorf("SetEnabled changed %d rules", n)
	}
}

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]Priority{"EMERGENCY": PriorityEmergency, "warning": PriorityWarning, "Info": PriorityInformational, "informational": PriorityInformational, "DEBUG": PriorityDebug} {
		if p, ok := ParsePriority(in); !ok || p != want {
			t.Errorf("ParsePriority(%q) = %v, %v", in, p, ok)
		}
	}
	if _, ok := ParsePriority("loud"); ok {
		t.Error("ParsePriority accepted loud")
	}
}

// TestWholeCorpus loads every rules file of the shared corpus when it is
// present (it is not part of the repository).
func TestWholeCorpus(t *testing.T) {
	root := testcorpus.Dir()
	if root == "" {
		t.Skip("../shared/corpus not found")
	}
	for _, dir := range []string{"falco/rules", "falco/plugin-rules"} {
		files, _ := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
		for _, f := range files {
			base := filepath.Base(f)
			if base == "registry.yaml" || base == "audit-policy.yaml" {
				continue // not rules files
			}
			files := []string{f}
			switch base {
			case "k8s_audit_rules_gke.yaml": // appends to the k8s_audit rules
				files = []string{filepath.Join(root, dir, "k8s_audit_rules.yaml"), f}
			case "mitre_checker_falco_rules_test.yaml":
				// A checker fixture whose macro "condition: true" is an
				// undefined macro for Falco as well.
				if _, err := LoadFiles(files); err == nil || !strings.Contains(err.Error(), "Undefined macro 'true'") {
					t.Errorf("%s: want the undefined macro error, got %v", base, err)
				}
				continue
			}
			rs, err := LoadFiles(files)
			if err != nil {
				t.Errorf("%s: %v", base, err)
				continue
			}
			t.Logf("%s/%s: %d active, %d skipped", dir, base, len(rs.Active()), len(rs.Skipped))
		}
	}
}
