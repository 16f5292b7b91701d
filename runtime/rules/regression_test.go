package rules

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
	yaml "go.yaml.in/yaml/v3"
)

// falcoCase is one entry of Falco 0.33.1's falco_tests*.yaml.
type falcoCase struct {
	RulesFile         any              `yaml:"rules_file"`
	ValidateRulesFile any              `yaml:"validate_rules_file"`
	ExitStatus        *int             `yaml:"exit_status"`
	ValidateErrors    []falcoDiag      `yaml:"validate_errors"`
	ValidateWarnings  []falcoDiag      `yaml:"validate_warnings"`
	ValidateOK        []string         `yaml:"validate_ok"`
	ConfFile          string           `yaml:"conf_file"`
	TraceFile         string           `yaml:"trace_file"`
	Detect            *bool            `yaml:"detect"`
	DetectLevel       any              `yaml:"detect_level"`
	Priority          string           `yaml:"priority"`
	DisabledRules     []string         `yaml:"disabled_rules"`
	DisableTags       []string         `yaml:"disable_tags"`
	RunTags           []string         `yaml:"run_tags"`
	StdoutContains    any              `yaml:"stdout_contains"`
	RulesEvents       []map[string]any `yaml:"rules_events"`
	JSONOutput        bool             `yaml:"json_output"`
}

type falcoDiag struct {
	ItemType        string `yaml:"item_type"`
	ItemName        string `yaml:"item_name"`
	Code            string `yaml:"code"`
	Message         string `yaml:"message"`
	MessageContains string `yaml:"message_contains"`
}

func strList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func loadFalcoCases(t *testing.T, file string) map[string]falcoCase {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		TraceFiles map[string]falcoCase `yaml:"trace_files"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return doc.TraceFiles
}

// Where bulkhead's message differs from Falco 0.33.1's, on purpose. The
// error still happens, with the same code, at the same item.
var messageDivergence = map[string]string{
	// 0.33.1 tried the value as a number only; current Falco (and
	// bulkhead) accept semver strings and say why the value is not one.
	"invalid_engine_version_not_number": "Unable to parse engine version 'not-a-number' as a semver string",
	// yaml-cpp and yaml.v3 word parse errors differently.
	"invalid_yaml_parse_error": "yaml:",
}

// Falco 0.33.1 gave up on event types ("all") whenever a negated check
// came before an evt.type check or an or followed; current Falco
// (libsinsp's ppm_event_codes) and bulkhead compute the exact set: and
// intersects, or unites, not complements, other fields match every type.
// Both are sound for indexing; these are the exact sets.
var modernEvttypes = map[string][]string{
	"not_before_trailing_evttype":          {"execve", "open"},
	"not_equals_before_trailing_evttype":   {"execve", "open"},
	"not_equals_before_in":                 {"connect", "execve", "open"},
	"not_before_in":                        {"connect", "execve", "open"},
	"not_in_before_in":                     {"connect", "execve", "open"},
	"leading_in_not_equals_before_evttype": {"connect", "execve", "open"},
	"not_equals_before_evttype":            {"execve"},
	"not_equals_before_in_evttype":         {"execve", "open"},
	"not_before_evttype":                   {"execve"},
	"not_before_evttype_using_in":          {"execve", "open"},
}

// Codes that changed name between 0.33.1 and current Falco.
var codeAliases = map[string][]string{
	"LOAD_UNKNOWN_FIELD": {WarnUnknownFilter, WarnUnknownField},
	// 0.33.1 reported a failed engine-version parse as a YAML validation
	// error; bulkhead reports it as one too.
}

// TestFalco033Regression loads every rules file of Falco 0.33.1's
// regression suite and checks that it loads or fails as the suite says,
// with the same error code and message, and the warnings it expects.
func TestFalco033Regression(t *testing.T) {
	dir := filepath.Join("testdata", "falco-0.33.1")
	checked := 0
	for _, suite := range []string{"falco_tests.yaml", "falco_tests_exceptions.yaml"} {
		cases := loadFalcoCases(t, filepath.Join(dir, suite))
		names := make([]string, 0, len(cases))
		for n := range cases {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, name := range names {
			tc := cases[name]
			files := strList(tc.ValidateRulesFile)
			if len(files) == 0 {
				files = strList(tc.RulesFile)
			}
			// Cases about the CLI, falco.yaml or drop handling are Falco's
			// daemon, not its rule loader.
			if len(files) == 0 || tc.ConfFile != "" || (tc.ExitStatus != nil && *tc.ExitStatus == 1 && len(tc.ValidateErrors) == 0) {
				continue
			}
			if missing := missingFiles(dir, files); missing != "" {
				continue // traces-positive and plugin cases reference files outside the suite copy
			}
			checked++
			t.Run(name, func(t *testing.T) { runFalcoCase(t, dir, name, tc, files) })
		}
	}
	if checked < 60 {
		t.Fatalf("only %d regression cases ran; the suite copy is incomplete", checked)
	}
}

func missingFiles(dir string, files []string) string {
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return f
		}
	}
	return ""
}

func runFalcoCase(t *testing.T, dir, name string, tc falcoCase, files []string) {
	l := NewLoader(WithHostname("test-falco-hostname"))
	var rs *Ruleset
	var lerr error
	for i, f := range files {
		err := l.LoadFile(filepath.Join(dir, f))
		if err == nil {
			rs, err = l.Ruleset()
		}
		last := i == len(files)-1
		okExpected := len(tc.ValidateErrors) == 0 || !last
		for _, ok := range tc.ValidateOK {
			if filepath.Base(f) == ok {
				okExpected = true
			}
		}
		if okExpected && err != nil {
			t.Fatalf("%s: want load ok, got %v", f, err)
		}
		if !okExpected && err == nil {
			t.Fatalf("%s: want a load error %+v, loaded fine", f, tc.ValidateErrors)
		}
		lerr = err
		if err != nil {
			break
		}
	}
	if len(tc.ValidateErrors) > 0 {
		want := tc.ValidateErrors[0]
		le, ok := lerr.(*LoadError)
		if !ok {
			t.Fatalf("error is %T, want *LoadError: %v", lerr, lerr)
		}
		if le.Code != want.Code {
			t.Errorf("code %s, want %s (%v)", le.Code, want.Code, le)
		}
		msg := want.Message
		if want.MessageContains != "" {
			msg = want.MessageContains
		}
		if d, ok := messageDivergence[name]; ok {
			msg = d
		}
		if !strings.Contains(le.Message, msg) {
			t.Errorf("message %q, want it to contain %q", le.Message, msg)
		}
		if want.ItemName != "" && le.ItemName != want.ItemName {
			t.Errorf("item %q, want %q", le.ItemName, want.ItemName)
		}
		if le.File == "" || (le.Line == 0 && le.Code != ErrYAMLParse) {
			t.Errorf("error has no location: %+v", le.Diagnostic)
		}
		return
	}
	for _, w := range tc.ValidateWarnings {
		if !hasWarning(rs.Warnings, w) {
			t.Errorf("missing warning %+v; got %v", w, rs.Warnings)
		}
	}
	for _, re := range tc.RulesEvents {
		for rule, v := range re {
			want := strList(v)
			if m, ok := modernEvttypes[rule]; ok {
				want = m
			}
			checkRuleEvents(t, rs, rule, want)
		}
	}
	checkCatWrite(t, name, tc, rs)
}

func hasWarning(ws []Diagnostic, w falcoDiag) bool {
	codes := []string{w.Code}
	if a, ok := codeAliases[w.Code]; ok {
		codes = a
	}
	for _, d := range ws {
		if d.ItemName != w.ItemName {
			continue
		}
		for _, c := range codes {
			if d.Code == c && (strings.Contains(d.Message, w.Message) || c != w.Code) {
				return true
			}
		}
	}
	return false
}

func checkRuleEvents(t *testing.T, rs *Ruleset, rule string, want []string) {
	t.Helper()
	for _, r := range rs.Rules() {
		if r.Name != rule {
			continue
		}
		got := r.EventTypes()
		if len(want) == 1 && want[0] == "all" {
			if got != nil {
				t.Errorf("rule %s: event types %v, want all", rule, got)
			}
			return
		}
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("rule %s: event types %v, want %v", rule, got, want)
		}
		return
	}
	t.Errorf("rule %s not compiled", rule)
}

// catWriteEvents stands in for trace_files/cat_write.scap: `cat /dev/null`
// run from bash, opening /dev/null, at the capture's timestamp.
func catWriteEvent() *event.Event {
	return &event.Event{
		Time: time.Date(2016, 8, 4, 16, 17, 57, 881781397, time.UTC),
		Type: "open",
		Res:  3,
		Args: event.Args{{Name: "fd", Value: "3"}, {Name: "name", Value: "/dev/null"}, {Name: "flags", Value: "O_WRONLY|O_CREAT|O_TRUNC"}, {Name: "mode", Value: "0666"}},
		Proc: event.Process{PID: 2, Name: "cat", Exe: "cat", ExePath: "/bin/cat", Args: []string{"/dev/null"},
			Ancestors: []event.Ancestor{{PID: 1, Name: "bash", Exe: "bash", ExePath: "/bin/bash"}}},
		User: event.User{UID: 0, Name: "root", LoginUID: -1},
		FD:   &event.FD{Num: 3, Type: event.FDFile, Name: "/dev/null"},
	}
}

// checkCatWrite replays the cat_write event through cases that only
// depend on the rules (not on CLI switches) and checks detect and output.
func checkCatWrite(t *testing.T, name string, tc falcoCase, rs *Ruleset) {
	// time_iso_8601 checks the last of the trace's 8 opens; we replay one.
	if tc.TraceFile != "trace_files/cat_write.scap" || tc.Detect == nil || name == "time_iso_8601" ||
		len(tc.DisabledRules)+len(tc.DisableTags)+len(tc.RunTags) > 0 {
		return
	}
	if tc.Priority != "" {
		p, _ := ParsePriority(tc.Priority)
		rs.minPriority = p
		rs.index()
	}
	m := rs.Matcher()
	ev := catWriteEvent()
	matched := m.Match(ev)
	fired := false
	var alerts []Alert
	for _, r := range matched {
		if levels := strList(tc.DetectLevel); len(levels) > 0 {
			ok := false
			for _, l := range levels {
				lvl, _ := ParsePriority(l)
				ok = ok || r.Priority == lvl
			}
			if !ok {
				continue
			}
		}
		fired = true
		alerts = append(alerts, m.Alert(r, ev))
	}
	if fired != *tc.Detect {
		t.Fatalf("detect = %v, want %v (matched %d rules)", fired, *tc.Detect, len(matched))
	}
	for _, pat := range strList(tc.StdoutContains) {
		if strings.HasPrefix(pat, "^(?!") { // negative lookahead: about json_output switches
			continue
		}
		re := regexp.MustCompile(pat)
		ok := false
		for _, a := range alerts {
			text := a.Output
			if tc.JSONOutput {
				b, _ := json.Marshal(a)
				text = string(b)
			}
			ok = ok || re.MatchString(text)
		}
		if !ok {
			t.Errorf("no alert output matches %q: %+v", pat, alerts)
		}
	}
}

// TestJSONAlertShape compares a bulkhead alert with Falco 0.33.1's own
// JSON output for the same rule and event.
func TestJSONAlertShape(t *testing.T) {
	dir := filepath.Join("testdata", "falco-0.33.1")
	rs, err := LoadFiles([]string{filepath.Join(dir, "rules", "single_rule_with_tags.yaml")}, WithHostname("test-falco-hostname"))
	if err != nil {
		t.Fatal(err)
	}
	m := rs.Matcher()
	ev := catWriteEvent()
	matched := m.Match(ev)
	if len(matched) != 1 {
		t.Fatalf("matched %d rules, want 1", len(matched))
	}
	got, err := json.Marshal(m.Alert(matched[0], ev))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "output_files", "single_rule_with_cat_write.json"))
	if err != nil {
		t.Fatal(err)
	}
	first := strings.SplitN(string(data), "\n", 2)[0]
	var want, have map[string]any
	if err := json.Unmarshal([]byte(first), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(got, &have); err != nil {
		t.Fatal(err)
	}
	// Falco 0.33.1 also lists the time field of its output prefix among
	// the output fields; bulkhead lists the rule's own fields only.
	delete(want["output_fields"].(map[string]any), "evt.time.iso8601")
	wb, _ := json.Marshal(want)
	hb, _ := json.Marshal(have)
	if string(wb) != string(hb) {
		t.Errorf("alert\n got %s\nwant %s", hb, wb)
	}
}
