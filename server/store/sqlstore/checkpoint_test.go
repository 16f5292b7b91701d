package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// The fleet_vulns counts of a batch are added once, at its end (txState):
// re-uploads of a digest in the same batch take the earlier scan's rows out
// first, so the counts must still match the index rows.
func TestFleetCountedOncePerBatch(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// Counted before the batch: fleet_vulns has rows a wrong
		// subtraction would change.
		for i := range 4 {
			putT(t, s, genScan(100+i, 40), nil)
		}
		release := holdWriter(t, s)
		b0, w0 := s.gw.batches.Load(), s.gw.writes.Load()
		const n = 12
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				sc := genScan(i, 40)            // findings differ by seed...
				sc.Digest = digestOf(100 + i%4) // ...and the four digests are uploaded three times more each
				_, errs[i] = s.PutScan(ctx, sc, &store.Sighting{Kind: "ci", CIRun: fmt.Sprint(i)})
			})
		}
		waitQueued(t, s, n)
		release()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("PutScan %d: %v", i, err)
			}
		}
		if batches, writes := s.gw.batches.Load()-b0, s.gw.writes.Load()-w0; batches >= writes {
			t.Fatalf("%d writes in %d transactions: not grouped, the test proves nothing", writes, batches)
		}
		// verifyFleet compares fleet_vulns with the index rows.
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		var images, rows int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM images").Scan(&images); err != nil || images != 4 {
			t.Fatalf("%d images (%v), want 4", images, err)
		}
		if err := s.db.QueryRowContext(ctx, "SELECT COALESCE(SUM(n0 + n1 + n2 + n3 + n4), 0) FROM fleet_vulns").Scan(&rows); err != nil || rows != 4*4 {
			t.Fatalf("fleet_vulns counts %d (%v), want 16 (4 images x 4 vulnerabilities)", rows, err)
		}
	})
}

// On SQLite the checkpoints run in their own goroutine: the writer's
// connection does not checkpoint, and what it commits is copied into the
// database file within a few rounds.
func TestCheckpointsBesideTheWriter(t *testing.T) {
	ctx := context.Background()
	s := openT(t, backends[0].dsn(t), Options{})
	if s.ckpt == nil {
		t.Fatal("no checkpointer on SQLite")
	}
	for i := range 30 {
		putT(t, s, genScan(i, 60), nil)
	}
	var auto int
	if err := s.gw.conn.QueryRowContext(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("the writer's wal_autocheckpoint is %d (%v), want 0", auto, err)
	}
	for deadline := time.Now().Add(10 * time.Second); s.ckpt.frames.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint copied a frame in 10 s")
		}
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	// Close stops the checkpointer.
	s.Close()
	select {
	case <-s.ckpt.exited:
	default:
		t.Fatal("the checkpointer runs after Close")
	}
}

// On SQLite, with no other writer waiting for the write lock, a batch is
// not cut at maxHold (only at maxHoldAlone): the queued uploads share one
// commit.
func TestBatchHeldWhileAlone(t *testing.T) {
	ctx := context.Background()
	s := openT(t, backends[0].dsn(t), Options{})
	s.gw.maxHold, s.gw.maxHoldAlone = 0, time.Hour // before the first write: the writer reads them in try
	release := holdWriter(t, s)
	b0, d0 := s.gw.batches.Load(), s.gw.drainRuns.Load()
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, err := s.PutScan(ctx, genScan(i, 20), nil); err != nil {
				t.Error(err)
			}
		})
	}
	waitQueued(t, s, n)
	release()
	wg.Wait()
	// A drain of the uploads' index rows once the writer is idle is a
	// transaction of its own, not one of theirs.
	if got := s.gw.batches.Load() - b0 - (s.gw.drainRuns.Load() - d0); got != 1 {
		t.Fatalf("%d transactions for %d queued writes and no other writer, want 1", got, n)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
