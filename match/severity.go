package match

import (
	"fmt"
	"strings"

	"github.com/bulkhead-sec/bulkhead/finding"
	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
	gocvss20 "github.com/pandatix/go-cvss/20"
	gocvss30 "github.com/pandatix/go-cvss/30"
	gocvss31 "github.com/pandatix/go-cvss/31"
	gocvss40 "github.com/pandatix/go-cvss/40"
	"google.golang.org/protobuf/types/known/structpb"
)

// Severity precedence (first source present wins; if several records of a
// merged finding give the same source, the highest rating wins):
//
//  1. For distro packages, the distro's own rating: Ubuntu's priority
//     (severity type "Ubuntu"), Debian's urgency
//     (affected[].ecosystem_specific.urgency), AlmaLinux/Rocky/Red Hat's
//     advisory severity (the "Important:" summary prefix). The distro rates
//     the flaw as its build ships it, which CVSS for the upstream does not.
//     Values that are not ratings ("not yet assigned", "untriaged") fall
//     through.
//  2. CVSS v4.0 base score, then CVSS v3.x base score (go-cvss), rated by
//     the specification's bands (0.1-3.9 LOW, 4.0-6.9 MEDIUM, 7.0-8.9 HIGH,
//     9.0-10 CRITICAL).
//  3. database_specific.severity (GitHub's rating on GHSA records; MODERATE
//     is MEDIUM).
//  4. CVSS v2 base score (no CRITICAL band in v2: 7.0-10 is HIGH).
//  5. UNKNOWN.
const (
	srcDistro = iota
	srcCVSS4
	srcCVSS3
	srcDatabase
	srcCVSS2
	srcNone
)

type rating struct {
	rank   int
	sev    finding.Severity
	source string
}

func (m *matcher) rate(f *finding.Finding, hs []hit) {
	best := rating{rank: srcNone, sev: finding.Unknown}
	consider := func(r rating) {
		if r.rank < best.rank || (r.rank == best.rank && r.sev > best.sev) {
			best = r
		}
	}
	for _, h := range hs {
		sevs := append([]*osvpb.Severity{}, h.v.GetSeverity()...)
		for _, a := range h.aff {
			sevs = append(sevs, a.GetSeverity()...)
		}
		for _, s := range sevs {
			c, r, ok := m.scoreSeverity(s)
			if !ok {
				continue
			}
			if c != nil {
				c.Source = h.v.GetId()
				if !hasCVSS(f.CVSS, *c) {
					f.CVSS = append(f.CVSS, *c)
				}
			}
			consider(r)
		}
		if isDistro(h.eco) {
			for _, a := range h.aff {
				if u := structString(a.GetEcosystemSpecific(), "urgency"); u != "" {
					if sev, ok := distroRating(u); ok {
						consider(rating{srcDistro, sev, "Debian urgency"})
					}
				}
			}
			if prefix, _, ok := strings.Cut(h.v.GetSummary(), ":"); ok && rhelFamily(h.eco) {
				if sev, ok := distroRating(prefix); ok {
					base, _, _ := strings.Cut(h.eco, ":")
					consider(rating{srcDistro, sev, base + " severity"})
				}
			}
		}
		if s := structString(h.v.GetDatabaseSpecific(), "severity"); s != "" {
			if sev, err := finding.ParseSeverity(s); err == nil && sev != finding.Unknown {
				consider(rating{srcDatabase, sev, "database_specific.severity"})
			}
		}
	}
	f.Severity, f.SeveritySource = best.sev, best.source
}

func hasCVSS(cs []finding.CVSS, c finding.CVSS) bool {
	for _, x := range cs {
		if x.Vector == c.Vector {
			return true
		}
	}
	return false
}

type cvssScore struct {
	c  *finding.CVSS
	r  rating
	ok bool
}

// scoreSeverity reads one OSV severity entry, caching scored vectors.
func (m *matcher) scoreSeverity(s *osvpb.Severity) (*finding.CVSS, rating, bool) {
	k := s.GetType().String() + "\x00" + s.GetScore()
	if cs, ok := m.cvss[k]; ok {
		if cs.c != nil {
			c := *cs.c
			return &c, cs.r, cs.ok
		}
		return nil, cs.r, cs.ok
	}
	c, r, ok := scoreSeverity(s)
	if len(m.cvss) < 1<<16 {
		cached := cvssScore{r: r, ok: ok}
		if c != nil {
			cc := *c
			cached.c = &cc
		}
		m.cvss[k] = cached
	}
	return c, r, ok
}

// scoreSeverity reads one OSV severity entry.
func scoreSeverity(s *osvpb.Severity) (*finding.CVSS, rating, bool) {
	score := strings.TrimSpace(s.GetScore())
	switch s.GetType() {
	case osvpb.Severity_CVSS_V4:
		v, err := gocvss40.ParseVector(score)
		if err != nil {
			return nil, rating{}, false
		}
		n := v.Score()
		return &finding.CVSS{Version: "4.0", Vector: score, Score: n}, rating{srcCVSS4, band(n, true), "CVSS v4.0"}, true
	case osvpb.Severity_CVSS_V3:
		var n float64
		ver := "3.1"
		switch {
		case strings.HasPrefix(score, "CVSS:3.0/"):
			v, err := gocvss30.ParseVector(score)
			if err != nil {
				return nil, rating{}, false
			}
			n, ver = v.BaseScore(), "3.0"
		default:
			v, err := gocvss31.ParseVector(score)
			if err != nil {
				return nil, rating{}, false
			}
			n = v.BaseScore()
		}
		return &finding.CVSS{Version: ver, Vector: score, Score: n}, rating{srcCVSS3, band(n, true), "CVSS v" + ver}, true
	case osvpb.Severity_CVSS_V2:
		v, err := gocvss20.ParseVector(strings.TrimPrefix(score, "CVSS:2.0/"))
		if err != nil {
			return nil, rating{}, false
		}
		n := v.BaseScore()
		return &finding.CVSS{Version: "2.0", Vector: score, Score: n}, rating{srcCVSS2, band(n, false), "CVSS v2.0"}, true
	case osvpb.Severity_Ubuntu:
		if sev, ok := distroRating(score); ok {
			return nil, rating{srcDistro, sev, "Ubuntu priority"}, true
		}
	}
	return nil, rating{}, false
}

// band rates a CVSS base score. v2 has no CRITICAL band.
func band(score float64, critical bool) finding.Severity {
	switch {
	case score >= 9.0 && critical:
		return finding.Critical
	case score >= 7.0:
		return finding.High
	case score >= 4.0:
		return finding.Medium
	case score > 0:
		return finding.Low
	}
	return finding.Unknown
}

// distroRating reads a distro's rating word. "unimportant" and "negligible"
// are LOW; words that are not ratings report ok=false.
func distroRating(s string) (finding.Severity, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return finding.Critical, true
	case "high", "important":
		return finding.High, true
	case "medium", "moderate":
		return finding.Medium, true
	case "low", "unimportant", "negligible":
		return finding.Low, true
	}
	return finding.Unknown, false
}

func isDistro(eco string) bool {
	base, _, _ := strings.Cut(eco, ":")
	for _, l := range languageEcosystems {
		if base == l {
			return false
		}
	}
	return true
}

func structString(s *structpb.Struct, key string) string {
	if s == nil {
		return ""
	}
	v, ok := s.GetFields()[key]
	if !ok {
		return ""
	}
	if sv, ok := v.GetKind().(*structpb.Value_StringValue); ok {
		return sv.StringValue
	}
	return fmt.Sprint(v.AsInterface())
}
