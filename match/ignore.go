package match

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/openvex/go-vex/pkg/vex"
	"go.yaml.in/yaml/v3"
)

// IgnoreFileName is the ignore file bulkhead reads by default.
const IgnoreFileName = ".bulkheadignore"

// maxIgnoreFile bounds the ignore file; a real one is a few kilobytes.
const maxIgnoreFile = 4 << 20

// IgnoreEntry is one suppression. ID matches a finding's id or any alias;
// Package, when set, limits it to a package name (binary or source) or a
// purl (a purl without version matches every version); Expires, when set,
// is the last day the entry suppresses.
type IgnoreEntry struct {
	ID      string    `yaml:"id"`
	Package string    `yaml:"package"`
	PURL    string    `yaml:"purl"`
	Expires time.Time `yaml:"-"`
	Reason  string    `yaml:"reason"`
	// Line is where the entry starts in the file.
	Line int `yaml:"-"`
}

// IgnoreFile is a parsed ignore file.
type IgnoreFile struct {
	Path    string
	Entries []IgnoreEntry
}

// LoadIgnoreFile reads an ignore file. A missing file is not an error when
// optional is true (the default .bulkheadignore need not exist).
func LoadIgnoreFile(path string, optional bool) (*IgnoreFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read ignore file: %w", err)
	}
	if st.Size() > maxIgnoreFile {
		return nil, fmt.Errorf("ignore file %s is %d bytes; the limit is %d", path, st.Size(), maxIgnoreFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ignore file: %w", err)
	}
	return ParseIgnoreFile(data, path)
}

// ParseIgnoreFile reads either format:
//
// YAML, a list of entries (or a mapping with the list under "ignore"):
//
//   - id: CVE-2023-5678
//     package: openssl          # or purl: pkg:apk/alpine/openssl
//     expires: 2026-12-31
//     reason: not reachable, see SEC-12
//
// or plain lines of ids as in trivy's .trivyignore, with "#" comments and an
// optional "exp:YYYY-MM-DD" after the id:
//
//	CVE-2023-5678
//	GHSA-xxxx-yyyy-zzzz exp:2026-12-31
func ParseIgnoreFile(data []byte, path string) (*IgnoreFile, error) {
	if len(data) > maxIgnoreFile {
		return nil, fmt.Errorf("ignore file %s is %d bytes; the limit is %d", path, len(data), maxIgnoreFile)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err == nil && len(doc.Content) == 1 &&
		(doc.Content[0].Kind == yaml.SequenceNode || doc.Content[0].Kind == yaml.MappingNode) {
		return parseIgnoreYAML(doc.Content[0], path)
	}
	return parseIgnoreLines(data, path)
}

func parseIgnoreYAML(n *yaml.Node, path string) (*IgnoreFile, error) {
	if n.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "ignore", "ignores", "vulnerabilities":
				list = n.Content[i+1]
			default:
				return nil, fmt.Errorf("%s:%d: unknown key %q (expected a list of entries, or \"ignore:\" holding one)", path, n.Content[i].Line, n.Content[i].Value)
			}
		}
		if list == nil {
			return &IgnoreFile{Path: path}, nil
		}
		if list.Kind != yaml.SequenceNode {
			return nil, fmt.Errorf("%s:%d: \"ignore\" must be a list of entries", path, list.Line)
		}
		n = list
	}
	f := &IgnoreFile{Path: path}
	for _, item := range n.Content {
		e := IgnoreEntry{Line: item.Line}
		switch item.Kind {
		case yaml.ScalarNode:
			// A bare id in the list.
			e.ID = strings.TrimSpace(item.Value)
		case yaml.MappingNode:
			for i := 0; i+1 < len(item.Content); i += 2 {
				k, v := item.Content[i], item.Content[i+1]
				if v.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%s:%d: %q must be a single value", path, v.Line, k.Value)
				}
				val := strings.TrimSpace(v.Value)
				switch k.Value {
				case "id", "vulnerability":
					e.ID = val
				case "package":
					e.Package = val
				case "purl":
					e.PURL = val
				case "reason", "statement", "comment":
					e.Reason = val
				case "expires", "expiry", "exp":
					t, err := parseDate(val)
					if err != nil {
						return nil, fmt.Errorf("%s:%d: expires: %w", path, v.Line, err)
					}
					e.Expires = t
				default:
					return nil, fmt.Errorf("%s:%d: unknown key %q (use id, package, purl, expires, reason)", path, k.Line, k.Value)
				}
			}
		default:
			return nil, fmt.Errorf("%s:%d: an entry must be an id or a mapping with id", path, item.Line)
		}
		if e.ID == "" {
			return nil, fmt.Errorf("%s:%d: entry has no id", path, item.Line)
		}
		if strings.HasPrefix(e.Package, "pkg:") && e.PURL == "" {
			e.PURL, e.Package = e.Package, ""
		}
		f.Entries = append(f.Entries, e)
	}
	return f, nil
}

func parseIgnoreLines(data []byte, path string) (*IgnoreFile, error) {
	f := &IgnoreFile{Path: path}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), maxIgnoreFile)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		e := IgnoreEntry{ID: fields[0], Line: line}
		for _, fl := range fields[1:] {
			switch {
			case strings.HasPrefix(fl, "exp:"):
				t, err := parseDate(strings.TrimPrefix(fl, "exp:"))
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %w", path, line, err)
				}
				e.Expires = t
			default:
				return nil, fmt.Errorf("%s:%d: unexpected %q after the id (only \"exp:YYYY-MM-DD\" may follow)", path, line, fl)
			}
		}
		f.Entries = append(f.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, nil
}

func parseDate(s string) (time.Time, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	return t, nil
}

// expired reports whether the entry no longer applies on day now (the
// expiry date itself still suppresses).
func (e *IgnoreEntry) expired(now time.Time) bool {
	if e.Expires.IsZero() {
		return false
	}
	y, m, d := now.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return today.After(e.Expires)
}

func (e *IgnoreEntry) matches(f *finding.Finding) bool {
	if !idMatches(e.ID, f) {
		return false
	}
	if e.Package != "" {
		if f.Package == nil || (f.Package.Name != e.Package && f.Package.Source != e.Package) {
			return false
		}
	}
	if e.PURL != "" {
		if f.Package == nil || f.Package.PURL == "" || !vex.PurlMatches(e.PURL, f.Package.PURL) {
			return false
		}
	}
	return true
}

func idMatches(id string, f *finding.Finding) bool {
	if strings.EqualFold(id, f.ID) {
		return true
	}
	for _, a := range f.Aliases {
		if strings.EqualFold(id, a) {
			return true
		}
	}
	return false
}

// Apply marks the findings the file's live entries cover as suppressed
// (unless already suppressed) and returns one warning per expired entry.
func (ig *IgnoreFile) Apply(fs []finding.Finding, now time.Time) []string {
	return diag.Messages(ig.Suppress(fs, now))
}

// Suppress is Apply with the warnings as diagnostics (code
// ignore.expired, located at the entry's line).
func (ig *IgnoreFile) Suppress(fs []finding.Finding, now time.Time) []diag.Diagnostic {
	if ig == nil {
		return nil
	}
	var warns []diag.Diagnostic
	for i := range ig.Entries {
		e := &ig.Entries[i]
		if e.expired(now) {
			warns = append(warns, diag.Warnf(diag.IgnoreExpired, "%s:%d: ignore entry for %s expired on %s and no longer suppresses it",
				ig.Path, e.Line, e.ID, e.Expires.Format("2006-01-02")).At(diag.Location{Path: ig.Path, Line: e.Line, Object: e.ID}))
			continue
		}
		for j := range fs {
			if fs[j].Suppressed == nil && e.matches(&fs[j]) {
				fs[j].Suppressed = &finding.Suppression{
					Kind:      "ignore",
					Statement: e.Reason,
					Source:    fmt.Sprintf("%s:%d", ig.Path, e.Line),
				}
			}
		}
	}
	return warns
}
