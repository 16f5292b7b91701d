package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// MatchOptions choose the vulnerability database and what is suppressed.
type MatchOptions struct {
	// DBPath is the database (vulndb.DefaultPath() when empty; built from
	// the bundled snapshot when missing, with a warning).
	DBPath string
	// MaxAge: data older than this, or undated, is a warning (0: never).
	MaxAge time.Duration
	// IgnoreUnfixed drops vulnerabilities with no fixed version yet.
	IgnoreUnfixed bool
	// Severities keeps only these (none: all).
	Severities []finding.Severity
	// IgnoreFile suppresses the findings it lists ("": none);
	// IgnoreFileOptional lets it be missing.
	IgnoreFile         string
	IgnoreFileOptional bool
	// VEX are OpenVEX documents whose not_affected/fixed statements
	// suppress findings.
	VEX []string
}

// noAgeCheck asks info for no staleness check.
const noAgeCheck = time.Duration(0)

// Matcher matches inventories against one vulnerability database with one
// set of suppressions. It is safe for concurrent use.
type Matcher struct {
	db     *vulndb.DB
	owned  bool
	maxAge time.Duration
	opts   match.Options

	mu       sync.Mutex
	used     map[string]bool
	warnings []diag.Diagnostic
}

// OpenMatcher opens the database at o.DBPath (building it from the bundled
// snapshot when none exists yet) and loads o's ignore file and VEX
// documents. Close it when done.
func OpenMatcher(o MatchOptions) (*Matcher, error) {
	db, built, err := vulndb.OpenForScan(o.DBPath)
	if err != nil {
		return nil, err
	}
	m, err := NewMatcher(db, o)
	if err != nil {
		db.Close()
		return nil, err
	}
	m.owned = true
	if built {
		m.warn(diag.Warnf(diag.VulnDBBundled, "no vulnerability database at %s: built it from the snapshot bundled in this binary", db.Path()).At(diag.Location{Path: db.Path()}))
	}
	return m, nil
}

// NewMatcher matches with a database the caller keeps open (Close leaves
// it open); o.DBPath is not used.
func NewMatcher(db *vulndb.DB, o MatchOptions) (*Matcher, error) {
	opts, err := o.Load()
	if err != nil {
		return nil, err
	}
	return &Matcher{db: db, maxAge: o.MaxAge, used: map[string]bool{}, opts: opts}, nil
}

// Load reads o's ignore file and VEX documents into the match options
// they stand for: what a matcher applies, and what a client applies to
// findings a server matched (match.Suppress).
func (o MatchOptions) Load() (match.Options, error) {
	opts := match.Options{IgnoreUnfixed: o.IgnoreUnfixed, Severities: o.Severities}
	if o.IgnoreFile != "" {
		ign, err := match.LoadIgnoreFile(o.IgnoreFile, o.IgnoreFileOptional)
		if err != nil {
			return opts, err
		}
		opts.Ignore = ign
	}
	for _, p := range o.VEX {
		doc, err := match.LoadVEX(p)
		if err != nil {
			return opts, err
		}
		opts.VEX = append(opts.VEX, doc)
	}
	return opts, nil
}

// Close closes the database if the matcher opened it.
func (m *Matcher) Close() error {
	if m.owned {
		return m.db.Close()
	}
	return nil
}

// DB is the matcher's database.
func (m *Matcher) DB() *vulndb.DB { return m.db }

func (m *Matcher) warn(d diag.Diagnostic) {
	m.mu.Lock()
	m.warnings = append(m.warnings, d)
	m.mu.Unlock()
}

// Warnings are the matcher's own: the database was built from the bundled
// snapshot, its data is stale (Info).
func (m *Matcher) Warnings() []string { return diag.Messages(m.Diagnostics()) }

// Diagnostics are the Warnings with their codes (vulndb.bundled,
// vulndb.stale).
func (m *Matcher) Diagnostics() []diag.Diagnostic {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]diag.Diagnostic(nil), m.warnings...)
}

// Match matches one inventory: every finding, suppressed ones marked, and
// the ecosystems looked up. warn (may be nil) gets the per-package notes
// (expired ignore entries, versions that could not be compared).
func (m *Matcher) Match(ctx context.Context, inv *inventory.Inventory, warn func(diag.Diagnostic)) ([]finding.Finding, []string, error) {
	opts := m.opts
	opts.Diagnose = warn
	tr := m.db.Track()
	fs, err := match.Match(ctx, inv, tr, opts)
	if err != nil {
		return nil, nil, err
	}
	used := tr.Used()
	m.mu.Lock()
	for _, e := range used {
		m.used[e] = true
	}
	m.mu.Unlock()
	return fs, used, nil
}

// Active matches one inventory and keeps the findings that count (none
// suppressed), dropping the per-package notes: the form base.Recommend and
// comparisons take.
func (m *Matcher) Active(ctx context.Context, inv *inventory.Inventory) ([]finding.Finding, error) {
	fs, _, err := m.Match(ctx, inv, nil)
	return match.Active(fs), err
}

// Used lists every ecosystem looked up so far, sorted.
func (m *Matcher) Used() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.used))
}

// Age dates the data of the ecosystems used (none: the whole database).
func (m *Matcher) Age(used []string) (vulndb.DataAge, error) { return m.db.DataAge(used) }

// Info describes the data of the ecosystems used (none: the whole
// database), dated by the oldest of them; data older than the matcher's
// MaxAge, or undated, is one of its Warnings.
func (m *Matcher) Info(used []string) (*report.DBInfo, error) {
	return m.info(used, m.maxAge, m.warn)
}

func (m *Matcher) info(used []string, maxAge time.Duration, warn func(diag.Diagnostic)) (*report.DBInfo, error) {
	st, err := m.db.Status()
	if err != nil {
		return nil, err
	}
	age, err := m.db.DataAge(used)
	if err != nil {
		return nil, err
	}
	if err := age.CheckAge(maxAge); err != nil {
		var stale *vulndb.StaleError
		if !errors.As(err, &stale) {
			return nil, err
		}
		warn(stale.Diagnostic())
	}
	info := &report.DBInfo{Source: age.Oldest.Source, UpdatedAt: age.Oldest.AsOf, Age: AgeText(age.Oldest), Records: st.Records, OldestEcosystem: age.Oldest.Ecosystem}
	for _, e := range age.Ecosystems {
		info.Ecosystems = append(info.Ecosystems, report.DBEcosystem{Name: e.Ecosystem, UpdatedAt: e.AsOf, Kind: e.Kind, Source: e.Source})
	}
	return info, nil
}

// AgeText is a freshness's age in words ("unknown" when undated).
func AgeText(f vulndb.Freshness) string {
	if !f.Known() {
		return "unknown"
	}
	return HumanDuration(f.Age())
}

// HumanDuration is d in the largest whole unit that reads well ("103
// days", "5 hours").
func HumanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d >= 2*time.Minute:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	default:
		return d.Round(time.Second).String()
	}
}
