package server_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/client"
)

func scanners() []scan.Scanner {
	return []scan.Scanner{imagescan.New(secret.Default()), audit.New()}
}

// testRegistry is a registry on loopback whose manifest and blob requests
// can be failed or held.
type testRegistry struct {
	host string
	// failing manifest requests are answered 507 first (a 5xx that
	// go-containerregistry does not retry itself, so the queue must).
	failing atomic.Int32
	// hold, when set, holds blob requests until it is closed.
	mu        sync.Mutex
	hold      chan struct{}
	manifests atomic.Int32
	blobs     atomic.Int32
}

func newRegistry(t *testing.T) *testRegistry {
	r := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case strings.Contains(req.URL.Path, "/manifests/") && req.Method == http.MethodGet:
			r.manifests.Add(1)
			if r.failing.Add(-1) >= 0 {
				http.Error(w, "try later", http.StatusInsufficientStorage)
				return
			}
		case strings.Contains(req.URL.Path, "/blobs/") && req.Method == http.MethodGet:
			r.blobs.Add(1)
			r.mu.Lock()
			hold := r.hold
			r.mu.Unlock()
			if hold != nil {
				select {
				case <-hold:
				case <-req.Context().Done():
					return
				}
			}
		}
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(ts.Close)
	r.host = strings.TrimPrefix(ts.URL, "http://")
	return r
}

// push writes the test image as repo:tag and returns the reference.
func (r *testRegistry) push(t *testing.T, repo, django string) string {
	ref := r.host + "/" + repo
	tag, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, testImage(t, django, "0.3.0")); err != nil {
		t.Fatal(err)
	}
	return tag.Name()
}

func (r *testRegistry) holdBlobs() func() {
	ch := make(chan struct{})
	r.mu.Lock()
	r.hold = ch
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.hold = nil
			r.mu.Unlock()
			close(ch)
		})
	}
}

// TestScanByReference: the server pulls and scans through pipeline.Run with
// its matcher (the same findings as a local run), and a second submission
// while the first is in flight is the same job.
func TestScanByReference(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		reg := newRegistry(t)
		e := newEnv(t, backend, func(c *server.Config) { c.Scanners = scanners; c.Insecure = true })
		ref := reg.push(t, "app:1", "1.0.1")
		release := reg.holdBlobs()
		defer release()
		c := e.client(server.RoleScan)
		ctx := t.Context()
		j1, err := c.Submit(ctx, ref, "")
		if err != nil {
			t.Fatal(err)
		}
		j2, err := c.Submit(ctx, ref, "")
		if err != nil {
			t.Fatal(err)
		}
		if j2.ID != j1.ID || !j2.Duplicate || j1.Duplicate {
			t.Errorf("a second submission in flight: job %d (duplicate %v), first %d", j2.ID, j2.Duplicate, j1.ID)
		}
		release()
		j, err := c.Wait(ctx, j1.ID, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if j.ScanID == 0 || !strings.HasPrefix(j.Digest, "sha256:") || j.Attempt != 1 {
			t.Fatalf("job = %+v", j)
		}
		got, err := e.client(server.RoleRead).Scan(ctx, j.ScanID)
		if err != nil {
			t.Fatal(err)
		}
		local, err := pipeline.Run(ctx, ref, pipeline.Options{Insecure: true, Matcher: e.matcher, Scanners: scanners(), TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if len(vulnIDs(local.Findings)) < 4 || !reflect.DeepEqual(ids(got.Findings), ids(local.Findings)) {
			t.Errorf("server scan %v\nlocal scan  %v", ids(got.Findings), ids(local.Findings))
		}
		// Once done, the reference may be scanned again (a new job).
		j3, err := c.Submit(ctx, ref, "")
		if err != nil || j3.ID == j1.ID || j3.Duplicate {
			t.Errorf("a submission after completion: %+v %v", j3, err)
		}
		if _, err := c.Wait(ctx, j3.ID, 50*time.Millisecond); err != nil {
			t.Error(err)
		}
	})
}

func ids(fs []finding.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Kind)+":"+f.ID)
	}
	return out
}

// TestScanRetries: registry errors (5xx) are retried with backoff until the
// pull succeeds; a missing image (404) is not retried.
func TestScanRetries(t *testing.T) {
	reg := newRegistry(t)
	e := newEnv(t, backends[0], func(c *server.Config) { c.Insecure = true })
	ref := reg.push(t, "app:1", "1.0.1")
	reg.failing.Store(2)
	c := e.client(server.RoleScan)
	ctx := t.Context()
	j, err := c.Submit(ctx, ref, "")
	if err != nil {
		t.Fatal(err)
	}
	j, err = c.Wait(ctx, j.ID, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if j.Attempt != 3 || len(j.Errors) != 2 || !strings.Contains(j.Errors[0], "507") {
		t.Errorf("after two 507s: attempt %d, errors %q", j.Attempt, j.Errors)
	}
	missing := reg.host + "/nothing:1"
	j, err = c.Submit(ctx, missing, "")
	if err != nil {
		t.Fatal(err)
	}
	j, err = c.Wait(ctx, j.ID, 50*time.Millisecond)
	if err == nil || j.State != "cancelled" || j.Attempt != 1 {
		t.Errorf("a missing image: %+v, %v; want cancelled after one attempt", j, err)
	}
	if err := c.Post(ctx, "/api/v1/scans", server.ScanRequest{Reference: "UPPER/Case::bad"}, nil); !client.IsStatus(err, http.StatusBadRequest) {
		t.Errorf("a malformed reference: %v", err)
	}
}

// TestShutdownRequeues: a scan still running when the server stops is
// cancelled and put back on the queue; the next server on the same
// database runs it to completion.
func TestShutdownRequeues(t *testing.T) {
	forBackends(t, func(t *testing.T, backend string) {
		reg := newRegistry(t)
		ref := reg.push(t, "app:1", "1.0.1")
		release := reg.holdBlobs()
		defer release()
		st := openStore(t, backend)
		m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: testDB(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		cfg := server.Config{Store: st, Queue: server.QueueOf(st), Matcher: m, Insecure: true, TempDir: t.TempDir(),
			RetryBackoff: 20 * time.Millisecond, RetryMax: 50 * time.Millisecond, FetchPollInterval: 100 * time.Millisecond,
			ShutdownTimeout: 300 * time.Millisecond, Logger: discardLogger()}
		ctx := t.Context()
		s1, err := server.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s1.Start(ctx); err != nil {
			t.Fatal(err)
		}
		j, err := s1.Submit(ctx, server.ScanRequest{Reference: ref})
		if err != nil {
			t.Fatal(err)
		}
		for reg.blobs.Load() == 0 { // the scan is pulling
			time.Sleep(10 * time.Millisecond)
		}
		start := time.Now()
		s1.Stop()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stop took %v", d)
		}
		j, err = s1.ScanJob(ctx, j.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != "retryable" && j.State != "available" && j.State != "scheduled" {
			t.Fatalf("after shutdown the scan is %s, want requeued", j.State)
		}
		release()
		s2, err := server.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := s2.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer s2.Stop()
		deadline := time.Now().Add(20 * time.Second)
		for j.State != "completed" && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			if j, err = s2.ScanJob(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		if j.State != "completed" || j.ScanID == 0 {
			t.Errorf("the requeued scan: %+v", j)
		}
	})
}
