// Package match turns an inventory into vulnerability findings: each package
// is looked up in OSV records by ecosystem and name, its version is compared
// with the records' ranges using each ecosystem's own version ordering, and
// the records that affect it become findings — de-duplicated across sources,
// rated on one severity scale, then filtered and suppressed (ignore file,
// OpenVEX) so the CLI can decide its exit code with Active.
//
// The matching rules follow osv-scanner's (osv-scalibr v0.5.3
// enricher/vulnmatch/osvlocal) so that both tools report the same
// (package, advisory) set on the same data; the differences are deliberate
// and listed in README.md next to this file.
package match

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/version"
	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
)

// Source gives OSV records. vulndb's store implements it; tests use an
// in-memory one built from real OSV JSON files.
type Source interface {
	// Lookup returns the records with an affected entry for the exact
	// ecosystem ("Debian:12") and package name (PyPI names normalised).
	// Withdrawn records may be returned; Match skips them.
	Lookup(ecosystem, name string) ([]*osvpb.Vulnerability, error)
	// Ecosystems lists the ecosystems the source holds.
	Ecosystems() ([]string, error)
}

// Options control what Match reports.
type Options struct {
	// Severities keeps only findings of these severities (all when empty).
	Severities []finding.Severity
	// IgnoreUnfixed drops findings without a fixed version.
	IgnoreUnfixed bool
	// Ignore suppresses findings listed in an ignore file.
	Ignore *IgnoreFile
	// VEX documents suppress findings their not_affected/fixed statements cover.
	VEX []*VEXDocument
	// Now is the date ignore-file expiry is judged against (time.Now when zero).
	Now time.Time
	// MaxDescription bounds Finding.Description in bytes (default 2000).
	MaxDescription int
	// Warn receives warnings: expired ignore entries, versions that could
	// not be compared, packages with no OSV ecosystem. Nil discards them.
	Warn func(string)
	// Diagnose receives the same warnings with their codes
	// (ignore.expired, match.version-unparsed, match.unsupported); when
	// set, Warn is not called.
	Diagnose func(diag.Diagnostic)
}

const defaultMaxDescription = 2000

// Match returns the findings for inv's packages, sorted by package then id.
// Suppressed findings stay in the list, marked; see Active.
func Match(ctx context.Context, inv *inventory.Inventory, src Source, opts Options) ([]finding.Finding, error) {
	if inv == nil {
		return nil, errors.New("match: nil inventory")
	}
	if src == nil {
		return nil, errors.New("match: no vulnerability database (run `bulkhead db update`)")
	}
	m := &matcher{
		src:     src,
		opts:    opts,
		records: map[[2]string][]*osvpb.Vulnerability{},
		warned:  map[string]bool{},
		parsed:  map[[2]string]parsedVersion{},
		cvss:    map[string]cvssScore{},
	}
	if m.opts.MaxDescription <= 0 {
		m.opts.MaxDescription = defaultMaxDescription
	}
	var out []finding.Finding
	for i := range inv.Packages {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		fs, err := m.matchPackage(&inv.Packages[i], inv.OS)
		if err != nil {
			return nil, err
		}
		for j := range fs {
			fs[j].Target = inv.Target.Name
		}
		out = append(out, fs...)
	}
	out, warns := Suppress(out, inv, opts)
	for _, w := range warns {
		m.warn(w)
	}
	return out, nil
}

// Suppress applies opts' filters (severities, unfixed) and suppressions
// (ignore file, VEX) to vulnerability findings matched elsewhere (by
// bulkhead server, say) exactly as Match does, and sorts them. It returns
// the kept findings and the ignore file's diagnostics (expired entries).
func Suppress(fs []finding.Finding, inv *inventory.Inventory, opts Options) ([]finding.Finding, []diag.Diagnostic) {
	out := filter(fs, opts)
	var warns []diag.Diagnostic
	if opts.Ignore != nil {
		now := opts.Now
		if now.IsZero() {
			now = time.Now()
		}
		warns = opts.Ignore.Suppress(out, now)
	}
	if len(opts.VEX) > 0 {
		ApplyVEX(out, opts.VEX, ImageIdentifiers(&inv.Target))
	}
	Sort(out)
	return out, warns
}

// Active returns the findings that count for the exit code: those not
// suppressed by an ignore entry or a VEX statement.
func Active(fs []finding.Finding) []finding.Finding {
	var out []finding.Finding
	for _, f := range fs {
		if f.Suppressed == nil {
			out = append(out, f)
		}
	}
	return out
}

// Sort orders findings by package (type, name, version, path) then id.
func Sort(fs []finding.Finding) {
	key := func(f *finding.Finding) [4]string {
		if f.Package == nil {
			return [4]string{}
		}
		return [4]string{f.Package.Type, f.Package.Name, f.Package.Version, f.Package.Path}
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := key(&fs[i]), key(&fs[j])
		if a != b {
			for k := range a {
				if a[k] != b[k] {
					return a[k] < b[k]
				}
			}
		}
		return fs[i].ID < fs[j].ID
	})
}

func filter(fs []finding.Finding, opts Options) []finding.Finding {
	if len(opts.Severities) == 0 && !opts.IgnoreUnfixed {
		return fs
	}
	keep := map[finding.Severity]bool{}
	for _, s := range opts.Severities {
		keep[s] = true
	}
	out := fs[:0]
	for _, f := range fs {
		if len(keep) > 0 && !keep[f.Severity] {
			continue
		}
		if opts.IgnoreUnfixed && len(f.FixedVersions) == 0 {
			continue
		}
		out = append(out, f)
	}
	return out
}

type matcher struct {
	src     Source
	opts    Options
	records map[[2]string][]*osvpb.Vulnerability
	rhel    map[string][]string // prefix -> ecosystems
	warned  map[string]bool
	// parsed caches parsed versions by ecosystem and string: fixed versions
	// repeat across records and packages.
	parsed map[[2]string]parsedVersion
	// cvss caches scored vectors.
	cvss map[string]cvssScore
}

type parsedVersion struct {
	v   version.Version
	err error
}

func (m *matcher) parse(eco, s string) (version.Version, error) {
	k := [2]string{eco, s}
	if p, ok := m.parsed[k]; ok {
		return p.v, p.err
	}
	v, err := version.Parse(eco, s)
	if len(m.parsed) < 1<<20 {
		m.parsed[k] = parsedVersion{v, err}
	}
	return v, err
}

func (m *matcher) warn(d diag.Diagnostic) {
	if m.warned[d.Message] {
		return
	}
	switch {
	case m.opts.Diagnose != nil:
		m.opts.Diagnose(d)
	case m.opts.Warn != nil:
		m.opts.Warn(d.Message)
	default:
		return
	}
	m.warned[d.Message] = true
}

func (m *matcher) lookup(eco, name string) ([]*osvpb.Vulnerability, error) {
	k := [2]string{eco, name}
	if r, ok := m.records[k]; ok {
		return r, nil
	}
	r, err := m.src.Lookup(eco, name)
	if err != nil {
		return nil, fmt.Errorf("look up %s package %q: %w", eco, name, err)
	}
	m.records[k] = r
	return r, nil
}

// ecosystems returns the exact OSV ecosystems a package is looked up in.
func (m *matcher) ecosystems(p *inventory.Package, os *inventory.OS) ([]string, error) {
	if eco, ok := languageEcosystems[p.Type]; ok {
		return []string{eco}, nil
	}
	eco, prefix, reason := osEcosystem(p.Type, os)
	if reason != "" {
		m.warn(diag.Warnf(diag.MatchUnsupported, "vulnerabilities not checked for %s packages: %s", p.Type, reason).At(diag.Location{Object: p.Type}))
		return nil, nil
	}
	if prefix == "" {
		return []string{eco}, nil
	}
	if m.rhel == nil {
		m.rhel = map[string][]string{}
	}
	if ecos, ok := m.rhel[prefix]; ok {
		return ecos, nil
	}
	all, err := m.src.Ecosystems()
	if err != nil {
		return nil, fmt.Errorf("list ecosystems: %w", err)
	}
	var ecos []string
	for _, e := range all {
		if strings.HasPrefix(e, prefix) {
			ecos = append(ecos, e)
		}
	}
	sort.Strings(ecos)
	m.rhel[prefix] = ecos
	return ecos, nil
}

// hit is one record that affects one package.
type hit struct {
	v     *osvpb.Vulnerability
	eco   string
	fixed []string
	aff   []*osvpb.Affected
}

func (m *matcher) matchPackage(p *inventory.Package, os *inventory.OS) ([]finding.Finding, error) {
	ecos, err := m.ecosystems(p, os)
	if err != nil {
		return nil, err
	}
	var hits []hit
	seen := map[string]bool{}
	for _, eco := range ecos {
		q := query{eco: eco, name: packageName(p, eco), version: packageVersion(p, eco)}
		recs, err := m.lookup(q.eco, q.name)
		if err != nil {
			return nil, err
		}
		for _, v := range recs {
			if v.GetWithdrawn() != nil || seen[v.GetId()] {
				continue
			}
			h, ok := m.affects(v, q)
			if ok {
				seen[v.GetId()] = true
				hits = append(hits, h)
			}
		}
	}
	return m.findings(p, hits), nil
}

// affects reports whether record v affects the package q, and with which
// fixed versions. The rules are osv-scanner's (vulns.IsAffected): an
// affected entry for the same ecosystem and name matches when the version
// is listed in `versions` (a leading "v" ignored on either side) or falls in
// an ECOSYSTEM or SEMVER range; GIT ranges are skipped; an entry with
// neither ranges nor versions matches nothing; an empty package version
// matches every entry (false positives over false negatives).
func (m *matcher) affects(v *osvpb.Vulnerability, q query) (hit, bool) {
	h := hit{v: v, eco: q.eco}
	matched := false
	var parsed *version.Version
	parseErr := error(nil)
	for _, a := range v.GetAffected() {
		pkg := a.GetPackage()
		if pkg == nil || pkg.GetEcosystem() != q.eco || !sameName(q.eco, pkg.GetName(), q.name) {
			continue
		}
		if len(a.GetRanges()) == 0 && len(a.GetVersions()) == 0 {
			continue
		}
		if q.version == "" {
			matched = true
			h.aff = append(h.aff, a)
			continue
		}
		if parsed == nil && parseErr == nil {
			pv, err := m.parse(q.eco, q.version)
			if err != nil {
				parseErr = err
				m.warn(diag.Warnf(diag.MatchVersionUnknown, "%s package %s: version %q not understood (%v); only exact version lists are checked", q.eco, q.name, q.version, err).At(diag.Location{Object: q.eco + "/" + q.name}))
			} else {
				parsed = &pv
			}
		}
		hitHere := listed(a.GetVersions(), q.version)
		var fixed []string
		if parsed != nil {
			for _, r := range a.GetRanges() {
				in, fix := m.inRange(r, *parsed, q)
				if in {
					hitHere = true
					if fix != "" {
						fixed = append(fixed, fix)
					}
				}
			}
		}
		if hitHere {
			matched = true
			h.aff = append(h.aff, a)
			h.fixed = append(h.fixed, fixed...)
		}
	}
	return h, matched
}

func sameName(eco, a, b string) bool {
	if eco == "PyPI" {
		return normalizePyPI(a) == normalizePyPI(b)
	}
	return a == b
}

// listed reports whether version is in an explicit versions list, with
// osv-scanner's tolerance of a leading "v" on either side.
func listed(versions []string, v string) bool {
	nv := strings.TrimPrefix(v, "v")
	for _, x := range versions {
		if x == v || strings.TrimPrefix(x, "v") == nv {
			return true
		}
	}
	return false
}

// event is a range event with its kind.
type event struct {
	kind string // introduced, fixed, last_affected, limit
	ver  string
}

func events(r *osvpb.Range) []event {
	var out []event
	for _, e := range r.GetEvents() {
		switch {
		case e.GetIntroduced() != "":
			out = append(out, event{"introduced", e.GetIntroduced()})
		case e.GetFixed() != "":
			out = append(out, event{"fixed", e.GetFixed()})
		case e.GetLastAffected() != "":
			out = append(out, event{"last_affected", e.GetLastAffected()})
		case e.GetLimit() != "":
			out = append(out, event{"limit", e.GetLimit()})
		}
	}
	return out
}

// inRange evaluates one ECOSYSTEM or SEMVER range the way osv-scanner
// does: events sorted by version ("introduced: 0" first), then walked,
// entering the affected state at an introduced event at or below the
// version and leaving it at a fixed event at or below it (or a
// last_affected event below it). It also returns the fixed version that
// closes the affected interval holding the version, if any. A "limit" event
// closes the interval like "fixed" but is not a fix (osv-scanner ignores
// limit; no ECOSYSTEM range in the corpus has one).
func (m *matcher) inRange(r *osvpb.Range, v version.Version, q query) (bool, string) {
	if r.GetType() != osvpb.Range_ECOSYSTEM && r.GetType() != osvpb.Range_SEMVER {
		return false, ""
	}
	evs := events(r)
	if len(evs) == 0 {
		return false, ""
	}
	cmp := func(s string) int {
		ev, err := m.parse(q.eco, s)
		var c int
		if err == nil {
			c, err = v.CompareTo(ev)
		}
		if err != nil {
			// osv-scanner ignores comparison errors (treats them as
			// equal); do the same, but say so.
			m.warn(diag.Warnf(diag.MatchVersionUnknown, "%s %s: %v", q.eco, q.name, err).At(diag.Location{Object: q.eco + "/" + q.name}))
			return 0
		}
		return c
	}
	isZero := func(e event) bool { return e.kind == "introduced" && e.ver == "0" }
	// The common shape, "introduced: 0" then one closing event, is already
	// in order; sort anything else.
	if !(len(evs) == 2 && isZero(evs[0])) {
		sort.SliceStable(evs, func(i, j int) bool {
			a, b := evs[i], evs[j]
			if isZero(a) {
				return !isZero(b)
			}
			if isZero(b) {
				return false
			}
			av, err1 := m.parse(q.eco, a.ver)
			bv, err2 := m.parse(q.eco, b.ver)
			if err1 != nil || err2 != nil {
				return false
			}
			c, err := av.CompareTo(bv)
			return err == nil && c < 0
		})
	}
	affected := false
	fix := ""
	for _, e := range evs {
		if affected {
			switch e.kind {
			case "fixed":
				if affected = cmp(e.ver) < 0; affected && fix == "" {
					fix = e.ver
				}
			case "limit":
				affected = cmp(e.ver) < 0
			case "last_affected":
				affected = e.ver == v.String() || cmp(e.ver) <= 0
			}
			continue
		}
		if e.kind == "introduced" {
			affected = e.ver == "0" || cmp(e.ver) >= 0
			fix = ""
		}
	}
	if !affected {
		return false, ""
	}
	return true, fix
}
