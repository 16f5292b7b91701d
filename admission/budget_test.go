package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/bulkhead-sec/bulkhead/policy"
)

// closedPort is a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// silentListener accepts connections and never answers; accepted counts
// them.
func silentListener(t testing.TB, accepted *atomic.Int64) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	return ln.Addr().String()
}

// bigPod is a Pod with n containers whose images are those of image(i).
func bigPod(n int, image func(i int) string) []byte {
	var cs []map[string]any
	for i := 0; i < n; i++ {
		cs = append(cs, map[string]any{"name": fmt.Sprintf("c%d", i), "image": image(i)})
	}
	obj, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "big"}, "spec": map[string]any{"containers": cs}})
	return obj
}

func bigReview(ns string, obj []byte) *admissionv1.AdmissionRequest {
	var rev admissionv1.AdmissionReview
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid": "0df28fbd-5f5f-11e8-bc74-36e6bb280816", "kind": map[string]any{"group": "", "version": "v1", "kind": "Pod"},
			"namespace": ns, "operation": "CREATE", "object": json.RawMessage(obj),
		},
	})
	if err := json.Unmarshal(b, &rev); err != nil {
		panic(err)
	}
	return rev.Request
}

func registryServer(t *testing.T, pol string) (*Server, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	logs := &bytes.Buffer{}
	reg := &policy.Registry{Insecure: true, TempDir: dir, DBPath: filepath.Join(dir, "db")}
	t.Cleanup(func() { reg.Close() })
	srv, err := New(Options{PolicyPath: writePolicy(t, dir, pol), Facts: reg, Logger: jsonLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	return srv, logs
}

func budgetPolicy(t *testing.T, budget string, pss bool) string {
	pub, _ := filepath.Abs("../policy/testdata/release.pub")
	p := "apiVersion: bulkhead.dev/v1\nkind: Policy\nadmission:\n  scanBudget: " + budget +
		"\n  namespaces: [{match: dev-*, failurePolicy: open}]\nrules:\n  - name: signed\n    signatures: {keys: [" + pub +
		"]}\n  - name: vulns\n    vulnerabilities: {maxSeverity: HIGH}\n"
	if pss {
		p += "  - name: pss\n    podSecurity: {level: restricted}\n"
	}
	return p
}

// Pods naming 64 images (the default limit) on a registry that accepts
// connections and never answers: the whole review ends within the one
// scan budget, not a budget per image. With 64 containers the lookups
// stop at the deadline; with 10,000 the workload checks themselves run
// long and the answer does not wait for them.
func TestReviewBudgetBoundsWholeRequest(t *testing.T) {
	const budget = 2 * time.Second
	for _, tc := range []struct {
		containers int
		want       string
	}{
		{policy.DefaultMaxImages, "the request's time budget ran out"},
		{10000, "did not finish within admission.scanBudget (2s)"},
	} {
		t.Run(fmt.Sprint(tc.containers), func(t *testing.T) {
			srv, _ := registryServer(t, budgetPolicy(t, budget.String(), true))
			var accepted atomic.Int64
			host := silentListener(t, &accepted)
			req := bigReview("prod", bigPod(tc.containers, func(i int) string { return fmt.Sprintf("%s/img-%d:1", host, i%policy.DefaultMaxImages) }))
			start := time.Now()
			resp := srv.Review(context.Background(), req)
			took := time.Since(start)
			if took > budget+time.Second {
				t.Errorf("review took %v, budget %v", took, budget)
			}
			if resp.Allowed || resp.Result == nil {
				t.Fatalf("allowed a pod whose images could not be checked (fail-closed): %+v", resp)
			}
			msg := resp.Result.Message
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "fail-closed") {
				t.Errorf("message does not say the budget ran out: %.600s", msg)
			}
			if len(msg) > 16<<10 {
				t.Errorf("message of %d bytes", len(msg))
			}
			if accepted.Load() == 0 {
				t.Error("the registry was never asked: the test did not exercise the budget")
			}
			t.Logf("%v, %d bytes: %.300s", took, len(msg), msg)
		})
	}
}

// 10,000 distinct images is over admission.maxImages: no image is looked
// up, and the answer follows the fail mode with one clear message per
// rule.
func TestReviewTooManyImages(t *testing.T) {
	srv, logs := registryServer(t, budgetPolicy(t, "5s", false))
	var accepted atomic.Int64
	host := silentListener(t, &accepted)
	pod := bigPod(10000, func(i int) string { return fmt.Sprintf("%s/img-%d:1", host, i) })
	start := time.Now()
	resp := srv.Review(context.Background(), bigReview("prod", pod))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("review took %v", took)
	}
	want := fmt.Sprintf("10000 distinct images, over the limit of %d (admission.maxImages)", policy.DefaultMaxImages)
	if resp.Allowed || !strings.Contains(resp.Result.Message, want) || !strings.Contains(resp.Result.Message, "fail-closed") {
		t.Fatalf("prod: %+v", resp)
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections to the registry", n)
	}
	if len(resp.Result.Message) > 16<<10 || logs.Len() > 32<<10 {
		t.Errorf("message %d bytes, logs %d bytes", len(resp.Result.Message), logs.Len())
	}
	// Fail-open: admitted with the same reason as a warning.
	resp = srv.Review(context.Background(), bigReview("dev-alice", pod))
	if !resp.Allowed || !strings.Contains(strings.Join(resp.Warnings, "\n"), want) {
		t.Fatalf("dev: %+v", resp)
	}
}

// A 100 KB image reference is echoed shortened, in the answer and in the
// log, with its length.
func TestLongReferenceShortened(t *testing.T) {
	srv, logs := registryServer(t, budgetPolicy(t, "5s", false))
	ref := closedPort(t) + "/" + strings.Repeat("a", 100<<10) + ":1"
	resp := srv.Review(context.Background(), bigReview("prod", bigPod(1, func(int) string { return ref })))
	if resp.Allowed {
		t.Fatal("allowed")
	}
	msg := resp.Result.Message
	if len(msg) > 8<<10 || !strings.Contains(msg, fmt.Sprintf("(%d bytes)", len(ref))) || !strings.Contains(msg, "…(") {
		t.Errorf("message of %d bytes: %.400s", len(msg), msg)
	}
	if logs.Len() > 16<<10 {
		t.Errorf("log of %d bytes", logs.Len())
	}
	for _, w := range resp.Warnings {
		if len(w) > 8<<10 {
			t.Errorf("warning of %d bytes", len(w))
		}
	}
	t.Logf("%d bytes: %s", len(msg), msg)
}
