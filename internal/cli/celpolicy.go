package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/diag"
)

// celRunsIn says where the checks of each CEL target run (%s: the file).
var celRunsIn = map[cel.Target]string{
	cel.Dockerfile:  "they run on Dockerfiles: bulkhead config --policy %s PATH",
	cel.Kubernetes:  "they run on manifests: bulkhead config --policy %s PATH, or in a gate/admission policy's cel rule",
	cel.ImageConfig: "they run on an image: bulkhead image --policy %s IMAGE, or in a gate/admission policy's cel rule",
}

// loadCELPolicy loads a CEL checks file for a command that scans only the
// targets runs (reads: what it scans, in words). Checks of another target
// are never dropped silently: each is named in a warning saying where it
// runs, and a file with no check the command runs is an error.
func loadCELPolicy(path, command, reads string, runs ...cel.Target) (*cel.Policy, []diag.Diagnostic, error) {
	p, err := cel.LoadFile(path)
	if err != nil {
		return nil, nil, err
	}
	others := p.Others(runs...)
	targets := make([]cel.Target, 0, len(others))
	n := 0
	for t, ids := range others {
		targets = append(targets, t)
		n += len(ids)
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i] < targets[j] })
	var notes []string
	for _, t := range targets {
		ids := others[t]
		list := ids
		if len(list) > 10 {
			list = list[:10]
		}
		more := ""
		if len(ids) > len(list) {
			more = fmt.Sprintf(" and %d more", len(ids)-len(list))
		}
		notes = append(notes, fmt.Sprintf("%d %s of target %s (%s%s): %s",
			len(ids), plural(len(ids), "check", "checks"), t, strings.Join(list, ", "), more, fmt.Sprintf(celRunsIn[t], path)))
	}
	if n == len(p.Checks) {
		names := make([]string, len(runs))
		for i, t := range runs {
			names[i] = string(t)
		}
		return nil, nil, fmt.Errorf("--policy %s: no check of target %s, the ones %s runs (it reads %s); %s",
			path, strings.Join(names, " or "), command, reads, strings.Join(notes, "; "))
	}
	ds := make([]diag.Diagnostic, len(notes))
	for i, note := range notes {
		ds[i] = diag.Warnf(diag.PolicyCheckSkipped, "--policy %s: %s does not run %s", path, command, note).At(diag.Location{Path: path})
	}
	return p, ds, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
