package controller_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/reeval"
	"github.com/bulkhead-sec/bulkhead/server/servertest"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

const serverToken = "bkh_operator-test-admin-token-0123456789"

// With bulkhead server: the operator's scan is matched by the server and
// the report links to it; when the server re-evaluates its stored
// inventories against a new database (an OSV record for lodash
// imported), the operator refreshes the affected report from the server
// and pulls no image.
func TestOperatorFollowsServerReevaluation(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	dir := t.TempDir()
	importInto := func(path string, src string) *pipeline.Matcher {
		if _, err := vulndb.Import(ctx, path, []string{src}, vulndb.Options{}); err != nil {
			t.Fatal(err)
		}
		m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	// The server's first database knows no npm advisory; the second has
	// GHSA-35jh-r3h4-6jhm (lodash < 4.17.21).
	before := importInto(filepath.Join(dir, "before.db"), "../../match/testdata/osv/Go")
	after := importInto(filepath.Join(dir, "after.db"), "../../match/testdata/osv/npm")
	srv := servertest.Start(t, servertest.Options{Matcher: before, Token: serverToken})
	sc, st := srv.Client(t, server.RoleAdmin), srv.Store

	r := newRegistry(t)
	d := r.push(t, "srv", "v1", "4.17.4", fmt.Sprint(t.Name(), time.Now().UnixNano()))
	ns := e.Namespace(t, "srv", nil)
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod(ns, "p", r.host+"/srv:v1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mgr, err := controller.NewManager(e.Config, controller.ManagerOptions{Namespaces: []string{ns}, LeaderElection: true, LeaderElectionNamespace: ns, LeaderElectionID: "bulkhead-" + ns})
	if err != nil {
		t.Fatal(err)
	}
	m, err := scanner.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	aud, _ := audit.New(kubernetes.Options{})
	if _, err := controller.Setup(mgr, controller.Options{
		Scan:         &scanner.Config{Insecure: true, TempDir: t.TempDir(), Server: sc, ServerURL: srv.URL},
		Scheduler:    scanner.SchedulerOptions{TTL: time.Hour, Metrics: m},
		Resolver:     resolve.New(resolve.Options{Insecure: true}),
		Auditor:      aud,
		FollowServer: 200 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	mctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mctx) }()
	defer func() { cancel(); <-done }()

	c := directClient(t, e)
	get := func() (*v1alpha1.ImageReport, error) {
		var ir v1alpha1.ImageReport
		err := c.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir)
		return &ir, err
	}
	waitFor(t, 30*time.Second, "the report from the server", func() (bool, string) {
		if _, err := get(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	ir, _ := get()
	if ir.Report.Server != srv.URL || ir.Report.ScanID == 0 || ir.Report.Summary.Total() != 0 || ir.Report.Packages != 1 {
		t.Fatalf("first report: %+v", ir.Report)
	}
	gets, _ := r.counts()
	if gets[d] != 1 {
		t.Fatalf("%d manifest GETs for the first scan", gets[d])
	}

	// The server re-evaluates against the new database.
	sum, err := reeval.Run(ctx, st, after, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Appeared == 0 {
		t.Fatalf("the re-evaluation found nothing new: %+v", sum)
	}
	waitFor(t, 30*time.Second, "the report refreshed from the server", func() (bool, string) {
		ir, err := get()
		if err != nil {
			return false, err.Error()
		}
		return ir.Report.Summary.Total() == sum.Appeared, fmt.Sprintf("summary %+v, want %d", ir.Report.Summary, sum.Appeared)
	})
	ir, _ = get()
	found := false
	for _, v := range ir.Report.Vulnerabilities {
		found = found || v.ID == "GHSA-35jh-r3h4-6jhm"
	}
	if !found {
		t.Errorf("refreshed report lists %+v", ir.Report.Vulnerabilities)
	}
	if gets, _ := r.counts(); gets[d] != 1 {
		t.Errorf("the refresh pulled the image again (%d manifest GETs)", gets[d])
	}
}
