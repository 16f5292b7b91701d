package sqlstore

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWriteLockFairToOtherWriters: while uploads keep the group writer
// busy (a batch committed, the next begun at once), another writer on the
// store's database (river's queries: Store.DB() is its driver's handle)
// gets its turn after the batch in progress (at most 2 batches begin
// while it waits: the one that queued behind it, and one racing it),
// instead of polling SQLite's busy handler while batch after batch
// commits until river's own timeouts (5-10 s) end it. Counted in batches,
// not seconds, so the machine's load does not decide the outcome.
func TestWriteLockFairToOtherWriters(t *testing.T) {
	s := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{})
	ctx := context.Background()
	if _, err := s.DB().ExecContext(ctx, "CREATE TABLE other (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq, puts atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.PutScan(ctx, genScan(int(seq.Add(1)), 300), nil); err != nil {
					t.Error(err)
					return
				}
				puts.Add(1)
			}
		})
	}
	time.Sleep(200 * time.Millisecond) // the writer is busy
	var fails int
	var worst time.Duration
	var mostBatches int64
	const rounds = 30
	for i := range rounds {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		t0, b0 := time.Now(), s.gw.batches.Load()
		_, err := s.DB().ExecContext(c, "INSERT INTO other VALUES (?)", i)
		worst = max(worst, time.Since(t0))
		mostBatches = max(mostBatches, s.gw.batches.Load()-b0)
		cancel()
		if err != nil {
			fails++
			t.Logf("insert %d: %v after %s", i, err, time.Since(t0))
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d uploads meanwhile, %d batches; the other writer's longest wait %s, %d batches begun during it", puts.Load(), s.gw.batches.Load(), worst, mostBatches)
	if fails > 0 {
		t.Fatalf("%d of %d writes beside the group writer timed out (2 s)", fails, rounds)
	}
	if mostBatches > 2 {
		t.Fatalf("a write beside the group writer waited while %d batches began: it was not served in turn", mostBatches)
	}
	if puts.Load() < rounds {
		t.Fatalf("only %d uploads ran meanwhile: the group writer was not kept busy", puts.Load())
	}
	var n int
	if err := s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM other").Scan(&n); err != nil || n != rounds {
		t.Fatalf("other: %d rows, %v; want %d", n, err, rounds)
	}
}
