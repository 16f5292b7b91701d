package sqlstore

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// affectedDigests lists the digests the store says CVE id affects.
func affectedDigests(t *testing.T, s *Store, id string) map[string]bool {
	t.Helper()
	as, err := s.Affected(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range as {
		out[a.Digest] = true
	}
	return out
}

// openUndrained opens a SQLite store that drains only when read, and not at
// Close: what it leaves pending is what a killed server leaves.
func openUndrained(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), "sqlite://"+path, Options{drainAge: time.Hour, drainIdle: time.Hour, drainAt: 1000, noFinalDrain: true})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pendingRows(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM index_pending").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Uploads on SQLite are acknowledged before their index rows are written;
// the index rows of many go in one drain, and a read of the index sees
// every acknowledged upload all the same.
func TestDeferredIndexBatched(t *testing.T) {
	s := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{drainAge: time.Hour, drainIdle: time.Hour})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { putT(t, s, genScan(i, 60), nil) })
	}
	wg.Wait()
	drains, _, pending := s.IndexStats()
	if pending != n || drains != 0 {
		t.Fatalf("after %d uploads: %d pending, %d drains; want %d pending, no drain (drainAge 1 h, drainAt %d)", n, pending, drains, n, defaultDrainAt)
	}
	if got := pendingRows(t, s); got != n {
		t.Fatalf("index_pending holds %d rows, want %d", got, n)
	}
	// A read of the index drains first.
	if got := affectedDigests(t, s, "CVE-2026-00010"); len(got) != n {
		t.Fatalf("CVE-2026-00010 affects %d images, want %d", len(got), n)
	}
	drains, scans, pending := s.IndexStats()
	if drains != 1 || scans != n || pending != 0 || pendingRows(t, s) != 0 {
		t.Fatalf("after the read: %d drains of %d scans, %d pending, %d rows in index_pending; want 1 drain of %d, none pending", drains, scans, pending, pendingRows(t, s), n)
	}
	if err := s.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Past drainAt pending scans the writer drains on its own.
	s2 := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{drainAge: time.Hour, drainIdle: time.Hour, drainAt: 8})
	for i := range 20 {
		putT(t, s2, genScan(i, 20), nil)
	}
	if drains, scans, pending := s2.IndexStats(); drains != 2 || scans != 16 || pending != 4 {
		t.Fatalf("drainAt 8, 20 uploads one by one: %d drains of %d scans, %d pending; want 2 of 16, 4 pending", drains, scans, pending)
	}
	// And once the oldest has waited drainAge.
	s3 := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{drainAge: 50 * time.Millisecond, drainIdle: time.Hour})
	putT(t, s3, genScan(1, 20), nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, _, pending := s3.IndexStats(); pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a pending scan was not indexed 10 s after drainAge (50 ms)")
		}
	}
	// And (the default) once the writer has had nothing to do for
	// drainIdle: one upload is drained alone, long before drainAge.
	s4 := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{drainAge: time.Hour})
	putT(t, s4, genScan(1, 20), nil)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if drains, scans, pending := s4.IndexStats(); pending == 0 {
			if drains != 1 || scans != 1 {
				t.Fatalf("idle drain: %d drains of %d scans, want 1 of 1", drains, scans)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a pending scan was not indexed 10 s after the writer went idle (drainIdle %v)", defaultDrainIdle)
		}
	}
}

// A server killed before a drain leaves its scans in index_pending; the
// next start indexes them from their blobs, with the same rows as at once,
// and a superseded scan of the same digest keeps no finding rows.
func TestDeferredIndexAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	ctx := context.Background()
	s := openUndrained(t, path)
	for i := range 5 {
		putT(t, s, genScan(i, 50), nil)
	}
	// Digest 2 again, with fewer findings: the latest.
	re := genScan(2, 50)
	re.Findings = re.Findings[:1]
	putT(t, s, re, nil)
	// A reference store that indexed the same uploads.
	ref := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "ref.db"), Options{})
	for i := range 5 {
		putT(t, ref, genScan(i, 50), nil)
	}
	putT(t, ref, re, nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, "sqlite://"+path, Options{drainAge: time.Hour, drainIdle: time.Hour})
	if _, _, pending := s.IndexStats(); pending != 6 || pendingRows(t, s) != 6 {
		t.Fatalf("after the restart: %d pending, %d rows in index_pending; want 6", pending, pendingRows(t, s))
	}
	for _, id := range []string{"CVE-2026-00000", "CVE-2026-00010", "CVE-2026-00040"} {
		got, want := affectedDigests(t, s, id), affectedDigests(t, ref, id)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s affects %v after the restart, want %v", id, got, want)
		}
	}
	if got := affectedDigests(t, s, "CVE-2026-00010"); got[digestOf(2)] || len(got) != 4 {
		t.Errorf("CVE-2026-00010 affects %v: want the 4 digests other than %s (its latest scan lost it)", got, digestOf(2))
	}
	for _, x := range []*Store{s, ref} {
		if err := x.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := rowCounts(t, s), rowCounts(t, ref); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rows after the restart's drain\n%v\nwant (indexed at once)\n%v", got, want)
	}
	fs, err := s.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := ref.Fleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(fs) != fmt.Sprint(fr) {
		t.Fatalf("fleet after the restart %+v, want %+v", fs, fr)
	}
}

// A write other than an upload (here a re-evaluation of a pending scan)
// runs after the pending scans are indexed, in its transaction: it edits
// the index rows the upload would have written.
func TestDeferredIndexBeforeOtherWrites(t *testing.T) {
	s := openT(t, "sqlite://"+filepath.Join(t.TempDir(), "s.db"), Options{drainAge: time.Hour, drainIdle: time.Hour})
	ctx := context.Background()
	sc := genScan(3, 50)
	id := putT(t, s, sc, nil)
	if _, _, pending := s.IndexStats(); pending != 1 {
		t.Fatalf("%d pending, want 1", pending)
	}
	fs := []finding.Finding{sc.Findings[0]}
	if err := s.ReevaluatedBatch(ctx, []store.Reevaluation{{ScanID: id, DB: sc.DB, Findings: fs}}); err != nil {
		t.Fatal(err)
	}
	if _, _, pending := s.IndexStats(); pending != 0 {
		t.Fatalf("%d pending after the re-evaluation, want 0", pending)
	}
	if got := indexOf(t, s, id); len(got) != 1 {
		t.Fatalf("index of the re-evaluated scan: %q, want its one finding", got)
	}
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// A pending scan whose stored blobs no longer decode cannot be indexed: the
// drain leaves it out (Verify reports it) rather than fail every read and
// write behind it.
func TestDeferredIndexUnreadableScan(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	ctx := context.Background()
	s := openUndrained(t, path)
	var ids []int64
	for i := range 3 {
		ids = append(ids, putT(t, s, genScan(i, 20), nil))
	}
	s.Close()
	s = openT(t, "sqlite://"+path, Options{drainAge: time.Hour, drainIdle: time.Hour})
	if _, err := s.db.ExecContext(ctx, "UPDATE scans SET inventory = ? WHERE id = ?", []byte("not a blob"), ids[1]); err != nil {
		t.Fatal(err)
	}
	got := affectedDigests(t, s, "CVE-2026-00010")
	if len(got) != 2 || got[digestOf(1)] {
		t.Fatalf("CVE-2026-00010 affects %v, want the two readable scans' digests", got)
	}
	if _, _, pending := s.IndexStats(); pending != 0 || pendingRows(t, s) != 0 {
		t.Fatalf("%d pending, %d rows in index_pending after the drain, want 0", pending, pendingRows(t, s))
	}
	err := s.Verify(ctx)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprint(ids[1])) {
		t.Fatalf("Verify: %v; want an error naming scan %d", err, ids[1])
	}
	t.Logf("Verify: %v", err)
}
