package sqlstore

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// BenchmarkPutScan stores scans of a 300-package inventory (30 findings).
func BenchmarkPutScan(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			s := openT(b, be.dsn(b), Options{})
			scans := make([]*store.Scan, 16)
			for i := range scans {
				scans[i] = genScan(i, 300)
			}
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := s.PutScan(context.Background(), scans[i%len(scans)], nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkEachLatest reads back 1,000 stored images of 300 packages each,
// decoded, as re-evaluation does.
func BenchmarkEachLatest(b *testing.B) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			ctx := context.Background()
			s := openT(b, be.dsn(b), Options{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := w; i < 1000; i += 4 {
						putT(b, s, genScan(i, 300), nil)
					}
				})
			}
			wg.Wait()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				n, pkgs := 0, 0
				if err := s.EachLatest(ctx, func(sc *store.Scan) error {
					n++
					pkgs += len(sc.Inventory.Packages)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				if n != 1000 || pkgs != 300000 {
					b.Fatalf("%d scans, %d packages", n, pkgs)
				}
			}
			// This process's CPU (the decoding; on SQLite the database too):
			// the machine may be shared, so wall time alone says little.
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
