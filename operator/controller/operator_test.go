package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
	"github.com/bulkhead-sec/bulkhead/operator/audit"
	"github.com/bulkhead-sec/bulkhead/operator/controller"
	"github.com/bulkhead-sec/bulkhead/operator/oneshot"
	"github.com/bulkhead-sec/bulkhead/operator/reports"
	"github.com/bulkhead-sec/bulkhead/operator/resolve"
	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

// 20 pending pods over 4 distinct images in 3 namespaces, plus a
// Deployment (with a ReplicaSet and pod under it) and a CronJob on the
// same images: 4 scans, each digest's manifest pulled once, a report for
// every workload; a restarted operator rescans no fresh digest; bulkhead
// k8s's one-shot run gives the same per-workload results.
func TestOperatorDedupeRestartAndOneShot(t *testing.T) {
	e := env(t)
	ctx := context.Background()
	r := newRegistry(t)
	marker := fmt.Sprint(t.Name(), time.Now().UnixNano())
	var refs, digests []string
	for i := range 4 {
		repo := fmt.Sprintf("app%d", i)
		digests = append(digests, r.push(t, repo, "v1", "4.17.4", marker+repo))
		refs = append(refs, r.host+"/"+repo+":v1")
	}
	var nss []string
	for range 3 {
		nss = append(nss, e.Namespace(t, "op", nil))
	}
	cs := e.Client
	want := map[string][]string{} // "ns/Kind/name" -> digests
	for i := range 20 {
		p := pod(nss[i%3], fmt.Sprintf("p%d", i), refs[i%4])
		if _, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want[p.Namespace+"/Pod/"+p.Name] = []string{digests[i%4]}
	}
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: nss[0]}, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: pod("", "", refs[0], refs[1]).Spec},
	}}
	dep, err := cs.AppsV1().Deployments(nss[0]).Create(ctx, dep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want[nss[0]+"/Deployment/web"] = []string{digests[0], digests[1]}
	yes := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: nss[0], Labels: labels,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: dep.Spec.Selector, Template: dep.Spec.Template}}
	if rs, err = cs.AppsV1().ReplicaSets(nss[0]).Create(ctx, rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	rp := pod(nss[0], "web-1-x", refs[0], refs[1])
	rp.Labels = labels
	rp.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}
	if _, err := cs.CoreV1().Pods(nss[0]).Create(ctx, rp, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: nss[1]}, Spec: batchv1.CronJobSpec{Schedule: "0 3 * * *",
		JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: pod("", "", refs[2], refs[3]).Spec}}}}}
	cj.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
	if _, err := cs.BatchV1().CronJobs(nss[1]).Create(ctx, cj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want[nss[1]+"/CronJob/nightly"] = []string{digests[2], digests[3]}

	direct := directClient(t, e)
	_, pushHeads := r.counts() // remote.Write asks whether the tag exists
	began := time.Now()
	op := startOperator(t, e, nss[0], nss, time.Hour)
	complete := func() (bool, string) {
		n, pending := 0, ""
		for _, ns := range nss {
			var l v1alpha1.WorkloadReportList
			if err := direct.List(ctx, &l, client.InNamespace(ns)); err != nil {
				return false, err.Error()
			}
			for _, wr := range l.Items {
				if meta.IsStatusConditionTrue(wr.Status.Conditions, v1alpha1.ConditionComplete) {
					n++
				} else {
					pending = wr.Name + ": " + fmt.Sprint(wr.Status.Conditions) + fmt.Sprint(wr.Report.Containers)
				}
			}
		}
		return n == len(want), fmt.Sprintf("%d of %d complete; pending %s", n, len(want), pending)
	}
	waitFor(t, 90*time.Second, "every workload's report complete", complete)
	t.Logf("%d workloads over %d digests reported in %v", len(want), len(digests), time.Since(began).Round(time.Millisecond))

	gets, heads := r.counts()
	for _, d := range digests {
		if gets[d] != 1 {
			t.Errorf("manifest %s fetched %d times, want once", d, gets[d])
		}
	}
	var tagGets int
	for ref, n := range gets {
		if !strings.HasPrefix(ref, "sha256:") {
			tagGets += n
		}
	}
	if tagGets != 0 {
		t.Errorf("%d manifest GETs by tag; tags are resolved with HEAD only", tagGets)
	}
	// One HEAD per tag and namespace at most (the resolver's cache is per
	// namespace: pull secrets are).
	if n := heads["v1"] - pushHeads["v1"]; n == 0 || n > 4*3 {
		t.Errorf("%d HEAD requests for the tags, want 1..12", n)
	}
	if n := counter(t, op, "scanned"); n != 4 {
		t.Errorf("%v scans, want 4", n)
	}

	// Every workload has its report, owned by it, with its digests and
	// the counts of their ImageReports.
	images := map[string]*v1alpha1.ImageReport{}
	for _, d := range digests {
		var ir v1alpha1.ImageReport
		if err := direct.Get(ctx, client.ObjectKey{Name: reports.ImageName(d)}, &ir); err != nil {
			t.Fatal(err)
		}
		if ir.Report.Summary.Total() == 0 || ir.Report.Packages != 1 || ir.Report.Truncated || ir.Report.DBVersion == "" {
			t.Errorf("image report %s: %+v", ir.Name, ir.Report)
		}
		if !meta.IsStatusConditionTrue(ir.Status.Conditions, v1alpha1.ConditionScanned) {
			t.Errorf("image report %s: conditions %+v", ir.Name, ir.Status.Conditions)
		}
		images[d] = &ir
	}
	operatorReports := map[string]v1alpha1.WorkloadReportData{}
	for key, ds := range want {
		ns, rest, _ := strings.Cut(key, "/")
		kind, name, _ := strings.Cut(rest, "/")
		var wr v1alpha1.WorkloadReport
		if err := direct.Get(ctx, client.ObjectKey{Namespace: ns, Name: reports.WorkloadName(kind, name)}, &wr); err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		operatorReports[key] = wr.Report
		var got []string
		for _, c := range wr.Report.Containers {
			if !slices.Contains(got, c.Digest) {
				got = append(got, c.Digest)
			}
		}
		if !slices.Equal(got, ds) {
			t.Errorf("%s: digests %v, want %v", key, got, ds)
		}
		var sum v1alpha1.Counts
		for _, d := range ds {
			sum.Add(images[d].Report.Summary)
		}
		if wr.Report.Vulnerabilities != sum {
			t.Errorf("%s: vulnerabilities %+v, want %+v", key, wr.Report.Vulnerabilities, sum)
		}
		if len(wr.OwnerReferences) != 1 || wr.OwnerReferences[0].Kind != kind || wr.OwnerReferences[0].Name != name || wr.OwnerReferences[0].UID == "" {
			t.Errorf("%s: owner references %+v", key, wr.OwnerReferences)
		}
		// No securityContext: the pods meet no stricter level than
		// baseline, and the audit says so.
		if wr.Report.ConfigAudit.PodSecurity != "baseline" || wr.Report.ConfigAudit.Summary.Total() == 0 {
			t.Errorf("%s: config audit %+v", key, wr.Report.ConfigAudit)
		}
	}
	var rsReports v1alpha1.WorkloadReportList
	if err := direct.List(ctx, &rsReports, client.InNamespace(nss[0]), client.MatchingLabels{v1alpha1.LabelWorkloadKind: "ReplicaSet"}); err != nil || len(rsReports.Items) != 0 {
		t.Errorf("the Deployment's ReplicaSet has a report of its own (%d, %v)", len(rsReports.Items), err)
	}
	if v := gauge(t, op, "bulkhead_operator_image_vulnerabilities", map[string]string{"namespace": nss[1], "severity": "high"}); v == 0 {
		t.Errorf("no high vulnerabilities metric for %s", nss[1])
	}

	// Restart: the new operator finds every report fresh and pulls
	// nothing; a new image is still scanned.
	op.stop()
	before, _ := r.counts()
	op2 := startOperator(t, e, nss[0], nss, time.Hour)
	waitFor(t, 60*time.Second, "the restarted operator knows every digest", func() (bool, string) {
		n := op2.op.Scheduler.Known()
		return n >= 4, fmt.Sprintf("%d known", n)
	})
	newDigest := r.push(t, "app4", "v1", "4.17.21", marker+"app4")
	if _, err := cs.CoreV1().Pods(nss[2]).Create(ctx, pod(nss[2], "late", r.host+"/app4:v1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want[nss[2]+"/Pod/late"] = []string{newDigest}
	waitFor(t, 60*time.Second, "the new pod's report complete", complete)
	after, _ := r.counts()
	for _, d := range digests {
		if after[d] != before[d] {
			t.Errorf("restart: %s fetched again (%d -> %d)", d, before[d], after[d])
		}
	}
	if after[newDigest] != 1 {
		t.Errorf("restart: the new digest fetched %d times, want once", after[newDigest])
	}
	if n := counter(t, op2, "scanned"); n != 1 {
		t.Errorf("restarted operator made %v scans, want 1 (the new image)", n)
	}
	op2.stop()

	// bulkhead k8s: the same code path, once, gives the same
	// per-workload results.
	aud, err := audit.New(kubernetes.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := oneshot.Run(ctx, direct, oneshot.Options{
		Namespaces: nss, Scan: &scanner.Config{Matcher: matcher, Insecure: true, TempDir: t.TempDir()},
		Resolver: resolve.New(resolve.Options{Insecure: true}), Auditor: aud, Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Workloads) != len(want) || len(res.Digests) != 5 {
		t.Errorf("one-shot: %d workloads over %d digests, want %d over 5", len(res.Workloads), len(res.Digests), len(want))
	}
	for _, w := range res.Workloads {
		key := w.Workload.Key()
		var got v1alpha1.WorkloadReport
		if err := direct.Get(ctx, client.ObjectKey{Namespace: w.Workload.Namespace, Name: w.Report.Name}, &got); err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		a, b := got.Report, w.Report.Report
		a.UpdatedAt, b.UpdatedAt = metav1.Time{}, metav1.Time{}
		if !equality.Semantic.DeepEqual(a, b) {
			t.Errorf("%s: the one-shot report differs from the operator's:\n got %+v\nwant %+v", key, b, a)
		}
	}
	checkK8sCommand(t, e, direct, nss)
}

func init() { _ = checkK8sCommand }

func counter(t *testing.T, o *operator, result string) float64 {
	t.Helper()
	return metricValue(t, o, "bulkhead_operator_scans_total", map[string]string{"result": result})
}

func gauge(t *testing.T, o *operator, name string, labels map[string]string) float64 {
	t.Helper()
	return metricValue(t, o, name, labels)
}

func metricValue(t *testing.T, o *operator, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := o.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				if m.Counter != nil {
					return m.Counter.GetValue()
				}
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

var _ = controller.Options{}
