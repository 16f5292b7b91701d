package controller_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/report"
)

// etcd safety: the report of an image with 5,000 findings is accepted by
// the API server (its CRD validation) and stays under the 64 KiB budget
// as stored, saying it was truncated.
func TestImageReportBudgetOnAPIServer(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	res := &report.Result{Inventory: &inventory.Inventory{}}
	sevs := []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low}
	for i := range 5000 {
		res.Findings = append(res.Findings, finding.Finding{
			ID: fmt.Sprintf("CVE-2026-%05d", i), Kind: finding.KindVulnerability, Severity: sevs[i%4],
			Title:   strings.Repeat("advisory title ", 30),
			Package: &finding.Package{Name: fmt.Sprintf("pkg-%d", i%500), Version: "1.0"}, FixedVersions: []string{"1.1"},
		})
	}
	digest := fmt.Sprintf("sha256:%064x", time.Now().UnixNano())
	r, err := reports.NewImageReport(reports.Image{Digest: digest, Repository: "registry.example/big", Result: res, ScannedAt: time.Now()}, reports.DefaultBudget)
	if err != nil {
		t.Fatal(err)
	}
	c := directClient(t, e)
	if err := c.Create(ctx, r); err != nil {
		t.Fatalf("the API server refused the report: %v", err)
	}
	var got v1alpha1.ImageReport
	if err := c.Get(ctx, client.ObjectKey{Name: r.Name}, &got); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(&got) // as stored, managedFields and all
	t.Logf("stored report: %d bytes, %d of %d findings listed", len(b), len(got.Report.Vulnerabilities), got.Report.Summary.Total())
	if len(b) > reports.DefaultBudget {
		t.Errorf("stored report is %d bytes, over the budget", len(b))
	}
	if !got.Report.Truncated || got.Report.Summary.Total() != 5000 || got.Report.Fixable.Total() != 5000 {
		t.Errorf("truncated %v, summary %+v, fixable %+v", got.Report.Truncated, got.Report.Summary, got.Report.Fixable)
	}
	// The CRD's validation is real: a bad digest is refused.
	bad := r.DeepCopy()
	bad.ResourceVersion, bad.Name, bad.Report.Digest = "", "bad-"+r.Name[:20], "md5:1234"
	if err := c.Create(ctx, bad); err == nil {
		t.Error("an ImageReport with digest md5:1234 was accepted")
	}
	_ = metav1.Now
}

// A report whose TTL has expired is rescanned: the digest's manifest is
// fetched again and the report's scan time moves on.
func TestOperatorRescansWhenTTLExpires(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	r := newRegistry(t)
	d := r.push(t, "ttl", "v1", "4.17.4", fmt.Sprint(t.Name(), time.Now().UnixNano()))
	ns := e.Namespace(t, "ttl", nil)
	if _, err := e.Client.CoreV1().Pods(ns).Create(ctx, pod(ns, "p", r.host+"/ttl:v1"), metav1CreateOptions); err != nil {
		t.Fatal(err)
	}
	c := directClient(t, e)
	startOperator(t, e, ns, []string{ns}, 2*time.Second)
	var first time.Time
	waitFor(t, 30*time.Second, "the first report", func() (bool, string) {
		var ir v1alpha1.ImageReport
		if err := c.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir); err != nil {
			return false, err.Error()
		}
		first = ir.Report.ScannedAt.Time
		return true, ""
	})
	waitFor(t, 30*time.Second, "a rescan after the TTL", func() (bool, string) {
		var ir v1alpha1.ImageReport
		if err := c.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir); err != nil {
			return false, err.Error()
		}
		gets, _ := r.counts()
		return ir.Report.ScannedAt.After(first) && gets[d] >= 2, fmt.Sprintf("scanned at %v, %d fetches", ir.Report.ScannedAt, gets[d])
	})
	// Once no workload runs the digest, its report goes when it expires.
	if err := e.Client.CoreV1().Pods(ns).Delete(ctx, "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the unused report removed after its TTL", func() (bool, string) {
		var ir v1alpha1.ImageReport
		err := c.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir)
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

var metav1CreateOptions = metav1.CreateOptions{}
