package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/cluster"
	"github.com/bulkhead-sec/bulkhead/operator/rbac"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
)

// RBACOptions configure the RBAC assessment controller.
type RBACOptions struct {
	// Namespaces whose Roles, RoleBindings and workloads are read (none:
	// all); ClusterRoles and ClusterRoleBindings are always read.
	Namespaces []string
	// Budget is each report's size budget (0: reports.DefaultBudget).
	Budget int
	// MinInterval is the least time between two assessments: a burst of
	// changes (a deploy of many pods, a Helm release of many roles) makes
	// one assessment, not one per object (default 10s).
	MinInterval time.Duration
	// Registerer takes the controller's metrics (nil: none).
	Registerer prometheus.Registerer
}

// RBACMetrics are the RBAC assessment's Prometheus metrics.
type RBACMetrics struct {
	Findings    *prometheus.GaugeVec
	Reports     prometheus.Gauge
	Assessments *prometheus.CounterVec
}

func newRBACMetrics(reg prometheus.Registerer) (*RBACMetrics, error) {
	m := &RBACMetrics{
		Findings:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "bulkhead_operator_rbac_findings", Help: "Risky RBAC permissions (BH-K8S-201..209) of the cluster's roles and bindings, by severity and check."}, []string{"severity", "check"}),
		Reports:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "bulkhead_operator_rbac_reports", Help: "RbacAssessmentReports and ClusterRbacAssessmentReports the operator keeps."}),
		Assessments: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bulkhead_operator_rbac_assessments_total", Help: "RBAC assessments of the cluster, by result: ok or failed."}, []string{"result"}),
	}
	m.Assessments.WithLabelValues("ok")
	m.Assessments.WithLabelValues("failed")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.Findings, m.Reports, m.Assessments} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// rbacController keeps one RBAC assessment report per Role and
// ClusterRole. The assessment is of the whole cluster at once (a binding
// anywhere changes who holds a role), so every event enqueues one key.
type rbacController struct {
	o       RBACOptions
	c       client.Client
	reader  client.Reader
	metrics *RBACMetrics

	mu   sync.Mutex
	last time.Time
}

var rbacKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "rbac-assessment"}}

// SetupRBAC adds the RBAC assessment controller to mgr: it watches Roles,
// ClusterRoles, their bindings, the workloads' service accounts and its
// own reports, and writes an RbacAssessmentReport per Role and a
// ClusterRbacAssessmentReport per ClusterRole (owned by the role), with
// the checks of bulkhead config.
func SetupRBAC(mgr manager.Manager, o RBACOptions) (*RBACMetrics, error) {
	if o.MinInterval <= 0 {
		o.MinInterval = 10 * time.Second
	}
	m, err := newRBACMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	rc := &rbacController{o: o, c: mgr.GetClient(), reader: mgr.GetClient(), metrics: m}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{rbacKey} })
	// A workload matters to the assessment only by its service account.
	saChanged := predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return cluster.ServiceAccount(e.ObjectOld) != cluster.ServiceAccount(e.ObjectNew)
	}}
	b := ctrl.NewControllerManagedBy(mgr).Named("bulkhead-rbac").
		WithOptions(controller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: &skipNameValidation})
	for _, obj := range []client.Object{&rbacv1.Role{}, &rbacv1.ClusterRole{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRoleBinding{},
		&v1alpha1.RbacAssessmentReport{}, &v1alpha1.ClusterRbacAssessmentReport{}} {
		b = b.Watches(obj, one)
	}
	for _, kind := range cluster.Kinds {
		b = b.Watches(cluster.NewObject(kind), one, builder.WithPredicates(saChanged))
	}
	if err := b.Complete(reconcile.Func(rc.reconcile)); err != nil {
		return nil, err
	}
	// The informers' initial lists enqueue the key: one assessment at
	// start.
	return m, nil
}

func (rc *rbacController) reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	rc.mu.Lock()
	if wait := rc.o.MinInterval - time.Since(rc.last); !rc.last.IsZero() && wait > 0 {
		rc.mu.Unlock()
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	rc.last = time.Now()
	rc.mu.Unlock()
	err := rc.assess(ctx)
	result := "ok"
	if err != nil {
		result = "failed"
	}
	rc.metrics.Assessments.WithLabelValues(result).Inc()
	return reconcile.Result{}, err
}

func (rc *rbacController) assess(ctx context.Context) error {
	a, err := rbac.Assess(ctx, rc.reader, rc.o.Namespaces, time.Now())
	if err != nil {
		return err
	}
	if len(a.Unattributed) > 0 {
		var ids []string
		for _, f := range a.Unattributed {
			ids = append(ids, f.ID+" "+f.Description)
		}
		log.FromContext(ctx).Info("RBAC findings on bindings to roles that do not exist (no report holds them; create the role or delete the binding)",
			"count", len(a.Unattributed), "findings", strings.Join(ids[:min(len(ids), 5)], "; "))
	}
	byCheck := map[[2]string]float64{}
	wantNS, wantCluster := map[types.NamespacedName]bool{}, map[string]bool{}
	for _, in := range a.Roles {
		for _, f := range in.Findings {
			if f.Suppressed == nil {
				byCheck[[2]string{strings.ToLower(f.Severity.String()), f.ID}]++
			}
		}
		if in.Kind == "Role" {
			r, err := reports.NewRbacAssessmentReport(in, rc.o.Budget)
			if err != nil {
				return err
			}
			wantNS[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}] = true
			if err := rc.put(ctx, r, &v1alpha1.RbacAssessmentReport{}); err != nil {
				return err
			}
			continue
		}
		r, err := reports.NewClusterRbacAssessmentReport(in, rc.o.Budget)
		if err != nil {
			return err
		}
		wantCluster[r.Name] = true
		if err := rc.put(ctx, r, &v1alpha1.ClusterRbacAssessmentReport{}); err != nil {
			return err
		}
	}
	// Reports of roles that are gone (the garbage collector removes them
	// too, through the owner reference; this covers a cluster without it
	// and a role whose report was made before it had a UID).
	var nl v1alpha1.RbacAssessmentReportList
	if err := rc.reader.List(ctx, &nl, client.HasLabels{v1alpha1.LabelRoleKind}); err != nil {
		return err
	}
	for i := range nl.Items {
		r := &nl.Items[i]
		if !wantNS[types.NamespacedName{Namespace: r.Namespace, Name: r.Name}] && rc.watched(r.Namespace) {
			if err := client.IgnoreNotFound(rc.c.Delete(ctx, r)); err != nil {
				return err
			}
		}
	}
	var cl v1alpha1.ClusterRbacAssessmentReportList
	if err := rc.reader.List(ctx, &cl, client.HasLabels{v1alpha1.LabelRoleKind}); err != nil {
		return err
	}
	for i := range cl.Items {
		if r := &cl.Items[i]; !wantCluster[r.Name] {
			if err := client.IgnoreNotFound(rc.c.Delete(ctx, r)); err != nil {
				return err
			}
		}
	}
	rc.metrics.Findings.Reset()
	for k, n := range byCheck {
		rc.metrics.Findings.WithLabelValues(k[0], k[1]).Set(n)
	}
	rc.metrics.Reports.Set(float64(len(wantNS) + len(wantCluster)))
	return nil
}

func (rc *rbacController) watched(ns string) bool {
	if len(rc.o.Namespaces) == 0 {
		return true
	}
	for _, n := range rc.o.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// put creates or updates a report, leaving it alone when nothing but its
// time would change. cur is an empty object of want's kind.
func (rc *rbacController) put(ctx context.Context, want, cur client.Object) error {
	err := rc.reader.Get(ctx, client.ObjectKeyFromObject(want), cur)
	if apierrors.IsNotFound(err) {
		err = rc.c.Create(ctx, want)
		if apierrors.IsAlreadyExists(err) {
			return nil // the cache is behind our own create; the event brings us back
		}
		return err
	}
	if err != nil {
		return err
	}
	if sameRBAC(reportData(want), reportData(cur)) && apiequality.Semantic.DeepEqual(want.GetOwnerReferences(), cur.GetOwnerReferences()) {
		return nil
	}
	want.SetResourceVersion(cur.GetResourceVersion())
	if err := rc.c.Update(ctx, want); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("update %s: %w", want.GetName(), err)
	}
	return nil
}

func reportData(o client.Object) *v1alpha1.RBACReportData {
	switch r := o.(type) {
	case *v1alpha1.RbacAssessmentReport:
		return &r.Report
	case *v1alpha1.ClusterRbacAssessmentReport:
		return &r.Report
	}
	return nil
}

func sameRBAC(a, b *v1alpha1.RBACReportData) bool {
	x, y := *a, *b
	x.UpdatedAt = y.UpdatedAt
	return apiequality.Semantic.DeepEqual(x, y)
}
