package controller

import (
	"context"
	"slices"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

// Assessment is what the operator and bulkhead k8s learn of one workload
// before any image is scanned: its containers resolved to digests, the
// digests to scan, and its configuration audit.
type Assessment struct {
	Workload   *cluster.Workload
	Containers []v1alpha1.Container
	// Targets are the distinct digests, in container order.
	Targets []scanner.Target
	Audit   *audit.Result
}

// Digests are the distinct digests of the workload's containers.
func (a *Assessment) Digests() []string {
	var out []string
	for _, t := range a.Targets {
		out = append(out, t.Digest)
	}
	return out
}

// Assess resolves a workload's images and audits its configuration. An
// image that cannot be resolved is recorded on its container (Error), not
// returned as an error.
func Assess(ctx context.Context, w *cluster.Workload, r *resolve.Resolver, a *audit.Auditor) (*Assessment, error) {
	res := &Assessment{Workload: w}
	spec := &w.Template.Spec
	for _, ci := range resolve.Containers(spec, w.Pods) {
		c := v1alpha1.Container{Name: ci.Name, Init: ci.Init, Image: ci.Image}
		img, err := r.Container(ctx, w.Namespace, spec, ci.Image, ci.ImageID)
		if err != nil {
			c.Error = err.Error()
			if len(c.Error) > 1000 {
				c.Error = c.Error[:1000]
			}
		} else {
			c.Digest, c.ImageReport = img.Digest, reports.ImageName(img.Digest)
			if !slices.ContainsFunc(res.Targets, func(t scanner.Target) bool { return t.Digest == img.Digest }) {
				res.Targets = append(res.Targets, scanner.Target{Digest: img.Digest, Repository: img.Repository, Auth: img.Auth})
			}
		}
		res.Containers = append(res.Containers, c)
	}
	var err error
	if res.Audit, err = a.Workload(w); err != nil {
		return nil, err
	}
	return res, nil
}
