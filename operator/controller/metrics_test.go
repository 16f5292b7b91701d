package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

const dashboardPath = "../../deploy/grafana/bulkhead-operator.json"

// scrape reads a Prometheus text exposition over HTTP.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// value is the sum of the series of mf that labels match.
func value(mf *dto.MetricFamily, labels map[string]string) (float64, bool) {
	if mf == nil {
		return 0, false
	}
	// the sum over the series the labels match
	sum, found := 0.0, false
	for _, m := range mf.GetMetric() {
		if matches(m, labels) {
			found = true
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum, found
}

// TestMetricsEndpointAndDashboard runs the operator as bulkhead operator
// does (its metrics in controller-runtime's registry, served by the
// manager) on a real API server, scrapes /metrics over HTTP and checks
// the metrics: vulnerabilities by severity and namespace, scans
// queued/running/failed, the age of the oldest report; then that every
// metric the Grafana dashboard (deploy/grafana) queries is one the
// operator serves.
func TestMetricsEndpointAndDashboard(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	r := newRegistry(t)
	r.push(t, "metrics", "v1", "4.17.4", fmt.Sprint(t.Name(), time.Now().UnixNano()))
	ns := e.Namespace(t, "metrics", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip(err)
	}
	addr := l.Addr().String()
	l.Close()
	mgr, err := controller.NewManager(e.Config, controller.ManagerOptions{Namespaces: []string{ns}, MetricsAddr: addr})
	if err != nil {
		t.Fatal(err)
	}
	m, err := scanner.NewMetrics(ctrlmetrics.Registry)
	if err != nil {
		t.Fatal(err)
	}
	aud, err := audit.New(kubernetes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controller.Setup(mgr, controller.Options{
		Scan:      &scanner.Config{Matcher: matcher, Insecure: true, TempDir: t.TempDir()},
		Scheduler: scanner.SchedulerOptions{Workers: 1, TTL: time.Hour, Metrics: m},
		Resolver:  resolve.New(resolve.Options{Insecure: true}),
		Auditor:   aud,
		Pending:   time.Second,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := controller.SetupRBAC(mgr, controller.RBACOptions{Namespaces: []string{ns}, MinInterval: 500 * time.Millisecond, Registerer: ctrlmetrics.Registry}); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	p := pod(ns, "web", r.host+"/metrics:v1")
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := directClient(t, e)
	waitFor(t, 60*time.Second, "the pod's report complete", func() (bool, string) {
		var wr v1alpha1.WorkloadReport
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: reports.WorkloadName("Pod", "web")}, &wr); err != nil {
			return false, err.Error()
		}
		return meta.IsStatusConditionTrue(wr.Status.Conditions, v1alpha1.ConditionComplete), "pending"
	})

	url := "http://" + addr + "/metrics"
	var mfs map[string]*dto.MetricFamily
	waitFor(t, 30*time.Second, "metrics of the scan and the RBAC assessment", func() (bool, string) {
		mfs = scrape(t, url)
		high, _ := value(mfs["bulkhead_operator_image_vulnerabilities"], map[string]string{"namespace": ns, "severity": "high"})
		assessed, _ := value(mfs["bulkhead_operator_rbac_assessments_total"], map[string]string{"result": "ok"})
		return high > 0 && assessed > 0, fmt.Sprintf("high=%v RBAC assessments=%v", high, assessed)
	})
	for _, c := range []struct {
		name   string
		labels map[string]string
		check  func(float64) bool
	}{
		{"bulkhead_operator_scans_total", map[string]string{"result": "scanned"}, func(v float64) bool { return v == 1 }},
		{"bulkhead_operator_scans_queued", nil, func(v float64) bool { return v == 0 }},
		{"bulkhead_operator_scans_running", nil, func(v float64) bool { return v == 0 }},
		{"bulkhead_operator_scans_failed_total", nil, func(v float64) bool { return v == 0 }},
		{"bulkhead_operator_oldest_report_age_seconds", nil, func(v float64) bool { return v >= 0 && v < 600 }},
		{"bulkhead_operator_image_vulnerabilities", map[string]string{"namespace": ns, "severity": "critical"}, func(v float64) bool { return v >= 0 }},
		{"bulkhead_operator_rbac_findings", map[string]string{"check": kubernetes.RBACWildcard}, func(v float64) bool { return v >= 1 }},
		{"bulkhead_operator_rbac_reports", nil, func(v float64) bool { return v >= 1 }},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "bulkhead-workloads"}, func(v float64) bool { return v >= 1 }},
	} {
		v, ok := value(mfs[c.name], c.labels)
		if !ok || !c.check(v) {
			t.Errorf("%s%v = %v (served %v)", c.name, c.labels, v, ok)
		}
	}

	// Every metric of the dashboard is served.
	served := map[string]bool{}
	for name, mf := range mfs {
		served[name] = true
		if mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY {
			served[name+"_bucket"], served[name+"_sum"], served[name+"_count"] = true, true, true
		}
	}
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			names := dashboardMetrics(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: %s queries no operator metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !served[n] {
					t.Errorf("panel %q: %s is not a metric the operator serves", p.Title, n)
				}
			}
		}
	}
	if exprs < 10 {
		t.Errorf("the dashboard has %d queries", exprs)
	}
	t.Logf("%d dashboard queries over %d served metric families", exprs, len(mfs))
}

// metricName finds the metric names in a PromQL expression: the
// operator's own and those of controller-runtime, the work queues and
// the process (labels and functions have none of these prefixes).
var metricName = regexp.MustCompile(`\b(?:bulkhead|controller_runtime|workqueue|process|go|rest_client|leader_election)_[a-zA-Z0-9_:]*`)

func dashboardMetrics(expr string) []string { return metricName.FindAllString(expr, -1) }
