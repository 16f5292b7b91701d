// Package controller is bulkhead's Kubernetes operator: controller-runtime
// reconcilers that keep a WorkloadReport per workload and an ImageReport
// per image digest, scanning each digest once in the operator's own
// bounded worker pool (package scanner) and again when its report's TTL
// expires.
package controller

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/jobs"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

// Options configure the operator's reconcilers.
type Options struct {
	Scan      *scanner.Config
	Scheduler scanner.SchedulerOptions
	Resolver  *resolve.Resolver
	Auditor   *audit.Auditor
	// Budget is each report object's size budget in bytes (0:
	// reports.DefaultBudget).
	Budget int
	// Reconciles is the number of workloads reconciled at once (default 4).
	Reconciles int
	// FollowServer is how often bulkhead server's changes (re-evaluated
	// findings) are read, to refresh the reports of the digests they name
	// without pulling (0: every minute; only with a server).
	FollowServer time.Duration
	// Pending is how soon a workload whose images are not all scanned is
	// looked at again, besides the ImageReport events (default 30s).
	Pending time.Duration
}

// Operator holds the reconcilers' shared state.
type Operator struct {
	o         Options
	c         client.Client
	reader    client.Reader
	api       client.Reader
	Scheduler *scanner.Scheduler
	metrics   *scanner.Metrics

	mu    sync.Mutex
	users map[string]map[string]bool // digest -> workload request keys
}

// Setup adds the operator's controllers and its scan workers to mgr.
func Setup(mgr manager.Manager, o Options) (*Operator, error) {
	if o.Reconciles <= 0 {
		o.Reconciles = 4
	}
	if o.Pending <= 0 {
		o.Pending = 30 * time.Second
	}
	op := &Operator{o: o, c: mgr.GetClient(), reader: mgr.GetClient(), api: mgr.GetAPIReader(), metrics: o.Scheduler.Metrics, users: map[string]map[string]bool{}}
	store := &imageStore{c: mgr.GetClient(), reader: mgr.GetClient(), budget: o.Budget, serverURL: o.Scan.ServerURL, metrics: o.Scheduler.Metrics}
	op.Scheduler = scanner.NewScheduler(o.Scan, store, o.Scheduler)
	o.Scheduler.Metrics.SetOldest(op.Scheduler)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		op.Scheduler.Start(ctx)
		<-ctx.Done()
		op.Scheduler.Wait()
		return nil
	})); err != nil {
		return nil, err
	}
	if o.Scan.Server != nil {
		if op.o.FollowServer <= 0 {
			op.o.FollowServer = time.Minute
		}
		if err := mgr.Add(manager.RunnableFunc(op.followServer)); err != nil {
			return nil, err
		}
	}
	b := ctrl.NewControllerManagedBy(mgr).Named("bulkhead-workloads").
		WithOptions(controller.Options{MaxConcurrentReconciles: o.Reconciles, SkipNameValidation: &skipNameValidation})
	for _, kind := range cluster.Kinds {
		b = b.Watches(cluster.NewObject(kind), handler.EnqueueRequestsFromMapFunc(op.mapObject(kind)))
	}
	b = b.Watches(&v1alpha1.ImageReport{}, handler.EnqueueRequestsFromMapFunc(op.mapImageReport))
	if err := b.Complete(reconcile.Func(op.reconcileWorkload)); err != nil {
		return nil, err
	}
	err := ctrl.NewControllerManagedBy(mgr).Named("bulkhead-imagereports").For(&v1alpha1.ImageReport{}).
		WithOptions(controller.Options{SkipNameValidation: &skipNameValidation}).
		Complete(reconcile.Func(op.reconcileImageReport))
	if err != nil {
		return nil, err
	}
	return op, nil
}

// request encodes a workload as a request: its namespace, and
// "Kind/name" as the name (a name holds no '/').
func request(ns, kind, name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: kind + "/" + name}}
}

func (op *Operator) mapObject(kind string) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request {
		if jobs.IsScan(obj) {
			// The operator's own scan Jobs and their pods are no workloads.
			return nil
		}
		k, n, err := cluster.Top(ctx, op.reader, kind, obj)
		if err != nil {
			log.FromContext(ctx).Error(err, "finding the workload of", "kind", kind, "namespace", obj.GetNamespace(), "name", obj.GetName())
			return nil
		}
		return []reconcile.Request{request(obj.GetNamespace(), k, n)}
	}
}

// mapImageReport wakes the workloads that run a digest when its report
// changes.
func (op *Operator) mapImageReport(_ context.Context, obj client.Object) []reconcile.Request {
	r, ok := obj.(*v1alpha1.ImageReport)
	if !ok {
		return nil
	}
	op.mu.Lock()
	defer op.mu.Unlock()
	var out []reconcile.Request
	for key := range op.users[r.Report.Digest] {
		ns, name, _ := strings.Cut(key, "|")
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}})
	}
	return out
}

// serverChange is one entry of GET /api/v1/changes (store.Change).
type serverChange struct {
	Digest string    `json:"digest"`
	At     time.Time `json:"at"`
}

// followServer reads bulkhead server's changes (findings that appeared or
// disappeared when it re-evaluated its stored inventories against a new
// database) and refreshes the reports of those digests from the server.
func (op *Operator) followServer(ctx context.Context) error {
	since := time.Now().UTC()
	t := time.NewTicker(op.o.FollowServer)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var changes []serverChange
		q := url.Values{"since": {since.Format(time.RFC3339Nano)}, "limit": {"1000"}}
		if err := op.o.Scan.Server.Get(ctx, "/api/v1/changes", q, &changes); err != nil {
			log.FromContext(ctx).Error(err, "reading bulkhead server's changes; trying again", "server", op.o.Scan.ServerURL)
			continue
		}
		seen := map[string]bool{}
		for _, c := range changes {
			if c.At.After(since) {
				since = c.At
			}
			if !seen[c.Digest] {
				seen[c.Digest] = true
				op.Scheduler.Refresh(c.Digest)
			}
		}
	}
}

// reconcileImageReport removes an ImageReport once its TTL has expired
// and no workload runs its digest any more. That is always safe: an
// expired report is rescanned before any workload uses it again.
func (op *Operator) reconcileImageReport(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var r v1alpha1.ImageReport
	if err := op.reader.Get(ctx, req.NamespacedName, &r); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	exp := op.Scheduler.Expiry(r.Report.ScannedAt.Time, r.Report.Error != "")
	if d := time.Until(exp); d > 0 {
		return reconcile.Result{RequeueAfter: d + time.Second}, nil
	}
	op.mu.Lock()
	used := len(op.users[r.Report.Digest]) > 0
	op.mu.Unlock()
	if used {
		// The workloads that run it ask for its rescan.
		return reconcile.Result{RequeueAfter: op.Scheduler.TTL()}, nil
	}
	op.metrics.Forget(r.Report.Digest)
	return reconcile.Result{}, client.IgnoreNotFound(op.c.Delete(ctx, &r, client.Preconditions{ResourceVersion: &r.ResourceVersion}))
}

func (op *Operator) use(req reconcile.Request, digests []string) {
	key := req.Namespace + "|" + req.Name
	op.mu.Lock()
	defer op.mu.Unlock()
	for d, ws := range op.users {
		if ws[key] && !slices.Contains(digests, d) {
			delete(ws, key)
			if len(ws) == 0 {
				delete(op.users, d)
			}
		}
	}
	for _, d := range digests {
		if op.users[d] == nil {
			op.users[d] = map[string]bool{}
		}
		op.users[d][key] = true
	}
}

func (op *Operator) reconcileWorkload(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	kind, name, ok := strings.Cut(req.Name, "/")
	if !ok {
		return reconcile.Result{}, nil
	}
	w, err := cluster.Load(ctx, op.reader, kind, req.Namespace, name)
	if err != nil {
		return reconcile.Result{}, err
	}
	key := req.Namespace + "/" + kind + "/" + name
	if w == nil {
		// Gone, or run by another workload: its report goes with it
		// (owner reference).
		op.use(req, nil)
		op.metrics.Workload(key, req.Namespace, nil)
		return reconcile.Result{}, nil
	}
	res, err := Assess(ctx, w, op.o.Resolver, op.o.Auditor)
	if err != nil {
		return reconcile.Result{}, err
	}
	digests := res.Digests()
	op.use(req, digests)
	op.metrics.Workload(key, req.Namespace, digests)

	var requeue time.Duration
	images := map[string]*v1alpha1.ImageReport{}
	for _, t := range res.Targets {
		state, until, err := op.Scheduler.Want(ctx, t)
		if err != nil {
			return reconcile.Result{}, err
		}
		switch state {
		case scanner.Fresh:
			if d := time.Until(until) + time.Second; requeue == 0 || d < requeue {
				requeue = d
			}
		default:
			requeue = min(op.o.Pending, max(requeue, op.o.Pending))
		}
		var ir v1alpha1.ImageReport
		if err := op.reader.Get(ctx, client.ObjectKey{Name: reports.ImageName(t.Digest)}, &ir); err == nil {
			images[t.Digest] = &ir
		} else if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
	}
	for _, c := range res.Containers {
		if c.Error != "" {
			// Unresolved images are tried again.
			requeue = min(op.o.Pending, max(requeue, op.o.Pending))
		}
	}
	want, err := reports.NewWorkloadReport(reports.Workload{
		Kind: w.Kind, Namespace: w.Namespace, Name: w.Name, UID: string(w.UID),
		Containers: res.Containers, Images: images, Audit: res.Audit.Findings, PodSecurity: res.Audit.PodSecurity, UpdatedAt: time.Now(),
	}, op.o.Budget)
	if err != nil {
		return reconcile.Result{}, err
	}
	if err := op.putWorkloadReport(ctx, want); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{RequeueAfter: requeue}, nil
}

// putWorkloadReport creates or updates a WorkloadReport, leaving it alone
// when nothing but its time would change.
func (op *Operator) putWorkloadReport(ctx context.Context, want *v1alpha1.WorkloadReport) error {
	var cur v1alpha1.WorkloadReport
	err := op.reader.Get(ctx, client.ObjectKeyFromObject(want), &cur)
	if apierrors.IsNotFound(err) {
		err = op.c.Create(ctx, want)
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The cache has not seen our own create yet: ask the API server.
		if err = op.api.Get(ctx, client.ObjectKeyFromObject(want), &cur); err != nil {
			return fmt.Errorf("workload report %s/%s: %w", want.Namespace, want.Name, err)
		}
	}
	if err != nil {
		return err
	}
	same := func(a, b *v1alpha1.WorkloadReport) bool {
		ra, rb := a.Report, b.Report
		ra.UpdatedAt, rb.UpdatedAt = rb.UpdatedAt, ra.UpdatedAt
		return apiequality.Semantic.DeepEqual(ra, rb) && len(a.Status.Conditions) == len(b.Status.Conditions) &&
			(len(a.Status.Conditions) == 0 || a.Status.Conditions[0].Status == b.Status.Conditions[0].Status && a.Status.Conditions[0].Message == b.Status.Conditions[0].Message)
	}
	if same(&cur, want) {
		return nil
	}
	want.ResourceVersion = cur.ResourceVersion
	return op.c.Update(ctx, want)
}

// skipNameValidation lets several managers run in one process (tests, a
// restart in place); controller names need not be unique across them.
var skipNameValidation = true
