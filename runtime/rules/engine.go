// Package rules loads Falco rules files (lists, macros, rules, exceptions,
// append/override) and evaluates them against runtime events.
//
// Conditions are parsed by a hand-written recursive-descent parser that
// follows libsinsp's grammar, macros and lists are resolved the way Falco's
// rule compiler resolves them, and each rule is compiled once into a tree
// of closures over a field-extractor table. Rules are indexed by event type
// so that an event is only offered to the rules that can match it, and
// evaluation reuses a per-Matcher arena so the hot path does not allocate.
package rules

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/runtime/event"
)

// Priority is a rule's severity, most severe first.
type Priority int

// Falco's priorities.
const (
	PriorityEmergency Priority = iota
	PriorityAlert
	PriorityCritical
	PriorityError
	PriorityWarning
	PriorityNotice
	PriorityInformational
	PriorityDebug
)

var priorityNames = [...]string{"Emergency", "Alert", "Critical", "Error", "Warning", "Notice", "Informational", "Debug"}

func (p Priority) String() string {
	if p < 0 || int(p) >= len(priorityNames) {
		return "Unknown"
	}
	return priorityNames[p]
}

// ParsePriority reads a priority name, case-insensitively ("info" too).
func ParsePriority(s string) (Priority, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "info" {
		return PriorityInformational, true
	}
	for i, n := range priorityNames {
		if strings.ToLower(n) == s {
			return Priority(i), true
		}
	}
	return 0, false
}

// MarshalText writes the priority's name.
func (p Priority) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Rule is a compiled, runnable rule.
type Rule struct {
	Name string
	Desc string
	// Condition is the rule's condition with its exceptions appended.
	Condition string
	Output    string
	Priority  Priority
	Source    string
	Tags      []string
	Enabled   bool

	cond   node
	format *format
	types  typeSet
	fields map[string]bool // the fields the condition and output read
}

// EventTypes returns the event types the rule can match, or nil when it
// can match every type (a rule without an evt.type restriction).
func (r *Rule) EventTypes() []string {
	if r.types.neg {
		return nil
	}
	return r.types.sorted()
}

// SkippedRule is a rule that loaded but cannot run here, and why.
type SkippedRule struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Reason string `json:"reason"`
}

// Ruleset is a compiled set of rules, indexed by event type.
type Ruleset struct {
	// Skipped are rules that need a field or a source bulkhead lacks.
	Skipped []SkippedRule
	// Warnings are Falco-style load warnings (unused macros, ...).
	Warnings []Diagnostic

	all         []*Rule
	hostname    string
	minPriority Priority

	byType map[string][]*Rule
	// other serves event types no rule names: the rules that match all
	// types (or all but some).
	other []*Rule
}

// Rules returns every compiled rule, enabled or not, in load order.
func (rs *Ruleset) Rules() []*Rule { return rs.all }

// Active returns the rules that run: enabled and at least as severe as the
// minimum priority.
func (rs *Ruleset) Active() []*Rule {
	var out []*Rule
	for _, r := range rs.all {
		if rs.active(r) {
			out = append(out, r)
		}
	}
	return out
}

func (rs *Ruleset) active(r *Rule) bool {
	return r.Enabled && r.Priority <= rs.minPriority
}

// index builds the per-event-type rule lists, in load order.
func (rs *Ruleset) index() {
	rs.byType = map[string][]*Rule{}
	rs.other = nil
	named := map[string]bool{}
	for _, r := range rs.all {
		for t := range r.types.names {
			named[t] = true
		}
	}
	for t := range named {
		rs.byType[t] = nil
	}
	for _, r := range rs.all {
		if !rs.active(r) {
			continue
		}
		for t := range named {
			if r.types.has(t) {
				rs.byType[t] = append(rs.byType[t], r)
			}
		}
		if r.types.neg {
			rs.other = append(rs.other, r)
		}
	}
}

// SetEnabled enables or disables the rules whose name is name, or that
// carry the tag when tag is true; it returns how many changed state.
func (rs *Ruleset) SetEnabled(name string, tag bool, enabled bool) int {
	n := 0
	for _, r := range rs.all {
		match := r.Name == name
		if tag {
			match = false
			for _, t := range r.Tags {
				if t == name {
					match = true
				}
			}
		}
		if match && r.Enabled != enabled {
			r.Enabled = enabled
			n++
		}
	}
	rs.index()
	return n
}

// candidates returns the rules an event of type t may match.
func (rs *Ruleset) candidates(t string) []*Rule {
	if rs, ok := rs.byType[t]; ok {
		return rs
	}
	return rs.other
}

// Matcher evaluates events against a Ruleset. It holds per-event scratch
// space, so use one Matcher per goroutine.
type Matcher struct {
	rs      *Ruleset
	c       evalCtx
	matched []*Rule
	// First stops at the first matching rule per event, which is Falco's
	// default (rule_matching: first); otherwise every match is reported.
	First bool
}

// Matcher returns a new matcher over the ruleset.
func (rs *Ruleset) Matcher() *Matcher {
	return &Matcher{rs: rs, c: evalCtx{hostname: rs.hostname, arena: make([]byte, 0, 4096)}}
}

// Match returns the rules that match ev, in load order. The returned slice
// is reused by the next call.
func (m *Matcher) Match(ev *event.Event) []*Rule {
	m.c.reset(ev)
	m.matched = m.matched[:0]
	for _, r := range m.rs.candidates(ev.Type) {
		if r.cond(&m.c) {
			m.matched = append(m.matched, r)
			if m.First {
				break
			}
		}
	}
	return m.matched
}

// Alert is a rule match in Falco's JSON alert shape.
type Alert struct {
	Hostname     string         `json:"hostname"`
	Output       string         `json:"output"`
	Priority     Priority       `json:"priority"`
	Rule         string         `json:"rule"`
	Source       string         `json:"source"`
	Tags         []string       `json:"tags"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
}

// MarshalJSON writes the time with nanoseconds, as Falco does.
func (a Alert) MarshalJSON() ([]byte, error) {
	type plain Alert
	return json.Marshal(struct {
		plain
		Time string `json:"time"`
	}{plain(a), a.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")})
}

// Alert formats the alert for a rule that matched the event last passed to
// Match. It allocates; alerts are rare next to events.
func (m *Matcher) Alert(r *Rule, ev *event.Event) Alert {
	if m.c.ev != ev {
		m.c.reset(ev)
	}
	msg, fields := r.format.render(&m.c)
	// Falco's output (text and JSON alike) is "time: Priority message".
	out := ev.Time.UTC().Format(isoLayout) + ": " + r.Priority.String() + " " + msg
	tags := r.Tags
	if tags == nil {
		tags = []string{}
	}
	return Alert{
		Hostname:     m.rs.hostname,
		Output:       out,
		Priority:     r.Priority,
		Rule:         r.Name,
		Source:       r.Source,
		Tags:         tags,
		Time:         ev.Time,
		OutputFields: fields,
	}
}
