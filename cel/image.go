package cel

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
)

// ImageConfigPath names the image configuration in the locations of the
// findings of imageconfig checks (the image audit's name for it too).
const ImageConfigPath = "image config"

// ImageConfigFindings runs checks of target imageconfig over an image's
// configuration: one misconfiguration finding per place a check fails,
// located at "image config" (":" and the field path when the check gives
// one). target names the image in the findings.
func ImageConfigFindings(checks []*Check, cfg *v1.ConfigFile, target string) ([]finding.Finding, error) {
	if len(checks) == 0 {
		return nil, nil
	}
	if cfg == nil {
		return nil, fmt.Errorf("the image has no configuration for the %d imageconfig checks", len(checks))
	}
	vars, err := ImageConfigVars(cfg)
	if err != nil {
		return nil, err
	}
	var out []finding.Finding
	for _, c := range checks {
		if c.Target != ImageConfig {
			return out, fmt.Errorf("check %s: target %s, not %s", c.ID, c.Target, ImageConfig)
		}
		places, err := c.Eval(vars)
		if err != nil {
			return out, err
		}
		seen := map[Place]bool{}
		for _, pl := range places {
			if seen[pl] {
				continue
			}
			seen[pl] = true
			path := ImageConfigPath
			if pl.Path != "" {
				path += ":" + pl.Path
			}
			f := finding.Finding{
				ID: c.ID, Kind: finding.KindMisconfiguration, Severity: c.SeverityLevel(), SeveritySource: "policy",
				Title: orElse(c.Title, c.Message), Description: orElse(c.Message, c.Title), Target: target, Fix: c.Fix,
				Location: &finding.Location{Path: path},
			}
			if c.Link != "" {
				f.References = []string{c.Link}
			}
			out = append(out, f)
		}
	}
	return out, nil
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Others lists the IDs of a policy's checks whose target is none of ts,
// grouped by target: what a command that scans only ts does not run.
func (p *Policy) Others(ts ...Target) map[Target][]string {
	if p == nil {
		return nil
	}
	var out map[Target][]string
next:
	for _, c := range p.Checks {
		for _, t := range ts {
			if c.Target == t {
				continue next
			}
		}
		if out == nil {
			out = map[Target][]string{}
		}
		out[c.Target] = append(out[c.Target], c.ID)
	}
	return out
}
