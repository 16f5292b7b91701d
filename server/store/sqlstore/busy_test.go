package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// TestSQLiteBusy: another process holding the SQLite write lock past the
// store's busy timeout makes a write fail with store.ErrBusy (the API's
// 503), writing nothing; once the lock is released the same write works.
func TestSQLiteBusy(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	s := openT(t, "sqlite://"+path, Options{BusyTimeout: 150 * time.Millisecond})
	// The other writer: its own database handle, as another process has.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_, err = s.PutScan(ctx, genScan(1, 20), &store.Sighting{Kind: "ci"})
	if !errors.Is(err, store.ErrBusy) {
		t.Fatalf("PutScan under another writer's lock = %v, want store.ErrBusy", err)
	}
	if d := time.Since(t0); d < 150*time.Millisecond || d > 10*time.Second {
		t.Errorf("failed after %s, want after the busy timeout (150ms)", d)
	}
	if !strings.Contains(err.Error(), "locked") {
		t.Errorf("error %q does not say the database is locked", err)
	}
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM scans").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d scans after the refused write (%v), want 0", n, err)
	}
	if _, err := s.PutScan(ctx, genScan(1, 20), &store.Sighting{Kind: "ci"}); err != nil {
		t.Fatalf("PutScan after the lock was released: %v", err)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestPostgresDeadlockRetried: a real deadlock between the store's writer
// and another session (as another replica's transaction) aborts the
// writer's transaction with SQLSTATE 40P01; the writer runs the batch
// again and the write succeeds. With retries off, the write fails with
// store.ErrBusy and the deadlock's error.
func TestPostgresDeadlockRetried(t *testing.T) {
	for _, retries := range []int{DefaultWriteRetries, -1} {
		t.Run(map[bool]string{true: "retried", false: "noretry"}[retries > 0], func(t *testing.T) {
			ctx := context.Background()
			dsn := pgtest.DSN(t)
			s := openT(t, dsn, Options{WriteRetries: retries})
			other, err := pgx.Connect(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close(ctx)
			// Only the writer's backend runs the deadlock check (after the
			// server's 1 s), so it is the one aborted.
			if _, err := other.Exec(ctx, "SET deadlock_timeout = '60s'"); err != nil {
				t.Fatal(err)
			}
			tx, err := other.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			d1, d2 := digestOf(1), digestOf(2)
			if _, err := tx.Exec(ctx, "INSERT INTO images (digest, latest_scan_id, first_seen_at) VALUES ($1, 0, 1)", d2); err != nil {
				t.Fatal(err)
			}
			var werr error
			var wg sync.WaitGroup
			wg.Go(func() {
				werr = s.write(ctx, func(ctx context.Context, wtx *sql.Tx) error {
					for _, d := range []string{d1, d2} { // d2 waits for the other session
						if _, err := wtx.ExecContext(ctx, "INSERT INTO images (digest, latest_scan_id, first_seen_at) VALUES ($1, 0, 2) ON CONFLICT (digest) DO NOTHING", d); err != nil {
							return err
						}
					}
					return nil
				})
			})
			// Once the writer waits for d2, the other session waits for d1:
			// a deadlock.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var waiting int
				if err := s.db.QueryRow("SELECT COUNT(*) FROM pg_locks WHERE NOT granted").Scan(&waiting); err != nil {
					t.Fatal(err)
				}
				if waiting > 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the writer never waited for the other session's row")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO images (digest, latest_scan_id, first_seen_at) VALUES ($1, 0, 1) ON CONFLICT (digest) DO NOTHING", d1); err != nil {
				t.Fatalf("the other session was aborted, not the writer: %v", err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			var pe *pgconn.PgError
			if retries > 0 {
				if werr != nil {
					t.Fatalf("write after a deadlock: %v, want it retried", werr)
				}
				if s.gw.retried.Load() != 1 {
					t.Fatalf("%d retries, want 1", s.gw.retried.Load())
				}
				return
			}
			if !errors.Is(werr, store.ErrBusy) || !errors.As(werr, &pe) || pe.Code != pgDeadlock {
				t.Fatalf("write after a deadlock without retries = %v, want store.ErrBusy wrapping SQLSTATE 40P01", werr)
			}
		})
	}
}
