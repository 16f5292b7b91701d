package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// Group commit (SQLite).
//
// SQLite has one writer at a time, and with synchronous=FULL every commit
// syncs the WAL (tens of milliseconds on a slow disk). Writers that each
// open their own transaction queue on busy_timeout, which is neither fair
// nor fast: under 50 concurrent uploads a few waited seconds. On SQLite
// every write therefore goes to one writer goroutine. It takes the writes
// waiting for it (at most MaxBatch), runs them in ONE transaction, commits
// once, and only then answers each caller: an acknowledged write is on
// disk, as before. A write that fails inside the transaction fails only
// its own caller (the others run again without it, see run); a failed
// commit fails every write of the batch (none was acknowledged). Readers keep using the connection pool.
//
// The writer keeps one connection of its own, with a page cache large
// enough (writerCacheKiB) that a batch's pages stay in memory until the
// commit instead of spilling to the WAL in the middle of the transaction.
//
// On PostgreSQL, which runs concurrent transactions well, each write is
// its own transaction.

// DefaultMaxBatch bounds the writes one group commit holds.
const DefaultMaxBatch = 64

// writerCacheKiB is the writer connection's page cache (SQLite's default
// is 2 MiB, which one batch of uploads overflows).
const writerCacheKiB = 32 << 10

// ErrClosed is returned for a write to a closed store.
var ErrClosed = errors.New("store closed")

// writeFn is one write, run inside a transaction; ctx is the transaction's.
type writeFn func(ctx context.Context, tx *sql.Tx) error

type writeReq struct {
	ctx  context.Context
	fn   writeFn
	done chan error
}

type groupWriter struct {
	s        *Store
	conn     *sql.Conn // the writer's connection; nil until the first batch or after an error
	max      int
	reqs     chan *writeReq // unbuffered: a sent request is the writer's
	quit     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once

	// For tests and metrics.
	waiting atomic.Int64 // callers blocked handing a write over
	batches atomic.Int64 // transactions committed (or failed)
	writes  atomic.Int64 // writes run in them
}

func newGroupWriter(s *Store, max int) *groupWriter {
	if max <= 0 {
		max = DefaultMaxBatch
	}
	g := &groupWriter{s: s, max: max, reqs: make(chan *writeReq), quit: make(chan struct{}), exited: make(chan struct{})}
	go g.loop()
	return g
}

// stop ends the writer once the write it runs is answered; writes handed
// over later fail with ErrClosed.
func (g *groupWriter) stop() {
	g.stopOnce.Do(func() { close(g.quit) })
	<-g.exited
}

func (g *groupWriter) loop() {
	defer close(g.exited)
	defer func() {
		if g.conn != nil {
			g.conn.Close()
		}
	}()
	batch := make([]*writeReq, 0, g.max)
	for {
		batch = batch[:0]
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-g.quit:
			return
		}
		// Take whatever else is waiting, without waiting for more: while
		// this batch commits, the next one gathers.
	more:
		for len(batch) < g.max {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		g.run(batch)
	}
}

// run commits one batch and answers its callers. The writes run one after
// the other in one transaction. When one fails, the transaction is rolled
// back, that write's caller gets its error, and the others run again in a
// new transaction without it: a failing write fails alone, and no write is
// kept half-done. (A savepoint per write would avoid the re-run; the
// re-run is simpler and costs nothing in the common case, as a write
// rarely fails inside the transaction: its input is checked before.)
func (g *groupWriter) run(batch []*writeReq) {
	g.batches.Add(1)
	g.writes.Add(int64(len(batch)))
	// The transaction is not any one caller's: a caller giving up must not
	// roll back the others' writes.
	ctx := context.Background()
	pending := make([]*writeReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // the caller gave up before its write began
			continue
		}
		pending = append(pending, r)
	}
	for len(pending) > 0 {
		failed, err := g.try(ctx, pending)
		if failed < 0 {
			for _, r := range pending {
				r.done <- err
			}
			return
		}
		pending[failed].done <- err
		pending = append(pending[:failed], pending[failed+1:]...)
		if len(pending) > 0 {
			g.batches.Add(1)
		}
	}
}

// try runs the writes in one transaction and commits it. When write i
// fails it returns i and its error, everything rolled back; otherwise -1
// and the commit's error (nil: all are on disk).
func (g *groupWriter) try(ctx context.Context, batch []*writeReq) (int, error) {
	tx, err := g.begin(ctx)
	if err != nil {
		return -1, fmt.Errorf("store %s: begin: %w", g.s.Location, err)
	}
	for i, r := range batch {
		if err := r.fn(ctx, tx); err != nil {
			tx.Rollback()
			return i, err
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, fmt.Errorf("store %s: commit: %w", g.s.Location, err)
	}
	return -1, nil
}

// begin starts a transaction on the writer's connection, taking a new one
// after an error (the old one may be broken).
func (g *groupWriter) begin(ctx context.Context) (*sql.Tx, error) {
	if g.conn == nil {
		c, err := g.s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", writerCacheKiB)); err != nil {
			c.Close()
			return nil, err
		}
		g.conn = c
	}
	tx, err := g.conn.BeginTx(ctx, nil)
	if err != nil {
		g.conn.Close()
		g.conn = nil
	}
	return tx, err
}

// write runs fn in a transaction and returns once it is committed (or
// failed). On SQLite it goes through the group writer; on PostgreSQL it is
// a transaction of its own.
func (s *Store) write(ctx context.Context, fn writeFn) error {
	g := s.gw
	if g == nil {
		return s.tx(ctx, func(tx *sql.Tx) error { return fn(ctx, tx) })
	}
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.waiting.Add(1)
	select {
	case g.reqs <- r:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		return ctx.Err()
	case <-g.quit:
		g.waiting.Add(-1)
		return fmt.Errorf("store %s: %w", s.Location, ErrClosed)
	}
	// Handed over: wait for the commit (bounded by one batch) so that the
	// answer says whether the write is on disk.
	return <-r.done
}
