package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Deferred index (on SQLite; on PostgreSQL the same drain runs before the
// uploads' commit).
//
// An upload's index rows (about 940 for 300 packages: one per package
// name, finding and vulnerability ID) go to as many scattered places in
// the index B-trees. Once the database holds a few thousand images, each
// is a page of its own that every commit writes to the WAL and every
// checkpoint copies back: under 50 clients uploading back to back, they
// were two thirds of the server's CPU and most of the single writer's
// time. Without them an upload cost 6 CPU-ms instead of 20-40.
//
// So on SQLite an upload commits its scan (the blobs, the image, the
// sighting) and a row of index_pending, and is acknowledged. The group
// writer writes the index rows of all the pending scans in one later
// transaction (drain): once it has had no other write to run for
// drainIdle, after drainAt scans, once the oldest has waited drainAge, and
// before anything reads or changes the index:
//   - every read of the index tables (indexed) first has the writer drain;
//   - every write other than an upload is run after a drain in the same
//     transaction (a re-evaluation edits the index rows of its scans);
//   - a server killed before a drain finds the scans in index_pending when
//     it starts again and indexes them from their blobs.
//
// So no reader sees an acknowledged upload missing from the index, and
// under a heavy load a page that 64 uploads' rows share is written once
// instead of 6 times.
// PostgreSQL logs row changes, not pages, and keeps the index rows in the
// uploads' own transaction (the same drain, run before the commit: 12
// CPU-ms per upload either way), so that several replicas sharing it need
// no cross-server barrier.

// Drain thresholds (fields of the group writer, for tests). A drain holds
// the single writer: an upload arriving meanwhile waits for it, so its
// length is the uploads' tail latency. A writer with nothing else to do
// drains after drainIdle: under a light load each drain is of a scan or
// two and short; under a heavy one writes keep coming, the scans pile up,
// and a drain of drainAt of them shares its pages. (bench/server-load.sh,
// open loop: p99 at 20 uploads/s 456 ms without the idle drain, 72 and
// 131 ms with it; at 40/s 993 ms, then 585 and 623 ms; closed loop the
// same within the noise. A drain of one scan costs more CPU than its share
// of a drain of 64: 1-2 CPU-ms more per upload back to back, 5-10 under a
// light load, which can spare it.)
const (
	defaultDrainAt   = 64
	defaultDrainAge  = time.Second
	defaultDrainIdle = 5 * time.Millisecond
)

// pendingScan is a committed scan whose index rows are not written yet.
type pendingScan struct {
	id     int64
	digest string
	e      *encodedScan // nil after a restart: built from the scan's blobs
	at     time.Time    // when it was committed
}

// indexed returns once every scan acknowledged so far is in the index
// tables: it has the group writer drain the pending ones (a transaction
// of its own) when there are any. Every read of the index tables calls it.
func (s *Store) indexed(ctx context.Context) error {
	if s.gw == nil || s.gw.npending.Load() == 0 {
		return nil
	}
	if err := s.write(ctx, func(context.Context, *sql.Tx) error { return nil }); err != nil {
		return fmt.Errorf("index the pending scans: %w", err)
	}
	return nil
}

// loadPending reads the scans a previous run left unindexed.
func (s *Store) loadPending(ctx context.Context) ([]pendingScan, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT p.scan_id, COALESCE(s.digest, '') FROM index_pending p LEFT JOIN scans s ON s.id = p.scan_id ORDER BY p.scan_id")
	if err != nil {
		return nil, fmt.Errorf("open store %s: pending index: %w", s.Location, err)
	}
	defer rows.Close()
	var out []pendingScan
	at := time.Now()
	for rows.Next() {
		var p pendingScan
		if err := rows.Scan(&p.id, &p.digest); err != nil {
			return nil, fmt.Errorf("open store %s: pending index: %w", s.Location, err)
		}
		p.at = at
		out = append(out, p)
	}
	return out, rows.Err()
}

// drainInTx writes the index rows of the writer's pending scans and of the
// uploads run earlier in this transaction, in tx. It runs in the writer's
// goroutine (g.pending is its own); what it took is dropped from
// g.pending when tx commits (commitDeferred).
func (g *groupWriter) drainInTx(ctx context.Context, tx *sql.Tx, st *txState) error {
	var list []pendingScan
	if !st.pendingDrained {
		list = append(list, g.pending...)
	}
	list = append(list, st.deferred[st.deferredDone:]...)
	if len(list) == 0 {
		return nil
	}
	s := g.s
	ids := make([]any, len(list))
	for i := range list {
		ids[i] = list[i].id
	}
	// Which scans still exist, and which are their digest's latest.
	latest := make(map[int64]bool, len(list))
	exists := make(map[int64]bool, len(list))
	if err := chunked(ids, func(in string, args []any) error {
		rows, err := tx.QueryContext(ctx, s.q("SELECT s.id, i.latest_scan_id FROM scans s JOIN images i ON i.digest = s.digest WHERE s.id IN "+in), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, l int64
			if err := rows.Scan(&id, &l); err != nil {
				return err
			}
			exists[id], latest[id] = true, l == id
		}
		return rows.Err()
	}); err != nil {
		return fmt.Errorf("pending index: %w", err)
	}
	var packages, findings, fids []any
	var indexed []int64
	for i := range list {
		p := &list[i]
		if !exists[p.id] {
			continue // deleted since
		}
		if p.e == nil {
			e, err := s.rebuildIndexRows(ctx, tx, p.id)
			if errors.Is(err, errUnreadableScan) {
				// Its rows cannot be had (Verify reports the scan); the
				// others must not wait for it forever.
				continue
			}
			if err != nil {
				return err
			}
			p.e = e
		}
		packages = append(packages, withScanID(p.id, p.e.packages, 4)...)
		if !latest[p.id] {
			continue // superseded: its finding rows are never read
		}
		// The rows of the digest's older scans go first (before this
		// drain's rows are inserted: the drop counts what the
		// transaction owes fleet_vulns so far).
		if err := s.dropFindingIndex(ctx, tx, p.digest, p.id); err != nil {
			return fmt.Errorf("pending index of scan %d: %w", p.id, err)
		}
		findings = append(findings, withScanID(p.id, p.e.idx.rows, 8)...)
		fids = append(fids, withScanID(p.id, p.e.idx.ids, 2)...)
		indexed = append(indexed, p.id)
	}
	// In the order of the B-trees that take them at scattered places
	// (scan_packages by name, the vulnerability index by ID, finding_ids'
	// by ID): consecutive rows then go to the same leaf page, which stays
	// in the writer's cache.
	sortRows(packages, 5, 2)
	sortRows(findings, 9, 3)
	sortRows(fids, 3, 2)
	if err := s.insertRows(ctx, tx, "INSERT INTO scan_packages (scan_id, ord, name, version, type)", 5, packages); err != nil {
		return fmt.Errorf("pending index: %w", err)
	}
	if err := s.insertRows(ctx, tx, "INSERT INTO scan_findings (scan_id, ord, kind, vuln_id, package, version, fixed, severity, suppressed)", 9, findings); err != nil {
		return fmt.Errorf("pending index: %w", err)
	}
	if err := s.insertRows(ctx, tx, "INSERT INTO finding_ids (scan_id, ord, id)", 3, fids); err != nil {
		return fmt.Errorf("pending index: %w", err)
	}
	if s.deferIndex {
		if err := chunked(ids, func(in string, args []any) error {
			_, err := tx.ExecContext(ctx, "DELETE FROM index_pending WHERE scan_id IN "+in, args...)
			return err
		}); err != nil {
			return fmt.Errorf("pending index: %w", err)
		}
	}
	st.uncounted = append(st.uncounted, indexed...)
	st.pendingDrained = true
	st.deferredDone = len(st.deferred)
	st.drained += len(list)
	return nil
}

// commitDeferred updates the writer's pending scans once tx committed: the
// drained ones go, the uploads the transaction deferred come.
func (g *groupWriter) commitDeferred(st *txState) {
	if st.pendingDrained {
		clear(g.pending)
		g.pending = g.pending[:0]
	}
	g.pending = append(g.pending, st.deferred[st.deferredDone:]...)
	g.npending.Store(int64(len(g.pending)))
	if st.drained > 0 {
		g.drains.Add(1)
		g.drainedScans.Add(int64(st.drained))
	}
}

// drainDue says whether the pending scans should be indexed now.
func (g *groupWriter) drainDue() bool {
	if len(g.pending) == 0 || time.Now().Before(g.drainRetry) {
		return false
	}
	return len(g.pending) >= g.drainAt || time.Since(g.pending[0].at) >= g.drainAge
}

// drainWhen is when the background drain is due if no write comes first,
// the writer being idle from now.
func (g *groupWriter) drainWhen() time.Time {
	at := g.pending[0].at.Add(g.drainAge)
	if idle := time.Now().Add(g.drainIdle); idle.Before(at) {
		at = idle
	}
	if g.drainRetry.After(at) {
		at = g.drainRetry
	}
	return at
}

// drainBackoff is how long background drains pause after one failed (the
// reads and writes that drain first still try, and get the error).
const drainBackoff = time.Second

// drain indexes the pending scans in a transaction of their own.
func (g *groupWriter) drain() {
	g.drainRuns.Add(1)
	r := &writeReq{ctx: context.Background(), fn: func(context.Context, *sql.Tx) error { return nil }, done: make(chan error, 1), drain: true}
	g.run([]*writeReq{r})
	// An error leaves the scans pending; the next read's drain reports it.
	if err := <-r.done; err != nil {
		g.drainRetry = time.Now().Add(drainBackoff)
	}
}

// errUnreadableScan: a pending scan's blobs do not decode, so its index rows
// cannot be built. The drain leaves it out (Verify reports it) instead of
// failing every read and write that drains first.
var errUnreadableScan = errors.New("stored blobs do not decode")

// rebuildIndexRows builds a scan's index rows from its stored blobs (a
// scan a killed server left pending).
func (s *Store) rebuildIndexRows(ctx context.Context, tx *sql.Tx, id int64) (*encodedScan, error) {
	sc, inv, fs, err := s.scanRow(tx.QueryRowContext(ctx, s.q("SELECT "+scanCols+", s.inventory, s.findings FROM scans s WHERE s.id = ?"), id), true)
	if err != nil {
		return nil, fmt.Errorf("pending index of scan %d: %w", id, err)
	}
	if err := s.decodeBlobs(sc, inv, fs); err != nil {
		return nil, fmt.Errorf("pending index of scan %d: %w: %w", id, errUnreadableScan, err)
	}
	return &encodedScan{packages: s.packageRows(sc), idx: s.indexFindings(sc.Findings)}, nil
}

// packageRows are a scan's scan_packages rows without scan_id: ord, name,
// version, type.
func (s *Store) packageRows(sc *store.Scan) []any {
	out := make([]any, 0, len(sc.Inventory.Packages)*4)
	for i := range sc.Inventory.Packages {
		p := &sc.Inventory.Packages[i]
		out = append(out, i, s.indexText(p.Name), s.indexText(p.Version), s.indexText(p.Type))
	}
	return out
}

// sortRows sorts rows (flattened, cols values each, column 0 the scan ID)
// by the string in column key, then by scan ID.
func sortRows(vals []any, cols, key int) {
	n := len(vals) / cols
	if n < 2 {
		return
	}
	type ref struct {
		key  string
		scan int64
		i    int
	}
	refs := make([]ref, n)
	for i := range refs {
		refs[i] = ref{vals[i*cols+key].(string), vals[i*cols].(int64), i}
	}
	slices.SortFunc(refs, func(a, b ref) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.scan, b.scan); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	out := make([]any, 0, len(vals))
	for _, r := range refs {
		out = append(out, vals[r.i*cols:(r.i+1)*cols]...)
	}
	copy(vals, out)
}

// chunked calls fn with "(?, ?, ...)" and the arguments for at most 400
// of args at a time.
func chunked(args []any, fn func(in string, args []any) error) error {
	const chunk = 400
	for a := range slices.Chunk(args, chunk) {
		if err := fn("("+strings.TrimSuffix(strings.Repeat("?, ", len(a)), ", ")+")", a); err != nil {
			return err
		}
	}
	return nil
}
