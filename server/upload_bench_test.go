package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server"
	"github.com/bulkhead-sec/bulkhead/server/reeval/reevaltest"
)

// BenchmarkUpload is the whole upload path of PUT /api/v1/inventory
// without the network: the handler (auth with the bootstrap token, JSON
// decode of a ~76 KB bulkhead report of 300 real packages, matching with
// the database built from the bundled snapshot, the store's transaction,
// the JSON answer), as tools/serverload drives it, on both backends.
// Every upload is a new digest. "serial" is one upload at a time (the CPU
// of one upload: cpu-ms/op); "50clients" runs 50 at once (group commit).
// Needs the shared corpus (BULKHEAD_CORPUS or ../shared/corpus); profile
// with -cpuprofile / -memprofile.
func BenchmarkUpload(b *testing.B) {
	dir := os.Getenv("BULKHEAD_CORPUS")
	if dir == "" {
		dir = testcorpus.Dir()
	}
	if dir == "" {
		b.Skip("../shared/corpus not found (set BULKHEAD_CORPUS): the inventories are built from its package databases")
	}
	fl, err := reevaltest.NewFleet(b.Context(), dir, 300)
	if err != nil {
		b.Fatal(err)
	}
	placeholder := []byte("sha256:" + strings.Repeat("f", 64))
	docs := make([][]byte, 64)
	for i := range docs {
		inv := fl.Inventory(i)
		inv.Target.Digest = string(placeholder)
		var buf bytes.Buffer
		if err := report.ResultJSON(&buf, &report.Result{Inventory: inv}); err != nil {
			b.Fatal(err)
		}
		docs[i] = buf.Bytes()
	}
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(b.TempDir(), "osv.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	var seq atomic.Int64
	for _, backend := range backends {
		for _, clients := range []int{1, 50} {
			name := "serial"
			if clients > 1 {
				name = fmt.Sprintf("%dclients", clients)
			}
			b.Run(backend+"/"+name, func(b *testing.B) {
				st := openStore(b, backend)
				srv, err := server.New(b.Context(), server.Config{Store: st, Queue: server.QueueOf(st), Matcher: m, BootstrapToken: adminToken,
					Logger: discardLogger(), ShutdownTimeout: 5 * time.Second, TempDir: b.TempDir()})
				if err != nil {
					b.Fatal(err)
				}
				if err := srv.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { srv.Stop() })
				h := srv.Handler()
				upload := func() (time.Duration, error) {
					n := seq.Add(1)
					body := bytes.Replace(docs[int(n)%len(docs)], placeholder, fmt.Appendf(nil, "sha256:%064x", n), 1)
					req := httptest.NewRequest(http.MethodPut, "/api/v1/inventory", bytes.NewReader(body))
					req.Header.Set("Authorization", "Bearer "+adminToken)
					req.Header.Set("Content-Type", server.MediaBulkhead)
					w := httptest.NewRecorder()
					t0 := time.Now()
					h.ServeHTTP(w, req)
					d := time.Since(t0)
					if w.Code != http.StatusCreated {
						return d, fmt.Errorf("HTTP %d: %s", w.Code, w.Body.String())
					}
					return d, nil
				}
				lat := make([]time.Duration, b.N)
				var next atomic.Int64
				var wg sync.WaitGroup
				cpu0 := cpuTime()
				b.ResetTimer()
				for range clients {
					wg.Go(func() {
						for {
							i := int(next.Add(1)) - 1
							if i >= b.N {
								return
							}
							d, err := upload()
							lat[i] = d
							if err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				cpu := cpuTime() - cpu0
				slices.Sort(lat)
				q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds() * 1000 }
				b.ReportMetric(q(0.50), "p50-ms")
				b.ReportMetric(q(0.99), "p99-ms")
				b.ReportMetric(cpu.Seconds()*1000/float64(b.N), "cpu-ms/op")
			})
		}
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
