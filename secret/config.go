package secret

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// ConfigString is one string of an image's configuration (or of its
// manifest's or index's annotations): what the build wrote, which the
// report repeats (history lines, labels) and which can carry a secret
// (`RUN echo $TOKEN`, `ARG GITHUB_TOKEN=...`, a label or ENV value).
type ConfigString struct {
	// Where names the field: "config:history[3].created_by",
	// "config:labels.KEY", "config:env.NAME", "manifest:annotations.KEY".
	Where string
	// Name is the variable, label or annotation key of a named value (the
	// keyword rules see "NAME=value"); empty for free text.
	Name  string
	Value string
	// History is the index of the history entry the string belongs to, -1
	// for the rest.
	History int
}

// ConfigStrings lists every string of an image config, plus the manifest's
// and the index's annotations when the caller has them (nil otherwise), in
// a stable order.
func ConfigStrings(cfg *v1.ConfigFile, manifestAnnotations, indexAnnotations map[string]string) []ConfigString {
	var out []ConfigString
	text := func(where, v string, hist int) {
		if strings.TrimSpace(v) != "" {
			out = append(out, ConfigString{Where: where, Value: v, History: hist})
		}
	}
	named := func(prefix string, m map[string]string) {
		for _, k := range sortedKeys(m) {
			out = append(out, ConfigString{Where: prefix + k, Name: k, Value: m[k], History: -1})
		}
	}
	if cfg != nil {
		text("config:author", cfg.Author, -1)
		for i, h := range cfg.History {
			text(fmt.Sprintf("config:history[%d].created_by", i), h.CreatedBy, i)
			text(fmt.Sprintf("config:history[%d].comment", i), h.Comment, i)
			text(fmt.Sprintf("config:history[%d].author", i), h.Author, i)
		}
		c := cfg.Config
		text("config:user", c.User, -1)
		text("config:entrypoint", strings.Join(c.Entrypoint, " "), -1)
		text("config:cmd", strings.Join(c.Cmd, " "), -1)
		text("config:shell", strings.Join(c.Shell, " "), -1)
		text("config:workingDir", c.WorkingDir, -1)
		text("config:hostname", c.Hostname, -1)
		text("config:domainname", c.Domainname, -1)
		if c.Healthcheck != nil {
			text("config:healthcheck", strings.Join(c.Healthcheck.Test, " "), -1)
		}
		for i, ob := range c.OnBuild {
			text(fmt.Sprintf("config:onbuild[%d]", i), ob, -1)
		}
		for _, kv := range c.Env {
			k, v, _ := strings.Cut(kv, "=")
			out = append(out, ConfigString{Where: "config:env." + k, Name: k, Value: v, History: -1})
		}
		named("config:labels.", c.Labels)
	}
	named("manifest:annotations.", manifestAnnotations)
	named("index:annotations.", indexAnnotations)
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ValueMatches finds the secrets in one configuration string: free text
// (name empty) is scanned as it is; a named value (an ENV variable, a
// label, an annotation) is scanned as "name=value", which lets the keyword
// rules see "PASSWORD=...", and the generic rule counts only when the name
// is credential-like (SensitiveName), so that a build ID or a checksum
// under an ordinary name is not taken for a secret. Matches lying in the
// name are dropped. The offsets of the returned matches are in value.
func (s *Scanner) ValueMatches(name, value string) []Match {
	var out []Match
	if name == "" {
		out = s.Matches([]byte(value))
	} else {
		off := len(name) + 1
		for _, m := range s.Matches([]byte(name + "=" + value)) {
			if m.start < off {
				continue // the match lies in the name, not the value
			}
			if m.Rule.ID == "generic-secret" && !SensitiveName(name) {
				continue
			}
			m.start -= off
			m.end -= off
			out = append(out, m)
		}
	}
	// A literal value given to a variable named for a credential (ENV
	// DB_PASSWORD=..., a build argument "|1 API_TOKEN=..." in a history
	// line) is one, whatever its entropy; placeholders are not reported.
	for _, a := range assignments(name, value) {
		if placeholder(a.value) || len(a.value) < 4 || covered(out, a.start, a.end) {
			continue
		}
		out = append(out, Match{Rule: &assignmentRule, Title: assignmentRule.Title, Redacted: Redact(a.value), start: a.start, end: a.end})
	}
	return out
}

// assignmentRule reports a credential-named variable set to a literal.
var assignmentRule = Rule{ID: "credential-assignment", Title: "Credential-named variable set to a literal value", Severity: finding.Medium}

// assignRe finds NAME=value assignments in a configuration line: build
// arguments ("|2 A=1 B=2 /bin/sh -c ..."), ENV and ARG instructions, shell
// assignments and exports.
var assignRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?:^|[\s|;&("'])([A-Za-z_][A-Za-z0-9_.\-]*)=("[^"]*"|'[^']*'|[^\s;|)"']+)`)
})

type assignment struct {
	value      string
	start, end int
}

// assignments returns the literal values given to credential-named
// variables: the whole value of a named configuration string (an ENV
// variable, a label), or each NAME=value in free text.
func assignments(name, value string) []assignment {
	if name != "" {
		if SensitiveName(name) && literal(value) {
			return []assignment{{value, 0, len(value)}}
		}
		return nil
	}
	if !strings.Contains(value, "=") {
		return nil
	}
	var out []assignment
	for _, m := range assignRe().FindAllStringSubmatchIndex(value, -1) {
		if !SensitiveName(value[m[2]:m[3]]) {
			continue
		}
		start, end := m[4], m[5]
		if end-start >= 2 && (value[start] == '"' || value[start] == '\'') {
			start, end = start+1, end-1
		}
		if v := value[start:end]; literal(v) {
			out = append(out, assignment{v, start, end})
		}
	}
	return out
}

// literal: a value, not a reference to one ($VAR, ${VAR}), a path, an
// already redacted value or a boolean.
func literal(v string) bool {
	t := strings.TrimSpace(v)
	if t == "" || strings.HasPrefix(t, "$") || strings.HasPrefix(t, "/") || strings.Contains(t, "*****") {
		return false
	}
	switch strings.ToLower(t) {
	case "true", "false", "yes", "no", "on", "off", "0", "1":
		return false
	}
	return true
}

func covered(ms []Match, start, end int) bool {
	for _, m := range ms {
		if m.start < end && start < m.end {
			return true
		}
	}
	return false
}

// RedactValue returns a configuration string with every secret the
// built-in rules find in it (ValueMatches, with the same name semantics)
// replaced by its redacted form (Redact: a short prefix and "*****"). It
// is the one redactor of every string bulkhead takes from an image's
// configuration into a report: history lines, labels, the user, tags from
// annotations. A private key is hidden whole, to its END line (or to the
// end of the string).
func RedactValue(name, value string) string {
	if value == "" {
		return value
	}
	ms := Default().ValueMatches(name, value)
	// Redaction hides more than is reported: a credential-named variable's
	// literal value even when it looks like a placeholder.
	for _, a := range assignments(name, value) {
		if !covered(ms, a.start, a.end) {
			ms = append(ms, Match{Rule: &assignmentRule, start: a.start, end: a.end})
		}
	}
	if len(ms) == 0 {
		return value
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].start < ms[j].start })
	var b strings.Builder
	last := 0
	for _, m := range ms {
		start, end := m.start, m.end
		if start < last {
			continue // overlaps what was already hidden
		}
		if m.Rule.multiline() {
			end = keyEnd(value, start)
		}
		b.WriteString(value[last:start])
		b.WriteString(Redact(value[start:end]))
		last = end
	}
	b.WriteString(value[last:])
	return b.String()
}

// keyEnd is where a PEM private key that starts at start ends: past its
// "-----END ... PRIVATE KEY-----" line, or the end of s.
func keyEnd(s string, start int) int {
	i := strings.Index(s[start:], "-----END")
	if i < 0 {
		return len(s)
	}
	j := strings.Index(s[start+i+len("-----END"):], "-----")
	if j < 0 {
		return len(s)
	}
	return start + i + len("-----END") + j + len("-----")
}

// RedactMap returns a copy of a label or annotation map with each value
// passed through RedactValue (and each key too, as free text); nil for nil.
func RedactMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[RedactValue("", k)] = RedactValue(k, v)
	}
	return out
}

// ScanConfig reports the secrets in an image's configuration strings (see
// ConfigStrings) as findings located at the field ("config:labels.KEY");
// target names the image. The allow-list's rules and value regexes apply;
// its paths do not (these are not files). A history entry's finding
// carries the entry's layer when layerOf knows it.
func (s *Scanner) ScanConfig(strs []ConfigString, target string, layerOf func(history int) *inventory.Layer) []finding.Finding {
	var out []finding.Finding
	for _, cs := range strs {
		for _, m := range s.ValueMatches(cs.Name, cs.Value) {
			f := NewFinding(cs.Where, m)
			if target != "" {
				f.Target = target
			}
			f.Description = fmt.Sprintf("%s in the image %s: %s", m.Title, fieldWhat(cs), m.Redacted)
			f.Fix = "Remove the secret from the image configuration and rotate it: anyone who can pull the image can read its config and history. Pass build secrets with `RUN --mount=type=secret` and runtime secrets from a secret store, never as ARG, ENV or LABEL values."
			if cs.History >= 0 && layerOf != nil {
				f.Location.Layer = layerOf(cs.History)
			}
			out = append(out, f)
		}
	}
	return out
}

// fieldWhat says in words where a configuration string is.
func fieldWhat(cs ConfigString) string {
	switch {
	case strings.HasPrefix(cs.Where, "config:env."):
		return "config's ENV " + cs.Name
	case strings.HasPrefix(cs.Where, "config:labels."):
		return "config's label " + cs.Name
	case strings.HasPrefix(cs.Where, "manifest:annotations."):
		return "manifest's annotation " + cs.Name
	case strings.HasPrefix(cs.Where, "index:annotations."):
		return "index's annotation " + cs.Name
	case cs.History >= 0:
		return fmt.Sprintf("history (entry %d, %s)", cs.History, cs.Where[strings.LastIndexByte(cs.Where, '.')+1:])
	}
	return "config (" + strings.TrimPrefix(cs.Where, "config:") + ")"
}
