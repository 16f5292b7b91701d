package kubernetes

import (
	"encoding/json"
	"fmt"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/finding"
)

// CELVars is what a CEL check of target "kubernetes" sees of an object
// (the variables package cel documents). The pod spec and containers are
// the decoded k8s.io/api values in their JSON form, so a field written as
// null or in an old spelling reads the way the API server reads it.
func CELVars(o *Object) (map[string]any, error) {
	vars := map[string]any{
		"object":      o.Raw,
		"kind":        o.Kind,
		"apiVersion":  o.APIVersion,
		"isWorkload":  o.Pod != nil,
		"podSpec":     map[string]any{},
		"podMeta":     map[string]any{},
		"podSpecPath": "",
		"containers":  []any{},
	}
	if o.Pod == nil {
		return vars, nil
	}
	p := o.Pod
	spec, err := toMap(&p.Spec)
	if err != nil {
		return nil, err
	}
	meta, err := toMap(&p.Meta)
	if err != nil {
		return nil, err
	}
	var cs []any
	for _, c := range p.Containers() {
		cm, err := toMap(c.C)
		if err != nil {
			return nil, err
		}
		sc, err := toMap(EffectiveSecurityContext(p.Spec.SecurityContext, c.C.SecurityContext))
		if err != nil {
			return nil, err
		}
		cs = append(cs, map[string]any{"name": c.C.Name, "type": c.Type, "path": c.Path, "container": cm, "securityContext": sc})
	}
	vars["podSpec"], vars["podMeta"], vars["podSpecPath"], vars["containers"] = spec, meta, p.SpecPath, cs
	return vars, nil
}

func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// CELChecks runs a policy's kubernetes checks on each object.
type CELChecks struct {
	checks []*cel.Check
}

// NewCELChecks selects the policy's checks of target kubernetes.
func NewCELChecks(p *cel.Policy) *CELChecks {
	return &CELChecks{checks: p.ForTarget(cel.Kubernetes)}
}

// Len is how many checks will run.
func (c *CELChecks) Len() int { return len(c.checks) }

// CheckObject implements ObjectChecker.
func (c *CELChecks) CheckObject(o *Object) ([]finding.Finding, error) {
	if len(c.checks) == 0 {
		return nil, nil
	}
	vars, err := CELVars(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", o.File, o.Kind, objectName(o), err)
	}
	var out []finding.Finding
	for _, ch := range c.checks {
		places, err := ch.Eval(vars)
		if err != nil {
			return out, fmt.Errorf("%s: %s %s: %w", o.File, o.Kind, objectName(o), err)
		}
		seen := map[cel.Place]bool{}
		for _, pl := range places {
			if seen[pl] {
				continue
			}
			seen[pl] = true
			path := pl.Path
			if path == "" {
				path = o.Path
			}
			title := ch.Title
			if title == "" {
				title = ch.Message
			}
			msg := ch.Message
			if msg == "" {
				msg = ch.Title
			}
			f := NewFinding(o, ch.ID, ch.SeverityLevel(), title, LevelNone, path,
				fmt.Sprintf("%s %s: %s", o.Kind, objectName(o), msg), ch.Fix, ch.Link)
			if pl.Line > 0 {
				f.Location.StartLine = pl.Line
			}
			f.SeveritySource = "policy"
			out = append(out, f)
		}
	}
	return out, nil
}
