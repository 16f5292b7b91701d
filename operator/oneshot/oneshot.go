// Package oneshot is bulkhead k8s: the operator's code path run once
// against a live cluster, from a laptop. Workloads are found and audited,
// their images resolved and deduplicated by digest, each digest scanned
// once in a bounded pool, and the same report objects the operator writes
// are built (not written) for each workload and image. The RBAC assessment
// is the operator's too (operator/rbac.Assess), split per role.
package oneshot

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/rbac"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

// Selector picks workloads: a kind and name ("deployment/web"), or every
// workload of a namespace (Kind empty).
type Selector struct {
	Namespace, Kind, Name string
}

// Options configure a run.
type Options struct {
	// Namespaces limit the workloads listed (none: all).
	Namespaces []string
	// Select keeps only the workloads a selector picks (none: all).
	Select   []Selector
	Scan     *scanner.Config
	Resolver *resolve.Resolver
	Auditor  *audit.Auditor
	// Workers is the number of scans run at once (default 2).
	Workers int
	// Budget is the report size budget (0: reports.DefaultBudget).
	Budget int
	// SkipWorkloads leaves the workloads and their images out (an RBAC
	// assessment alone).
	SkipWorkloads bool
	// RBAC assesses the Roles, ClusterRoles and their bindings (Roles and
	// RoleBindings of Namespaces only; ClusterRoles always), as the
	// operator's RBAC controller does.
	RBAC bool
}

// Workload is one workload's outcome.
type Workload struct {
	*controller.Assessment
	Report *v1alpha1.WorkloadReport
}

// Image is one digest's outcome.
type Image struct {
	Target  scanner.Target
	Outcome *scanner.Outcome
	Err     error
	Report  *v1alpha1.ImageReport
	// Workloads are the keys of the workloads that run it.
	Workloads []string
}

// Result is a run's outcome.
type Result struct {
	Workloads []*Workload
	// Images by digest; Digests in the order first seen.
	Images  map[string]*Image
	Digests []string
	// RBAC is the RBAC assessment per role (nil unless Options.RBAC).
	RBAC *rbac.Assessment
}

func (s Selector) picks(w *cluster.Workload) bool {
	if s.Namespace != "" && s.Namespace != w.Namespace {
		return false
	}
	return s.Kind == "" || (s.Kind == w.Kind && s.Name == w.Name)
}

// Run scans the cluster r reads.
func Run(ctx context.Context, r client.Reader, o Options) (*Result, error) {
	res := &Result{Images: map[string]*Image{}}
	if o.RBAC {
		a, err := rbac.Assess(ctx, r, o.Namespaces, time.Now())
		if err != nil {
			return nil, fmt.Errorf("RBAC assessment: %w", err)
		}
		res.RBAC = a
	}
	if o.SkipWorkloads {
		return res, nil
	}
	ws, err := cluster.List(ctx, r, o.Namespaces)
	if err != nil {
		return nil, err
	}
	if len(o.Select) > 0 {
		ws = slices.DeleteFunc(ws, func(w *cluster.Workload) bool {
			return !slices.ContainsFunc(o.Select, func(s Selector) bool { return s.picks(w) })
		})
		for _, s := range o.Select {
			if s.Kind != "" && !slices.ContainsFunc(ws, s.picks) {
				return nil, fmt.Errorf("%s/%s not found in namespace %q (or another workload runs it); list them with kubectl get %s -n %s", s.Kind, s.Name, s.Namespace, s.Kind, s.Namespace)
			}
		}
	}
	for _, w := range ws {
		a, err := controller.Assess(ctx, w, o.Resolver, o.Auditor)
		if err != nil {
			return nil, err
		}
		res.Workloads = append(res.Workloads, &Workload{Assessment: a})
		for _, t := range a.Targets {
			img := res.Images[t.Digest]
			if img == nil {
				img = &Image{Target: t}
				res.Images[t.Digest] = img
				res.Digests = append(res.Digests, t.Digest)
			}
			img.Workloads = append(img.Workloads, w.Key())
		}
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 2
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	for _, d := range res.Digests {
		img := res.Images[d]
		g.Go(func() error {
			out, err := o.Scan.Scan(gctx, img.Target)
			if gctx.Err() != nil {
				return gctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			img.Outcome, img.Err = out, err
			if err == nil {
				in := reports.Image{Digest: d, Repository: img.Target.Repository, Result: out.Result, ScannedAt: out.ScannedAt}
				if o.Scan.ServerURL != "" {
					in.Server, in.ScanID = o.Scan.ServerURL, out.ScanID
				}
				rep, rerr := reports.NewImageReport(in, o.Budget)
				if rerr != nil {
					return rerr
				}
				img.Report = rep
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	now := time.Now()
	for _, w := range res.Workloads {
		images := map[string]*v1alpha1.ImageReport{}
		for _, t := range w.Targets {
			if img := res.Images[t.Digest]; img.Report != nil {
				images[t.Digest] = img.Report
			}
		}
		wl := w.Workload
		rep, err := reports.NewWorkloadReport(reports.Workload{
			Kind: wl.Kind, Namespace: wl.Namespace, Name: wl.Name, UID: string(wl.UID),
			Containers: w.Containers, Images: images, Audit: w.Audit.Findings, PodSecurity: w.Audit.PodSecurity, UpdatedAt: now,
		}, o.Budget)
		if err != nil {
			return nil, err
		}
		w.Report = rep
	}
	return res, nil
}
