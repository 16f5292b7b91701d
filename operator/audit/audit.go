// Package audit runs bulkhead config's Kubernetes checks (config/kubernetes:
// Pod Security Standards, workload checks, secrets in env, and whatever
// checks that package gains) on a live workload object.
package audit

import (
	"encoding/json"
	"fmt"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
)

// Auditor checks workloads; build it once.
type Auditor struct {
	scanner *kubernetes.Scanner
	levels  map[string]kubernetes.Level
}

// New builds an Auditor with config/kubernetes' options.
func New(o kubernetes.Options) (*Auditor, error) {
	s, err := kubernetes.New(o)
	if err != nil {
		return nil, err
	}
	a := &Auditor{scanner: s, levels: map[string]kubernetes.Level{}}
	for _, c := range kubernetes.Checks {
		a.levels[c.ID] = c.Level
	}
	return a, nil
}

// Result is one workload's audit.
type Result struct {
	// Findings are the checks that failed (suppressed ones marked),
	// located at "namespace/Kind/name".
	Findings []finding.Finding
	// PodSecurity is the Pod Security Standards level the workload meets:
	// "restricted", "baseline" or "privileged".
	PodSecurity string
}

// Workload audits w's object as it is stored in the cluster (managed
// fields and status dropped), under the name "namespace/Kind/name".
func (a *Auditor) Workload(w *cluster.Workload) (*Result, error) {
	raw, err := json.Marshal(w.Object)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	m["apiVersion"], m["kind"] = cluster.APIVersion(w.Kind), w.Kind
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
	raw, err = json.Marshal(m)
	if err != nil {
		return nil, err
	}
	name := w.Key()
	objs, err := kubernetes.ParseBytes(name, raw)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", name, err)
	}
	var fs []finding.Finding
	for _, o := range objs {
		got, err := a.scanner.Object(o)
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", name, err)
		}
		fs = append(fs, got...)
	}
	kubernetes.SortFindings(fs)
	return &Result{Findings: fs, PodSecurity: a.level(fs)}, nil
}

// level is the strictest Pod Security level no active finding breaks.
func (a *Auditor) level(fs []finding.Finding) string {
	lvl := "restricted"
	for _, f := range fs {
		if f.Suppressed != nil {
			continue
		}
		switch a.levels[f.ID] {
		case kubernetes.LevelBaseline:
			return "privileged"
		case kubernetes.LevelRestricted:
			lvl = "baseline"
		}
	}
	return lvl
}
