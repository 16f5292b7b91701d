package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// indexOf is a scan's findings index as stored, ords left out, sorted:
// one line per scan_findings row with its finding_ids.
func indexOf(t *testing.T, s *Store, id int64) []string {
	t.Helper()
	if err := s.indexed(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.db.Query(s.q("SELECT ord, kind, vuln_id, package, version, fixed, severity, suppressed FROM scan_findings WHERE scan_id = ?"), id)
	if err != nil {
		t.Fatal(err)
	}
	byOrd := map[int64]string{}
	for rows.Next() {
		var ord, sev, supp int64
		var k, v, p, ver, fx string
		if err := rows.Scan(&ord, &k, &v, &p, &ver, &fx, &sev, &supp); err != nil {
			t.Fatal(err)
		}
		byOrd[ord] = fmt.Sprintf("%s|%s|%s|%s|%s|%d|%d", k, v, p, ver, fx, sev, supp)
	}
	rows.Close()
	ids := map[int64][]string{}
	rows, err = s.db.Query(s.q("SELECT ord, id FROM finding_ids WHERE scan_id = ?"), id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var ord int64
		var fid string
		if err := rows.Scan(&ord, &fid); err != nil {
			t.Fatal(err)
		}
		ids[ord] = append(ids[ord], fid)
	}
	rows.Close()
	var out []string
	for ord, line := range byOrd {
		slices.Sort(ids[ord])
		out = append(out, line+"|"+strings.Join(ids[ord], ","))
	}
	sort.Strings(out)
	return out
}

// TestReevaluatedBatchIndexDiff: re-evaluations that add, drop, duplicate
// and alter findings leave the same findings index a fresh PutScan of the
// final findings makes, and write only the rows that changed.
func TestReevaluatedBatchIndexDiff(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		sc := genScan(7, 100) // 10 findings
		id := putT(t, s, sc, nil)
		base := sc.Findings
		dup := base[3]
		dup.Package = &finding.Package{Name: dup.Package.Name, Version: dup.Package.Version, Path: "/other"} // same index row, other place
		sev := base[5]
		sev.Severity = finding.Critical
		alias := base[6]
		alias.Aliases = []string{"GHSA-zzzz-zzzz-zzzz"}
		supp := base[7]
		supp.Suppressed = &finding.Suppression{Kind: "ignore", Source: "test"}
		secret := finding.Finding{ID: "aws-key", Kind: finding.KindSecret, Severity: finding.High, Location: &finding.Location{Path: "/etc/key"}}
		newf := finding.Finding{ID: "CVE-2026-99999", Kind: finding.KindVulnerability, Severity: finding.Low, Package: &finding.Package{Name: "libz3", Version: "1"}}
		steps := [][]finding.Finding{
			append(slices.Clone(base), newf, dup),                                          // two appear, one a duplicate row
			append(slices.Clone(base[1:5]), sev, alias, supp, base[8], base[9], newf, dup), // altered and dropped
			append(slices.Clone(base[1:5]), sev, alias, supp, base[8], base[9], newf, dup), // the same again
			{secret, dup, dup, dup},
			nil,
			base,
		}
		for i, fs := range steps {
			if err := s.ReevaluatedBatch(ctx, []store.Reevaluation{{ScanID: id, DB: &report.DBInfo{Records: i}, Findings: fs}}); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			// The reference: the same findings stored by PutScan.
			ref := *sc
			ref.Findings = fs
			ref.Digest = digestOf(1000 + i)
			rid := putT(t, s, &ref, nil)
			if got, want := indexOf(t, s, id), indexOf(t, s, rid); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: index after the re-evaluation\n%s\nwant (as PutScan indexes)\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			got, err := s.Scan(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Findings) != len(fs) || got.DB.Records != i {
				t.Fatalf("step %d: %d findings, records %d", i, len(got.Findings), got.DB.Records)
			}
		}
		// The altered alias is in the references of steps 1 and 2, no more
		// in the re-evaluated scan.
		if a, err := s.Affected(ctx, "GHSA-zzzz-zzzz-zzzz"); err != nil || len(a) != 2 || a[0].ScanID == id || a[1].ScanID == id {
			t.Fatalf("Affected(altered alias) = %+v, %v", a, err)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReevaluatedBatchAllOrNone: a batch with one scan that does not exist
// writes nothing of the others; SameFindings writes the database
// information and leaves the findings blob as it was.
func TestReevaluatedBatchAllOrNone(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var ids []int64
		for i := range 3 {
			ids = append(ids, putT(t, s, genScan(i, 30), nil))
		}
		blob := func(id int64) []byte {
			var b []byte
			if err := s.db.QueryRow(s.q("SELECT findings FROM scans WHERE id = ?"), id).Scan(&b); err != nil {
				t.Fatal(err)
			}
			return b
		}
		before := blob(ids[0])
		db2 := &report.DBInfo{Source: "osv", Records: 2}
		bad := []store.Reevaluation{
			{ScanID: ids[0], DB: db2, SameFindings: true},
			{ScanID: ids[1], DB: db2, Findings: nil, Changes: []store.Change{{Kind: "disappeared", Finding: genScan(1, 30).Findings[0]}}},
			{ScanID: 999999, DB: db2},
		}
		if err := s.ReevaluatedBatch(ctx, bad); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "999999") {
			t.Fatalf("batch with an unknown scan = %v, want ErrNotFound naming it", err)
		}
		for i, id := range ids[:2] {
			got, _ := s.Scan(ctx, id)
			if got.DB.Records != 1234 || len(got.Findings) != 3 {
				t.Fatalf("scan %d written by a failed batch: %+v, %d findings", i, got.DB, len(got.Findings))
			}
		}
		if ch, _ := s.Changes(ctx, time.Time{}, 0); len(ch) != 0 {
			t.Fatalf("a failed batch recorded %d changes", len(ch))
		}
		if err := s.ReevaluatedBatch(ctx, bad[:2]); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Scan(ctx, ids[0])
		if !reflect.DeepEqual(got.DB, db2) || !reflect.DeepEqual(got.Findings, genScan(0, 30).Findings) || !slices.Equal(blob(ids[0]), before) {
			t.Fatalf("SameFindings: db %+v, findings or blob changed", got.DB)
		}
		if got, _ := s.Scan(ctx, ids[1]); len(got.Findings) != 0 {
			t.Fatalf("scan 1: %d findings, want 0", len(got.Findings))
		}
		if ch, _ := s.Changes(ctx, time.Time{}, 0); len(ch) != 1 || ch[0].ScanID != ids[1] || ch[0].Digest != digestOf(1) {
			t.Fatalf("changes = %+v", ch)
		}
		// SameFindings with changes is a contradiction.
		err := s.ReevaluatedBatch(ctx, []store.Reevaluation{{ScanID: ids[2], SameFindings: true, Changes: []store.Change{{Kind: "appeared"}}}})
		if !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("SameFindings with changes = %v, want ErrInvalid", err)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestGroupCommitFailureIsolated (SQLite): writes that queue behind a
// running one are committed together in one transaction; one of them that
// fails inside the transaction (after writing a row) fails alone: its row
// is rolled back, every other caller's write is stored and acknowledged.
func TestGroupCommitFailureIsolated(t *testing.T) {
	ctx := context.Background()
	s := openT(t, backends[0].dsn(t), Options{})
	if s.gw == nil {
		t.Fatal("no group writer on SQLite")
	}
	// Hold the writer inside a transaction so that the others queue.
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	b0, w0 := s.gw.batches.Load(), s.gw.writes.Load()
	const n = 20
	ids := make([]int64, n)
	errs := make([]error, n)
	boom := errors.New("boom")
	var failErr error
	for i := range n {
		wg.Go(func() {
			ids[i], errs[i] = s.PutScan(ctx, genScan(i, 20), &store.Sighting{Kind: "ci", CIRun: fmt.Sprint(i)})
		})
	}
	wg.Go(func() {
		failErr = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "INSERT INTO events (kind, body, at) VALUES ('gate', x'00', 1)"); err != nil {
				return err
			}
			return boom
		})
	})
	waitQueued(t, s, n+1)
	release()
	wg.Wait()
	if !errors.Is(failErr, boom) {
		t.Fatalf("the failing write returned %v", failErr)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("PutScan %d failed beside the failing write: %v", i, errs[i])
		}
		got, err := s.Scan(ctx, ids[i])
		if err != nil || !reflect.DeepEqual(got.Findings, genScan(i, 20).Findings) {
			t.Fatalf("scan %d: %v", i, err)
		}
	}
	var events int
	s.db.QueryRow("SELECT COUNT(*) FROM events").Scan(&events)
	if events != 0 {
		t.Fatalf("the failed write's row was kept (%d events)", events)
	}
	batches, writes := s.gw.batches.Load()-b0, s.gw.writes.Load()-w0
	if writes != n+1 || batches >= writes {
		t.Fatalf("%d writes in %d transactions: not grouped", writes, batches)
	}
	t.Logf("%d writes in %d transactions", writes, batches)
	if err := s.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	// A write after Close fails with ErrClosed, not a hang.
	s.Close()
	if _, err := s.PutScan(ctx, genScan(99, 3), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutScan after Close = %v, want ErrClosed", err)
	}
}
