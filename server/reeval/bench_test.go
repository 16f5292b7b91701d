package reeval

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/reeval/reevaltest"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

const (
	benchImages   = 1000
	benchPackages = 300
)

func benchFleet(b *testing.B) (*reevaltest.Fleet, *pipeline.Matcher) {
	dir := os.Getenv("BULKHEAD_CORPUS")
	if dir == "" {
		dir = testcorpus.Dir()
	}
	if dir == "" {
		b.Skip("../shared/corpus not found (set BULKHEAD_CORPUS): the fleet is built from its package databases and OSV records")
	}
	fl, err := reevaltest.NewFleet(b.Context(), dir, benchPackages)
	if err != nil {
		b.Fatal(err)
	}
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: filepath.Join(b.TempDir(), "osv.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return fl, m
}

// BenchmarkMatchFleet is the matching part alone: 1,000 inventories of 300
// real packages against the database built from the bundled snapshot, on
// GOMAXPROCS workers.
func BenchmarkMatchFleet(b *testing.B) {
	fl, m := benchFleet(b)
	invs := make(chan int)
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		findings := 0
		var mu sync.Mutex
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for i := range invs {
					fs, _, err := m.Match(context.Background(), fl.Inventory(i), nil)
					if err != nil {
						b.Error(err)
					}
					mu.Lock()
					findings += len(fs)
					mu.Unlock()
				}
			})
		}
		for i := range benchImages {
			invs <- i
		}
		close(invs)
		wg.Wait()
		invs = make(chan int)
		b.ReportMetric(float64(findings)/benchImages, "findings/image")
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/1000images")
}

// BenchmarkRunFleet is a whole run over 1,000 stored images (the test
// store keeps each scan as JSON, as a database row does): read, match,
// diff, write.
func BenchmarkRunFleet(b *testing.B) {
	fl, m := benchFleet(b)
	st := newStore(b)
	for i := range benchImages {
		if _, err := st.PutScan(b.Context(), &store.Scan{Digest: reevaltest.Digest(i), Source: "registry", Inventory: fl.Inventory(i)}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		sum, err := Run(b.Context(), st, m, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(sum.Appeared), "appeared")
	}
}
