package match

import (
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// findings groups the hits on one package into findings: records that share
// an id or alias (directly or through a chain, e.g. a GHSA and a PYSEC
// record both aliasing one CVE) describe one flaw and become one finding.
//
// Which id leads a merged finding: a GHSA id first (it carries GitHub's
// rating and CVSS vector), then any other non-CVE advisory id (the
// ecosystem's own: GO-, PYSEC-, RUSTSEC-, DSA-, ALSA-...), then a CVE id;
// ties go to the lexically smallest id. Every other id and alias is kept in
// Aliases.
func (m *matcher) findings(p *inventory.Package, hits []hit) []finding.Finding {
	if len(hits) == 0 {
		return nil
	}
	// Union-find over hits connected by shared ids.
	parent := make([]int, len(hits))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, h := range hits {
		for _, id := range append([]string{h.v.GetId()}, h.v.GetAliases()...) {
			if j, ok := owner[id]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[id] = i
			}
		}
	}
	groups := map[int][]hit{}
	var roots []int
	for i := range hits {
		r := find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], hits[i])
	}
	out := make([]finding.Finding, 0, len(roots))
	for _, r := range roots {
		out = append(out, m.finding(p, groups[r]))
	}
	return out
}

// idRank orders ids for leading a merged finding (lower leads).
func idRank(id string) int {
	switch {
	case strings.HasPrefix(id, "GHSA-"):
		return 0
	case strings.HasPrefix(id, "CVE-"):
		return 2
	}
	return 1
}

func (m *matcher) finding(p *inventory.Package, hs []hit) finding.Finding {
	sort.Slice(hs, func(i, j int) bool {
		a, b := hs[i].v.GetId(), hs[j].v.GetId()
		if ra, rb := idRank(a), idRank(b); ra != rb {
			return ra < rb
		}
		return a < b
	})
	lead := hs[0]
	f := finding.Finding{
		ID:   lead.v.GetId(),
		Kind: finding.KindVulnerability,
		Package: &finding.Package{
			Name:      p.Name,
			Version:   p.Version,
			Type:      p.Type,
			PURL:      p.PURL,
			Ecosystem: lead.eco,
			Source:    p.SourceName,
		},
	}
	if len(p.Locations) > 0 {
		f.Package.Path = p.Locations[0].Path
		f.Package.Layer = p.Locations[0].Layer
	}
	ids := map[string]bool{}
	fixed := map[string]bool{}
	refs := map[string]bool{}
	for _, h := range hs {
		ids[h.v.GetId()] = true
		for _, a := range h.v.GetAliases() {
			ids[a] = true
		}
		for _, x := range h.fixed {
			if !fixed[x] {
				fixed[x] = true
				f.FixedVersions = append(f.FixedVersions, x)
			}
		}
		if f.Title == "" {
			f.Title = title(h.v.GetSummary(), h.v.GetDetails())
		}
		if f.Description == "" {
			f.Description = truncate(strings.TrimSpace(h.v.GetDetails()), m.opts.MaxDescription)
		}
		for _, r := range h.v.GetReferences() {
			if u := r.GetUrl(); u != "" && !refs[u] && len(f.References) < maxReferences {
				refs[u] = true
				f.References = append(f.References, u)
			}
		}
	}
	delete(ids, f.ID)
	for id := range ids {
		f.Aliases = append(f.Aliases, id)
	}
	sort.Strings(f.Aliases)
	if len(f.FixedVersions) > 0 {
		f.Status = finding.StatusFixed
		f.Fix = "upgrade " + p.Name + " to " + strings.Join(f.FixedVersions, " or ")
	} else {
		f.Status = finding.StatusNoFixYet
	}
	m.rate(&f, hs)
	return f
}

const maxReferences = 32

// title is the record's summary, or the first line of its details.
func title(summary, details string) string {
	if s := strings.TrimSpace(summary); s != "" {
		return truncate(s, 200)
	}
	d := strings.TrimSpace(details)
	if i := strings.IndexByte(d, '\n'); i >= 0 {
		d = d[:i]
	}
	return truncate(d, 120)
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
