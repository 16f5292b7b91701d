package controller_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bulkhead-sec/bulkhead/operator/api/v1alpha1"
)

// TestOperatorScale is the dedupe figure at scale, run by
// bench/operator.sh: BULKHEAD_OPERATOR_SCALE=PODS,IMAGES,NAMESPACES
// (200,40,10 in the acceptance criteria; 2000,40,10 for memory). The pods
// stay Pending (no kubelet); the operator resolves their images from the
// loopback registry, scans each digest once and reports every pod. It
// prints the time until every report is complete, the scans and
// manifest requests, and the Go heap in use after a GC.
func TestOperatorScale(t *testing.T) {
	spec := os.Getenv("BULKHEAD_OPERATOR_SCALE")
	if spec == "" {
		t.Skip("set BULKHEAD_OPERATOR_SCALE=PODS,IMAGES,NAMESPACES (bench/operator.sh)")
	}
	var n [3]int
	for i, s := range strings.Split(spec, ",") {
		if i < 3 {
			n[i], _ = strconv.Atoi(s)
		}
	}
	pods, images, namespaces := n[0], n[1], n[2]
	if pods < 1 || images < 1 || namespaces < 1 {
		t.Fatalf("BULKHEAD_OPERATOR_SCALE=%q: give PODS,IMAGES,NAMESPACES", spec)
	}
	e := env(t)
	ctx := context.Background()
	r := newRegistry(t)
	marker := fmt.Sprint(t.Name(), time.Now().UnixNano())
	var refs, digests []string
	for i := range images {
		repo := fmt.Sprintf("scale%d", i)
		digests = append(digests, r.push(t, repo, "v1", "4.17.4", marker+repo))
		refs = append(refs, r.host+"/"+repo+":v1")
	}
	var nss []string
	for range namespaces {
		nss = append(nss, e.Namespace(t, "scale", nil))
	}
	for i := range pods {
		p := pod(nss[i%namespaces], fmt.Sprintf("p%d", i), refs[i%images])
		if _, err := e.Client.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := directClient(t, e)
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	// The Go heap in use, sampled while the operator works: its peak.
	var peakHeap uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peakHeap = max(peakHeap, ms.HeapInuse)
			select {
			case <-stopSampling:
				return
			case <-tk.C:
			}
		}
	}()
	began := time.Now()
	// BULKHEAD_OPERATOR_RBAC: the RBAC assessment controller too, as
	// bulkhead operator runs it.
	withRBAC = os.Getenv("BULKHEAD_OPERATOR_RBAC") != ""
	defer func() { withRBAC = false }()
	op := startOperator(t, e, nss[0], nss, time.Hour)
	waitFor(t, 10*time.Minute, "every pod's report complete", func() (bool, string) {
		done := 0
		for _, ns := range nss {
			var l v1alpha1.WorkloadReportList
			if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
				return false, err.Error()
			}
			for _, wr := range l.Items {
				if meta.IsStatusConditionTrue(wr.Status.Conditions, v1alpha1.ConditionComplete) {
					done++
				}
			}
		}
		return done == pods, fmt.Sprintf("%d of %d", done, pods)
	})
	took := time.Since(began)
	close(stopSampling)
	<-sampled
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	gets, _ := r.counts()
	fetched := 0
	for _, d := range digests {
		if gets[d] != 1 {
			t.Errorf("%s fetched %d times", d, gets[d])
		}
		fetched += gets[d]
	}
	scans := counter(t, op, "scanned")
	hwm := "?"
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				hwm = strings.TrimSpace(v)
			}
		}
	}
	fmt.Printf("SCALE pods=%d images=%d namespaces=%d: every report complete in %v (%.0f pods/s); %v scans, %d manifest GETs by digest; heap in use after GC %.1f MiB (%.1f MiB before the operator started, peak %.1f MiB while it worked); peak RSS of the test process (operator, registry, test clients; not the API server) %s\n",
		pods, images, namespaces, took.Round(time.Millisecond), float64(pods)/took.Seconds(), scans, fetched,
		float64(after.HeapInuse)/(1<<20), float64(base.HeapInuse)/(1<<20), float64(peakHeap)/(1<<20), hwm)
	if int(scans) != images {
		t.Errorf("%v scans, want %d", scans, images)
	}
}
