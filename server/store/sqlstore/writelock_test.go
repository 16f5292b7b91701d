package sqlstore

import (
	"context"
	"database/sql"
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
		t0, b0, d0 := time.Now(), s.gw.batches.Load(), s.gw.drainRuns.Load()
		_, err := s.DB().ExecContext(c, "INSERT INTO other VALUES (?)", i)
		worst = max(worst, time.Since(t0))
		// A drain of the deferred index after a batch counts as a batch
		// begun (it then waits for the lock behind this write): not
		// counted here.
		mostBatches = max(mostBatches, s.gw.batches.Load()-b0-(s.gw.drainRuns.Load()-d0))
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

// TestBatchCutAtMaxHold: a batch whose writes run past maxHold is
// committed in parts (here: maxHold 0, one write per transaction), every
// write acknowledged once and stored, so the write lock is never held for
// a whole queue of uploads. The writes are queued behind a write that
// blocks, so without the cut they would all run in one transaction.
func TestBatchCutAtMaxHold(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		s.gw.maxHold, s.gw.maxHoldAlone = 0, 0 // before the first write: the writer reads them in try
		release := make(chan struct{})
		blocked := make(chan error, 1)
		go func() {
			blocked <- s.write(ctx, func(context.Context, *sql.Tx) error { <-release; return nil })
		}()
		for s.gw.batches.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		const n = 16
		var wg sync.WaitGroup
		ids := make([]int64, n)
		for i := range n {
			wg.Go(func() {
				id, err := s.PutScan(ctx, genScan(i, 20), nil)
				if err != nil {
					t.Error(err)
				}
				ids[i] = id
			})
		}
		for s.gw.waiting.Load() < n {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
		// One transaction for the blocking write, then one per write
		// (without the cut: one for all 16).
		if got := s.gw.batches.Load(); got != n+1 {
			t.Fatalf("%d transactions for 1 + %d queued writes with maxHold 0, want %d", got, n, n+1)
		}
		for i, id := range ids {
			sc, err := s.Scan(ctx, id)
			if err != nil || sc.Digest != digestOf(i) {
				t.Fatalf("scan %d (%d): %v", i, id, err)
			}
		}
	})
}
