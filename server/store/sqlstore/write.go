package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// Every write goes to one writer goroutine. It takes the writes waiting
// for it (at most MaxBatch), runs them in ONE transaction, commits once,
// and only then answers each caller: an acknowledged write is on disk. A
// write that fails inside the transaction fails only its own caller (the
// others run again without it, see run); a failed commit fails every write
// of the batch (none was acknowledged). Readers keep using the connection
// pool.
//
// On SQLite, which has one writer at a time and syncs the WAL at every
// commit (synchronous=FULL), writers that each open their own transaction
// queue on busy_timeout, which is neither fair nor fast: under 50
// concurrent uploads a few waited seconds. On PostgreSQL, 50 uploads each
// in its own transaction cost 50 commits (WAL flushes) where one does,
// and their fleet_vulns upserts (the same vulnerability IDs in different
// orders) deadlocked: 53 of 1,029 uploads failed with SQLSTATE 40P01 under
// bench/server-load.sh. One writer per server removes both; a deadlock or
// serialization failure against another replica sharing the database is
// retried (Options.WriteRetries) before it is an error (store.ErrBusy).
//
// The writer keeps one connection of its own; on SQLite with a page cache
// large enough (writerCacheKiB) that a batch's pages stay in memory until
// the commit instead of spilling to the WAL in the middle of the
// transaction.

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
	ctx    context.Context
	fn     writeFn
	done   chan error
	upload bool // PutScan's: may leave its index rows to a later drain (deferred.go)
	// drain is the group writer's own request for a drain alone: a
	// transaction, but no caller's write (not counted in writes).
	drain bool
}

type groupWriter struct {
	s        *Store
	conn     *sql.Conn // the writer's connection; nil until the first batch or after an error
	max      int
	reqs     chan *writeReq // unbuffered: a sent request is the writer's
	quit     chan struct{}
	exited   chan struct{}
	stopOnce sync.Once
	// noFinalDrain leaves pending scans to the next start (tests of a
	// killed server).
	noFinalDrain bool

	maxHold time.Duration // see maxHold
	// maxHoldAlone bounds a transaction when no other writer waits for the
	// write lock (SQLite; on PostgreSQL it is maxHold).
	maxHoldAlone time.Duration
	retries      int           // times a batch is run again after a deadlock
	backoff      time.Duration // the first retry's wait (doubled at each)

	// For tests and metrics.
	waiting atomic.Int64 // callers blocked handing a write over
	batches atomic.Int64 // transactions committed (or failed)
	writes  atomic.Int64 // writes run in them
	retried atomic.Int64 // batches run again after a deadlock or serialization failure

	// The deferred index (SQLite, deferred.go). pending is the writer
	// goroutine's own; npending is its length for other goroutines.
	pending      []pendingScan
	npending     atomic.Int64
	drainAt      int
	drainAge     time.Duration
	drainIdle    time.Duration
	drainRetry   time.Time    // no background drain before (after one failed)
	drains       atomic.Int64 // transactions that indexed pending scans
	drainedScans atomic.Int64 // scans they indexed
	drainRuns    atomic.Int64 // transactions begun for a drain alone (drain)
}

func newGroupWriter(s *Store, opt Options, pending []pendingScan) *groupWriter {
	max, retries := opt.MaxBatch, opt.WriteRetries
	if max <= 0 {
		max = DefaultMaxBatch
	}
	drainAt, drainAge, drainIdle := opt.drainAt, opt.drainAge, opt.drainIdle
	if drainAt <= 0 {
		drainAt = defaultDrainAt
	}
	if drainAge <= 0 {
		drainAge = defaultDrainAge
	}
	if drainIdle <= 0 {
		drainIdle = defaultDrainIdle
	}
	alone := maxHold
	if s.lock != nil {
		alone = maxHoldAlone
	}
	g := &groupWriter{s: s, max: max, retries: retries, backoff: 10 * time.Millisecond, maxHold: maxHold, maxHoldAlone: alone,
		reqs: make(chan *writeReq), quit: make(chan struct{}), exited: make(chan struct{}),
		pending: pending, drainAt: drainAt, drainAge: drainAge, drainIdle: drainIdle, noFinalDrain: opt.noFinalDrain}
	g.npending.Store(int64(len(pending)))
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
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch = batch[:0]
		// Pending index rows are written once no write has come for
		// drainIdle from now (the writer has just finished one, or
		// started), or once the oldest has waited drainAge.
		var due <-chan time.Time
		if len(g.pending) > 0 {
			timer.Reset(max(0, time.Until(g.drainWhen())))
			due = timer.C
		}
		select {
		case r := <-g.reqs:
			batch = append(batch, r)
		case <-due:
			g.drain()
			continue
		case <-g.quit:
			if len(g.pending) > 0 && !g.noFinalDrain {
				g.drain() // spares the next start rebuilding them from blobs
			}
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
		if g.drainDue() {
			g.drain()
		}
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
	for _, r := range batch {
		if !r.drain {
			g.writes.Add(1)
		}
	}
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
	retries, wait := 0, g.backoff
	for len(pending) > 0 {
		done, failed, err := g.try(ctx, pending)
		if retryable(err) && retries < g.retries {
			// A deadlock or serialization failure against another
			// server sharing the database is no write's fault: run the
			// whole batch again.
			retries++
			g.retried.Add(1)
			g.batches.Add(1)
			time.Sleep(wait)
			wait *= 2
			continue
		}
		if err == nil {
			// The first done writes are committed; the rest (a batch cut
			// at maxHold) go in the next transaction.
			for _, r := range pending[:done] {
				r.done <- nil
			}
			pending = pending[done:]
			if len(pending) > 0 {
				g.batches.Add(1)
			}
			continue
		}
		err = busy(err)
		if failed < 0 || retryable(err) {
			// A failed begin or commit fails the writes it held (a
			// commit: the first done), a deadlock past its retries
			// every one.
			n := len(pending)
			if failed < 0 && done > 0 {
				n = done
			}
			for _, r := range pending[:n] {
				r.done <- err
			}
			pending = pending[n:]
			if len(pending) > 0 {
				g.batches.Add(1)
			}
			continue
		}
		pending[failed].done <- err
		pending = append(pending[:failed], pending[failed+1:]...)
		if len(pending) > 0 {
			g.batches.Add(1)
		}
	}
}

// maxHold bounds how long one transaction runs writes while another
// writer waits for the write lock (always, on PostgreSQL): past it the
// writer commits what it has run and begins again with the rest of the
// batch. Other writers of the database (river's queries, whose timeouts
// go down to 1 s) wait for the write lock at most about this long plus
// one write, however many uploads are queued and however loaded the
// machine is.
const maxHold = 200 * time.Millisecond

// maxHoldAlone bounds a transaction on SQLite while no other writer waits
// for the write lock: the uploads queued behind a batch then go in the same
// transaction, up to MaxBatch. One commit writes each page it changed once,
// and one upload's index rows change pages at ~940 scattered places (one
// per package name, finding ID and vulnerability ID), most of them shared
// with the other uploads of the batch: cut at 200 ms, a batch held about 8
// uploads once the database held thousands of images.
const maxHoldAlone = time.Second

// try runs writes in one transaction, at least one and then more until
// maxHold has passed, and commits it. It returns how many writes it
// committed (done; the first ones of batch) and the commit's error, or,
// when write i fails, failed = i and its error, everything rolled back.
func (g *groupWriter) try(ctx context.Context, batch []*writeReq) (done, failed int, err error) {
	tx, err := g.begin(ctx)
	if err != nil {
		return 0, -1, fmt.Errorf("store %s: begin: %w", g.s.Location, err)
	}
	t0 := time.Now()
	st := &txState{s: g.s}
	ctx = context.WithValue(ctx, txStateKey{}, st)
	for i, r := range batch {
		if i > 0 {
			if held := time.Since(t0); held > g.maxHold && (held > g.maxHoldAlone || g.s.lock == nil || g.s.lock.waiting.Load() > 0) {
				break
			}
		}
		if !r.upload {
			// Whatever is not an upload sees, and may change, the index
			// rows of every scan committed before it.
			if err := g.drainInTx(ctx, tx, st); err != nil {
				tx.Rollback()
				return 0, i, err
			}
		}
		if err := r.fn(ctx, tx); err != nil {
			tx.Rollback()
			return 0, i, err
		}
		done++
	}
	if !g.s.deferIndex {
		// PostgreSQL: the uploads' index rows go in their transaction.
		if err := g.drainInTx(ctx, tx, st); err != nil {
			tx.Rollback()
			return done, -1, fmt.Errorf("store %s: before commit: %w", g.s.Location, err)
		}
	}
	if err := st.flush(ctx, tx); err != nil {
		tx.Rollback()
		return done, -1, fmt.Errorf("store %s: before commit: %w", g.s.Location, err)
	}
	if err := tx.Commit(); err != nil {
		return done, -1, fmt.Errorf("store %s: commit: %w", g.s.Location, err)
	}
	g.commitDeferred(st)
	return done, -1, nil
}

// begin starts a transaction on the writer's connection, taking a new one
// after an error (the old one may be broken).
func (g *groupWriter) begin(ctx context.Context) (*sql.Tx, error) {
	if g.conn == nil {
		c, err := g.s.db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		if g.s.dialect == SQLite {
			if _, err := c.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = -%d", writerCacheKiB)); err != nil {
				c.Close()
				return nil, err
			}
			if g.s.ckpt != nil {
				if err := noAutoCheckpoint(ctx, c); err != nil {
					c.Close()
					return nil, err
				}
			}
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

// write runs fn in a transaction, through the group writer, and returns
// once it is committed (or failed). An error of a database that refused
// for now is store.ErrBusy.
func (s *Store) write(ctx context.Context, fn writeFn) error {
	return s.send(ctx, &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// writeUpload is write for PutScan, whose index rows may be left to a
// later drain (deferred.go).
func (s *Store) writeUpload(ctx context.Context, fn writeFn) error {
	return s.send(ctx, &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1), upload: true})
}

func (s *Store) send(ctx context.Context, r *writeReq) error {
	g := s.gw
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

// txState is what the writes of one group-commit transaction leave for its
// end: the scans whose finding index rows are inserted but not yet counted
// in fleet_vulns. Counting them once for the whole batch (one aggregate
// and one upsert for up to MaxBatch uploads) costs a fraction of one per
// upload. A write that removes index rows first flushes the pending counts
// (flush), so the counts never go below what the rows say.
type txState struct {
	s         *Store
	uncounted []int64

	// The deferred index (deferred.go): the uploads of this transaction
	// that left their index rows for later, how many of them a drain in
	// this transaction indexed, whether it indexed the writer's pending
	// scans, and how many scans it indexed in all.
	deferred       []pendingScan
	deferredDone   int
	pendingDrained bool
	drained        int
}

type txStateKey struct{}

// txStateOf is the state of the transaction ctx belongs to; nil outside the
// group writer (a write running on its own counts at once).
func txStateOf(ctx context.Context) *txState {
	st, _ := ctx.Value(txStateKey{}).(*txState)
	return st
}

// flush counts the pending scans.
func (st *txState) flush(ctx context.Context, tx *sql.Tx) error {
	if st == nil || len(st.uncounted) == 0 {
		return nil
	}
	ids := st.uncounted
	st.uncounted = nil
	return st.s.fleetAddScans(ctx, tx, ids)
}

// IndexStats says how many transactions wrote the index rows of pending
// scans (the deferred index, SQLite), how many scans they indexed, and how
// many scans are pending now.
func (s *Store) IndexStats() (drains, scans, pending int64) {
	return s.gw.drains.Load(), s.gw.drainedScans.Load(), s.gw.npending.Load()
}

// WriteStats says how many group-commit transactions the store has run and
// how many writes they held (their ratio is the mean batch: the server
// exports both as metrics).
func (s *Store) WriteStats() (transactions, writes int64) {
	return s.gw.batches.Load(), s.gw.writes.Load()
}
