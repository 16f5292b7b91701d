package dashboard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// The image page's base image and signature status (the scan's
// store.Provenance).

// maxCandidates bounds the recommended bases the image page lists.
const maxCandidates = 5

type provenanceView struct {
	Base       *store.BaseImage
	Current    string // the current base's OS, libc, size and vulnerabilities
	Candidates []candidateView
	More       int
	Signature  *store.SignatureStatus
}

type candidateView struct {
	Ref, OS, Vulns, Size, Gains, Needs string
	DropIn                             bool
}

// severityOrder is the order vulnerability counts are written in.
var severityOrder = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// vulnWords writes counts by severity: "2 HIGH, 1 LOW", "none".
func vulnWords(m map[string]int, signed bool) string {
	var parts []string
	for _, s := range severityOrder {
		if n := m[s]; n != 0 {
			if signed && n > 0 {
				parts = append(parts, fmt.Sprintf("+%d %s", n, s))
			} else {
				parts = append(parts, fmt.Sprintf("%d %s", n, s))
			}
		}
	}
	if len(parts) == 0 {
		if signed {
			return "no change"
		}
		return "none"
	}
	return strings.Join(parts, ", ")
}

func signedSize(n int64) string {
	if n > 0 {
		return "+" + base.HumanSize(n)
	}
	return base.HumanSize(n)
}

// provenance reads a scan's provenance; nil when it has none.
func (d *Dashboard) provenance(ctx context.Context, scanID int64) (*provenanceView, error) {
	p, err := d.st.Provenance(ctx, scanID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	v := &provenanceView{Base: p.Base, Signature: p.Signature}
	if p.Base != nil && p.Base.Recommendation != nil {
		rec := p.Base.Recommendation
		c := rec.Current
		v.Current = fmt.Sprintf("%s, libc %s, %s, %d packages, vulnerabilities: %s", or(c.OS, "unknown OS"), or(c.Libc, "unknown"), base.HumanSize(c.Size), c.Packages, vulnWords(c.Vulns, false))
		for i, x := range rec.Candidates {
			if i == maxCandidates {
				v.More = len(rec.Candidates) - i
				break
			}
			v.Candidates = append(v.Candidates, candidateView{Ref: x.Ref, OS: or(x.OS, "unknown OS"), Vulns: vulnWords(x.VulnsDelta, true), Size: signedSize(x.SizeDelta),
				Gains: strings.Join(x.Gains, "; "), Needs: strings.Join(x.NeedsChanges, "; "), DropIn: len(x.NeedsChanges) == 0})
		}
	}
	return v, nil
}

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
