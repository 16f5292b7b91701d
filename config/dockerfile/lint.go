package dockerfile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// Options tune the built-in checks.
type Options struct {
	// Severity overrides a check's severity by ID (e.g. make BH-DF-008,
	// FROM without a digest, HIGH for a pinned-digest policy).
	Severity map[string]finding.Severity
	// Disable turns checks off by ID.
	Disable []string
}

// Lint runs the built-in checks over a parsed file. Findings of inline-
// ignored instructions are kept, marked suppressed.
func Lint(f *File, opts Options) []finding.Finding {
	disabled := map[string]bool{}
	for _, id := range opts.Disable {
		disabled[strings.ToUpper(strings.TrimSpace(id))] = true
	}
	var out []finding.Finding
	for _, c := range Checks {
		if disabled[c.ID] {
			continue
		}
		sev := c.Severity
		if s, ok := opts.Severity[c.ID]; ok {
			sev = s
		}
		c := c
		c.Run(f, func(in *Instruction, detail string) {
			out = append(out, NewFinding(f, in, c.ID, sev, c.Title, detail, c.Fix, c.Link))
		})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Location.StartLine, out[j].Location.StartLine
		if a != b {
			return a < b
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// NewFinding builds the finding of a check on an instruction, honouring the
// instruction's inline ignores. Package cel uses it for user checks too.
func NewFinding(f *File, in *Instruction, id string, sev finding.Severity, title, detail, fix, link string) finding.Finding {
	fd := finding.Finding{
		ID:             id,
		Kind:           finding.KindMisconfiguration,
		Severity:       sev,
		SeveritySource: "bulkhead Dockerfile check",
		Title:          title,
		Description:    detail,
		Target:         f.Path,
		Location:       &finding.Location{Path: f.Path, StartLine: in.StartLine, EndLine: in.EndLine},
		Fix:            fix,
	}
	if link != "" {
		fd.References = []string{link}
	}
	for _, ig := range in.Ignore {
		if ig == id || ig == "ALL" {
			fd.Suppressed = &finding.Suppression{Kind: "ignore", Statement: fmt.Sprintf("# bulkhead:ignore:%s", ig), Source: fmt.Sprintf("%s:%d", f.Path, in.StartLine)}
			break
		}
	}
	return fd
}

// CheckByID returns a built-in check.
func CheckByID(id string) (Check, bool) {
	for _, c := range Checks {
		if c.ID == id {
			return c, true
		}
	}
	return Check{}, false
}
