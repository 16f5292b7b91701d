package report

import (
	"math"
	"slices"
	"strings"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// Store holds the findings of a scan that may have very many (a manifest
// stream of 100,000 pods has over a million): the texts every finding of
// one check shares (title, fix, references) are kept once per check, file
// names once per file, so a finding costs a few dozen bytes plus its
// description. Set it as Result.Store instead of Result.Findings; the
// writers go through it one finding at a time.
type Store struct {
	// DropDescriptions keeps only the first description of each check
	// (the table and SARIF print none per finding).
	DropDescriptions bool

	rules   []finding.Finding   // templates: one per distinct check text
	ruleIdx map[string][]uint32 // by ID
	strs    []string
	strIdx  map[string]uint32
	full    []finding.Finding // findings that do not fit the compact form
	items   []storeItem
	// Descriptions are kept in two parts split at the first ": " (in a
	// manifest, "Pod web" and "container app runs privileged"): the first
	// is shared by the findings of one object, the second by those of one
	// check on many objects. descIdx shares recent repeats.
	descs   []string
	descIdx map[string]uint32
	supps   []*finding.Suppression
	sorted  bool
}

type storeItem struct {
	rule       uint32 // index in rules, or fullItem
	target     uint32
	path       uint32 // index in strs + 1; 0: no location
	start, end int32
	head, tail uint32 // the description: descs[head] + ": " + descs[tail-1], or descs[head] alone when tail is 0
	supp       uint32 // index in supps + 1; 0: not suppressed
}

const fullItem = math.MaxUint32

// maxSharedDescs bounds the cache that shares repeated descriptions.
const maxSharedDescs = 4096

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{ruleIdx: map[string][]uint32{}, strIdx: map[string]uint32{}, descs: []string{""}, descIdx: map[string]uint32{"": 0}}
}

// Len is the number of findings.
func (s *Store) Len() int { return len(s.items) }

func (s *Store) str(v string) uint32 {
	if i, ok := s.strIdx[v]; ok {
		return i
	}
	s.strs = append(s.strs, v)
	s.strIdx[v] = uint32(len(s.strs) - 1)
	return uint32(len(s.strs) - 1)
}

// desc returns the index of a description part.
func (s *Store) desc(v string) uint32 {
	if i, ok := s.descIdx[v]; ok {
		return i
	}
	if len(s.descIdx) >= maxSharedDescs {
		clear(s.descIdx)
		s.descIdx[""] = 0
	}
	s.descs = append(s.descs, v)
	s.descIdx[v] = uint32(len(s.descs) - 1)
	return uint32(len(s.descs) - 1)
}

// Add stores a finding.
func (s *Store) Add(f finding.Finding) {
	s.sorted = false
	it := storeItem{target: s.str(f.Target)}
	if f.Suppressed != nil {
		s.supps = append(s.supps, f.Suppressed)
		it.supp = uint32(len(s.supps))
	}
	if f.Package != nil || len(f.CVSS) > 0 || len(f.FixedVersions) > 0 || (f.Location != nil && f.Location.Layer != nil) ||
		f.Location != nil && (f.Location.StartLine > math.MaxInt32 || f.Location.EndLine > math.MaxInt32) ||
		len(s.full) >= math.MaxInt32 || len(s.descs) >= math.MaxUint32-2 {
		s.full = append(s.full, f)
		it.rule, it.start = fullItem, int32(len(s.full)-1)
		s.items = append(s.items, it)
		return
	}
	r, ok := uint32(0), false
	for _, i := range s.ruleIdx[f.ID] {
		if sameRule(&s.rules[i], &f) {
			r, ok = i, true
			break
		}
	}
	if !ok {
		t := finding.Finding{ID: f.ID, Kind: f.Kind, Aliases: f.Aliases, Severity: f.Severity, SeveritySource: f.SeveritySource,
			Title: f.Title, Description: f.Description, Fix: f.Fix, Status: f.Status, References: f.References}
		s.rules = append(s.rules, t)
		r = uint32(len(s.rules) - 1)
		s.ruleIdx[f.ID] = append(s.ruleIdx[f.ID], r)
	}
	it.rule = r
	if f.Location != nil {
		it.path = s.str(f.Location.Path) + 1
		it.start, it.end = int32(f.Location.StartLine), int32(f.Location.EndLine)
	}
	if !s.DropDescriptions {
		if i := strings.Index(f.Description, ": "); i >= 0 {
			it.head, it.tail = s.desc(f.Description[:i]), s.desc(f.Description[i+2:])+1
		} else {
			it.head = s.desc(f.Description)
		}
	}
	s.items = append(s.items, it)
}

// sameRule says whether a finding has a template's shared texts.
func sameRule(t, f *finding.Finding) bool {
	return t.Kind == f.Kind && t.Severity == f.Severity && t.SeveritySource == f.SeveritySource && t.Title == f.Title &&
		t.Fix == f.Fix && t.Status == f.Status && slices.Equal(t.Aliases, f.Aliases) && slices.Equal(t.References, f.References)
}

// AddAll stores findings.
func (s *Store) AddAll(fs []finding.Finding) {
	for i := range fs {
		s.Add(fs[i])
	}
}

func (s *Store) id(it *storeItem) string {
	if it.rule == fullItem {
		return s.full[it.start].ID
	}
	return s.rules[it.rule].ID
}

func (s *Store) line(it *storeItem) int {
	if it.rule == fullItem {
		if l := s.full[it.start].Location; l != nil {
			return l.StartLine
		}
		return 0
	}
	return int(it.start)
}

// Sort orders the findings by ID, then by file (in the order files were
// first added) and line, as match.Sort orders findings without a package.
func (s *Store) Sort() {
	if s.sorted {
		return
	}
	slices.SortStableFunc(s.items, func(a, b storeItem) int {
		if c := strings.Compare(s.id(&a), s.id(&b)); c != 0 {
			return c
		}
		if a.target != b.target {
			return int(a.target) - int(b.target)
		}
		return s.line(&a) - s.line(&b)
	})
	s.sorted = true
}

// finding rebuilds the finding of an item into f.
func (s *Store) finding(it *storeItem, f *finding.Finding) {
	if it.rule == fullItem {
		*f = s.full[it.start]
		f.Suppressed = s.supp(it)
		return
	}
	*f = s.rules[it.rule]
	if !s.DropDescriptions {
		f.Description = s.descs[it.head]
		if it.tail > 0 {
			f.Description += ": " + s.descs[it.tail-1]
		}
	}
	f.Target = s.strs[it.target]
	f.Location = nil
	if it.path > 0 {
		f.Location = &finding.Location{Path: s.strs[it.path-1], StartLine: int(it.start), EndLine: int(it.end)}
	}
	f.Suppressed = s.supp(it)
}

func (s *Store) supp(it *storeItem) *finding.Suppression {
	if it.supp == 0 {
		return nil
	}
	return s.supps[it.supp-1]
}

// Each calls fn with every finding in order, stopping at its first error.
// The finding is only valid during the call.
func (s *Store) Each(fn func(f *finding.Finding) error) error {
	var f finding.Finding
	for i := range s.items {
		s.finding(&s.items[i], &f)
		if err := fn(&f); err != nil {
			return err
		}
	}
	return nil
}

// Filter keeps the findings keep accepts.
func (s *Store) Filter(keep func(f *finding.Finding) bool) {
	var f finding.Finding
	kept := s.items[:0]
	for i := range s.items {
		s.finding(&s.items[i], &f)
		if keep(&f) {
			kept = append(kept, s.items[i])
		}
	}
	clear(s.items[len(kept):])
	s.items = kept
}

// Active counts the findings not suppressed.
func (s *Store) Active() int {
	n := 0
	for i := range s.items {
		if s.items[i].supp == 0 {
			n++
		}
	}
	return n
}
