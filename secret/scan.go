package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// Defaults for the bounds of one file.
const (
	DefaultMaxFileSize = 10 << 20
	// binaryProbe is how much of a file is checked for NUL bytes.
	binaryProbe = 8 << 10
	// maxMatchesPerRule bounds the work and the report on a file full of
	// candidates.
	maxMatchesPerRule = 100
)

// Config is the user's secret-scanning configuration (a YAML file):
//
//	allow:
//	  paths: ['(^|/)testdata/', '\.md$']   # regexes over the file path
//	  rules: [jwt]                          # rule IDs never reported
//	  regexes: ['EXAMPLE']                  # regexes over the secret value
//	disable-rules: [generic-secret]
//	max-file-size: 5242880
type Config struct {
	Allow        Allow    `json:"allow"`
	DisableRules []string `json:"disable-rules"`
	MaxFileSize  int64    `json:"max-file-size"`
}

// Allow lists what is never reported.
type Allow struct {
	Paths   []string `json:"paths"`
	Rules   []string `json:"rules"`
	Regexes []string `json:"regexes"`
}

// LoadConfig reads a secret-scanning config file.
func LoadConfig(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read secret config: %w", err)
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return c, fmt.Errorf("secret config %s: %w (keys: allow.paths, allow.rules, allow.regexes, disable-rules, max-file-size)", path, err)
	}
	return c, nil
}

// Scanner scans content with a set of rules and an allow-list. Safe for
// concurrent use.
type Scanner struct {
	rules       []*Rule
	kw          *keywordSet
	kwRules     [][]int // keyword index -> rules
	allowPaths  []*regexp.Regexp
	allowValues []*regexp.Regexp
	maxSize     int64
	pool        sync.Pool
}

// New builds a scanner from the built-in rules and a config.
func New(cfg Config) (*Scanner, error) {
	s := &Scanner{maxSize: cfg.MaxFileSize}
	if s.maxSize <= 0 {
		s.maxSize = DefaultMaxFileSize
	}
	off := map[string]bool{}
	for _, id := range append(append([]string{}, cfg.Allow.Rules...), cfg.DisableRules...) {
		if _, ok := ruleByID(id); !ok {
			return nil, fmt.Errorf("secret config: unknown rule %q (known: %s)", id, strings.Join(RuleIDs(), ", "))
		}
		off[id] = true
	}
	for _, r := range Rules() {
		if !off[r.ID] {
			s.rules = append(s.rules, r)
		}
	}
	for _, p := range cfg.Allow.Paths {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("secret config: allow.paths %q: %w", p, err)
		}
		s.allowPaths = append(s.allowPaths, re)
	}
	for _, p := range cfg.Allow.Regexes {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("secret config: allow.regexes %q: %w", p, err)
		}
		s.allowValues = append(s.allowValues, re)
	}
	var words []string
	index := map[string]int{}
	for ri, r := range s.rules {
		for _, k := range r.Keywords {
			k = strings.ToLower(k)
			i, ok := index[k]
			if !ok {
				i = len(words)
				index[k] = i
				words = append(words, k)
				s.kwRules = append(s.kwRules, nil)
			}
			s.kwRules[i] = append(s.kwRules[i], ri)
		}
	}
	s.kw = newKeywordSet(words)
	return s, nil
}

var (
	defaultOnce sync.Once
	defaultScan *Scanner
)

// Default is the scanner with the built-in rules and no allow-list.
func Default() *Scanner {
	defaultOnce.Do(func() {
		s, err := New(Config{})
		if err != nil {
			panic(err) // the built-in rules compile; a failure is a bug
		}
		defaultScan = s
	})
	return defaultScan
}

func ruleByID(id string) (*Rule, bool) {
	for _, r := range Rules() {
		if r.ID == id {
			return r, true
		}
	}
	return nil, false
}

// RuleIDs lists the built-in rule IDs.
func RuleIDs() []string {
	out := make([]string, len(Rules()))
	for i, r := range Rules() {
		out[i] = r.ID
	}
	return out
}

// Match is one secret found in content.
type Match struct {
	Rule      *Rule
	Title     string
	Redacted  string
	StartLine int
	EndLine   int
	start     int
	end       int
}

// MaxFileSize is the scanner's per-file bound.
func (s *Scanner) MaxFileSize() int64 { return s.maxSize }

// AllowedPath reports whether the allow-list excludes a path.
func (s *Scanner) AllowedPath(path string) bool {
	for _, re := range s.allowPaths {
		if re.MatchString(path) {
			return true
		}
	}
	return false
}

// IsBinary reports whether content looks binary (a NUL byte in its first
// 8 KB).
func IsBinary(data []byte) bool {
	if len(data) > binaryProbe {
		data = data[:binaryProbe]
	}
	return bytes.IndexByte(data, 0) >= 0
}

// Window bounds around a keyword hit: every rule's match contains one of
// its keywords, so a rule runs only on the text around its hits (the hit's
// line, bounded), never over a whole file.
const (
	windowBefore = 1 << 10
	windowAfter  = 4 << 10
)

// Matches finds the secrets in data (already known to be text).
func (s *Scanner) Matches(data []byte) []Match {
	var out []Match
	var scanned []int // per rule: end of the last window it ran on
	seen := map[[2]int]bool{}
	s.kw.each(data, func(kw, end int) {
		if scanned == nil {
			scanned = make([]int, len(s.rules))
		}
		for _, ri := range s.kwRules[kw] {
			if end <= scanned[ri] {
				continue // inside a window this rule already ran on
			}
			r := s.rules[ri]
			ws, we := window(data, end, r.multiline())
			scanned[ri] = we
			for _, loc := range r.Regex.FindAllSubmatchIndex(data[ws:we], maxMatchesPerRule) {
				vs, ve := loc[0], loc[1]
				if len(loc) >= 4 && loc[2] >= 0 {
					vs, ve = loc[2], loc[3]
				}
				vs, ve = vs+ws, ve+ws
				if seen[[2]int{ri, vs}] {
					continue
				}
				seen[[2]int{ri, vs}] = true
				v := string(data[vs:ve])
				if r.MinEntropy > 0 && entropy(v) < r.MinEntropy {
					continue
				}
				if r.Valid != nil && !r.Valid(v) {
					continue
				}
				if s.allowedValue(v) {
					continue
				}
				out = append(out, Match{Rule: r, Title: r.Title, Redacted: Redact(v),
					StartLine: lineOf(data, vs), EndLine: lineOf(data, ve), start: vs, end: ve})
			}
		}
	})
	return dedupe(out)
}

// window returns the text a rule runs on around a keyword ending at end:
// the line (bounded), or for multi-line rules the text that follows.
func window(data []byte, end int, multiline bool) (int, int) {
	lo := end - windowBefore
	if lo < 0 {
		lo = 0
	}
	hi := end + windowAfter
	if hi > len(data) {
		hi = len(data)
	}
	if multiline {
		return lo, hi
	}
	if i := bytes.LastIndexByte(data[lo:end], '\n'); i >= 0 {
		lo += i + 1
	}
	if i := bytes.IndexByte(data[end:hi], '\n'); i >= 0 {
		hi = end + i
	}
	return lo, hi
}

func (s *Scanner) allowedValue(v string) bool {
	for _, re := range s.allowValues {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// dedupe drops a generic match that overlaps a specific one, and repeats.
func dedupe(ms []Match) []Match {
	if len(ms) < 2 {
		return ms
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].start < ms[j].start })
	generic := func(m Match) bool { return m.Rule.ID == "generic-secret" || m.Rule.ID == "url-password" }
	keep := ms[:0:0]
	for i, m := range ms {
		drop := false
		for j, o := range ms {
			if i == j || o.end <= m.start || m.end <= o.start {
				continue
			}
			if generic(m) && !generic(o) || (generic(m) == generic(o) && j < i) {
				drop = true
				break
			}
		}
		if !drop {
			keep = append(keep, m)
		}
	}
	return keep
}

// ErrTooLarge and ErrBinary say why a file was skipped.
var (
	ErrTooLarge = errors.New("file over the secret scanner's size limit")
	ErrBinary   = errors.New("binary file")
)

// Read reads a file's content for scanning: at most the size limit, and
// only the first 8 KB when those show it is binary. The returned buffer
// must be given back with Release.
func (s *Scanner) Read(r io.Reader) ([]byte, error) {
	bp, _ := s.pool.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 64<<10)
		bp = &b
	}
	buf := (*bp)[:0]
	// Probe first, so a binary file costs 8 KB of reading.
	buf, err := readAtMost(buf, r, binaryProbe)
	if err != nil {
		s.Release(buf)
		return nil, err
	}
	if IsBinary(buf) {
		s.Release(buf)
		return nil, ErrBinary
	}
	if len(buf) < binaryProbe {
		return buf, nil
	}
	buf, err = readAtMost(buf, r, int(s.maxSize)+1)
	if err != nil {
		s.Release(buf)
		return nil, err
	}
	if int64(len(buf)) > s.maxSize {
		s.Release(buf)
		return nil, ErrTooLarge
	}
	return buf, nil
}

// Release returns a buffer from Read to the pool.
func (s *Scanner) Release(b []byte) {
	if cap(b) > 16<<20 {
		return // do not pin huge buffers
	}
	b = b[:0]
	s.pool.Put(&b)
}

// readAtMost appends from r until buf holds limit bytes or r ends.
func readAtMost(buf []byte, r io.Reader, limit int) ([]byte, error) {
	for len(buf) < limit {
		if len(buf) == cap(buf) {
			n := cap(buf) * 2
			if n > limit {
				n = limit
			}
			nb := make([]byte, len(buf), n)
			copy(nb, buf)
			buf = nb
		}
		end := cap(buf)
		if end > limit {
			end = limit
		}
		n, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// Scan reads one file and returns its secrets as findings. Binary and
// over-size files give no findings and no error; allow-listed paths are not
// read.
func (s *Scanner) Scan(path string, r io.Reader) ([]finding.Finding, error) {
	if s.AllowedPath(path) {
		return nil, nil
	}
	data, err := s.Read(r)
	if errors.Is(err, ErrBinary) || errors.Is(err, ErrTooLarge) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s for secrets: %w", path, err)
	}
	defer s.Release(data)
	return s.findings(path, s.Matches(data)), nil
}

func (s *Scanner) findings(path string, ms []Match) []finding.Finding {
	var out []finding.Finding
	for _, m := range ms {
		out = append(out, NewFinding(path, m))
	}
	return out
}

// NewFinding turns a match into a finding; the value appears redacted only.
func NewFinding(path string, m Match) finding.Finding {
	return finding.Finding{
		ID:             m.Rule.ID,
		Kind:           finding.KindSecret,
		Severity:       m.Rule.Severity,
		SeveritySource: "bulkhead secret rule",
		Title:          m.Title,
		Description:    fmt.Sprintf("%s: %s", m.Title, m.Redacted),
		Target:         path,
		Location:       &finding.Location{Path: path, StartLine: m.StartLine, EndLine: m.EndLine},
		Fix:            "Remove the secret and rotate it: anyone who had this file (or image layer) has it. Load it at runtime from a secret store.",
	}
}

// ScanReader scans one file with the default rules. A read error ends the
// scan of that file with the findings made so far (none); callers that must
// tell errors apart use Default().Scan.
func ScanReader(path string, r io.Reader) []finding.Finding {
	fs, _ := Default().Scan(path, r)
	return fs
}

// MatchValue checks one configuration value (an ENV value, a label) against
// the provider rules; name is the variable's name, which lets the keyword
// rules see "PASSWORD=...". The generic rule counts only when the name is
// credential-like.
func MatchValue(name, value string) (Match, bool) {
	// A secret by its content; a credential-named variable with a literal
	// value (the assignment rule) is the caller's own check by name.
	for _, m := range Default().ValueMatches(name, value) {
		if m.Rule != &assignmentRule {
			return m, true
		}
	}
	return Match{}, false
}
