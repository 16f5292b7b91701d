package sqlstore

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// BenchmarkPutScanConcurrent: 50 clients storing scans of a 300-package
// inventory (30 findings) with a sighting at the same time, as 50 CI
// uploads do; b.N scans in all. Reports each call's p50 and p99 latency
// and the throughput. Run it with a fixed count, e.g.
// -bench PutScanConcurrent -benchtime 1000x. BULKHEAD_BENCH_PG_POOL=N
// sets PostgreSQL's pool size (pgtest's server runs with fsync off).
func BenchmarkPutScanConcurrent(b *testing.B) {
	const clients = 50
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			dsn := be.dsn(b)
			if n := os.Getenv("BULKHEAD_BENCH_PG_POOL"); n != "" && be.name == Postgres {
				dsn += "&pool_max_conns=" + n // the pool size to compare (default 16)
			}
			s := openT(b, dsn, Options{})
			scans := make([]*store.Scan, 64)
			for i := range scans {
				scans[i] = genScan(i, 300)
			}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			var failed atomic.Int64
			var wg sync.WaitGroup
			cpu0 := cpuTime()
			b.ResetTimer()
			start := time.Now()
			for c := range clients {
				wg.Go(func() {
					for {
						i := int(next.Add(1)) - 1
						if i >= b.N {
							return
						}
						t0 := time.Now()
						_, err := s.PutScan(ctx, scans[i%len(scans)], &store.Sighting{Kind: "ci", CIRun: fmt.Sprintf("client-%d", c)})
						lat[i] = time.Since(t0)
						if err != nil {
							failed.Add(1)
							b.Error(err)
						}
					}
				})
			}
			wg.Wait()
			wall := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))].Seconds() * 1000 }
			b.ReportMetric(q(0.50), "p50-ms")
			b.ReportMetric(q(0.99), "p99-ms")
			b.ReportMetric(lat[len(lat)-1].Seconds()*1000, "max-ms")
			b.ReportMetric(float64(b.N)/wall.Seconds(), "scans/s")
			b.ReportMetric(float64(failed.Load()), "errors")
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
