package html

import (
	"fmt"
	"io"
	"strings"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/compare"
	"github.com/bulkhead-sec/bulkhead/report"
)

type compareView struct {
	Page                    page
	D                       *compare.Diff
	DB                      *report.DBInfo
	SizeA, SizeB, SizeDelta string
	Counts                  []sevCount
	NPkgs, NVulns           int
}

// Compare writes the comparison of two images: packages added, removed and
// changed, vulnerabilities introduced and fixed, configuration changes and
// size. db describes the vulnerability database both were matched with
// (nil when unknown).
func Compare(w io.Writer, d *compare.Diff, db *report.DBInfo, o Options) error {
	if d == nil {
		return fmt.Errorf("write HTML report: no comparison")
	}
	v := compareView{D: d, DB: db, SizeA: base.HumanSize(d.SizeA), SizeB: base.HumanSize(d.SizeB),
		NPkgs:  len(d.PackagesAdded) + len(d.PackagesRemoved) + len(d.PackagesChanged),
		NVulns: len(d.VulnsIntroduced) + len(d.VulnsFixed)}
	switch {
	case d.SizeDelta > 0:
		v.SizeDelta = "+" + base.HumanSize(d.SizeDelta)
	case d.SizeDelta < 0:
		v.SizeDelta = "-" + base.HumanSize(-d.SizeDelta)
	default:
		v.SizeDelta = "no change"
	}
	for _, s := range severities {
		n := 0
		for _, x := range d.VulnsIntroduced {
			if x.Severity == s {
				n++
			}
		}
		v.Counts = append(v.Counts, sevCount{Name: s.String(), Class: strings.ToLower(s.String()), N: n})
	}
	v.Page = newPage("bulkhead compare: "+d.A+" → "+d.B, o, v.Counts)
	return write(w, "compare", v)
}

// Gate is a policy gate's decisions, for GateReport.
type Gate struct {
	// Policy is the policy's name, Source its file, Rules how many rules
	// it has.
	Policy, Source string
	Rules          int
	Targets        []GateTarget
}

// GateTarget is one image or workload judged.
type GateTarget struct {
	Name, File string
	Line       int
	Allowed    bool
	// Exempt says why the target was not judged (an exempt namespace).
	Exempt  string
	Results []GateResult
	// Notes are the decision's warnings that are no warn result's
	// message (an expired exemption, a tag ignored next to a digest).
	Notes []string
	// Denials and Warnings count the results (GateReport fills them).
	Denials, Warnings int
}

// GateResult is one rule's outcome on one target.
type GateResult struct {
	Rule, Kind, Mode string
	// Outcome is "allow", "deny" or "warn".
	Outcome, Message string
	// Exemption describes the exemption that allowed it, if any.
	Exemption string
}

type gateView struct {
	Page                     page
	G                        *Gate
	Denied, Deny, Warn, Pass int
	NResults                 int
}

// GateReport writes a gate's decisions: each target's verdict and every
// rule's outcome on it.
func GateReport(w io.Writer, g *Gate, o Options) error {
	if g == nil {
		return fmt.Errorf("write HTML report: no gate decisions")
	}
	v := gateView{G: g}
	for i := range g.Targets {
		t := &g.Targets[i]
		t.Denials, t.Warnings = 0, 0
		if !t.Allowed {
			v.Denied++
		}
		v.NResults += len(t.Results)
		for _, r := range t.Results {
			switch r.Outcome {
			case "deny":
				t.Denials++
				v.Deny++
			case "warn":
				t.Warnings++
				v.Warn++
			default:
				v.Pass++
			}
		}
	}
	v.Page = newPage("bulkhead gate: "+g.Policy, o, nil)
	return write(w, "gate", v)
}
