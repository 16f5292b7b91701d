package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// encodedScan is a scan made ready for the database outside the
// transaction (compression and index rows cost CPU, not locks).
type encodedScan struct {
	inventory, findings []byte
	dbInfo, counts      string
	worst               int
	packages            []any // scan_packages rows without scan_id: ord, name, version, type
	idx                 findingIndex
}

type findingIndex struct {
	rows []any // scan_findings rows without scan_id: ord, kind, vuln_id, package, version, fixed, severity, suppressed
	ids  []any // finding_ids rows without scan_id: ord, id
	n    int
}

func (s *Store) indexFindings(fs []finding.Finding) findingIndex {
	var x findingIndex
	x.n = len(fs)
	x.rows = make([]any, 0, len(fs)*8)
	seen := map[string]bool{}
	for i := range fs {
		f := &fs[i]
		var pkg, ver string
		if f.Package != nil {
			pkg, ver = f.Package.Name, f.Package.Version
		}
		supp := 0
		if f.Suppressed != nil {
			supp = 1
		}
		x.rows = append(x.rows, i, s.indexText(string(f.Kind)), s.indexText(f.ID), s.indexText(pkg), s.indexText(ver),
			s.indexText(strings.Join(f.FixedVersions, ", ")), int(f.Severity), supp)
		clear(seen)
		for _, id := range append([]string{f.ID}, f.Aliases...) {
			id = s.indexText(strings.ToUpper(strings.TrimSpace(id)))
			if id == "" || seen[id] {
				continue
			}
			seen[id] = true
			x.ids = append(x.ids, i, id)
		}
	}
	return x
}

// worst is the highest severity of the unsuppressed findings,
// store.NoFindings without one.
func worst(fs []finding.Finding) int {
	w := int(store.NoFindings)
	for i := range fs {
		if fs[i].Suppressed == nil && int(fs[i].Severity) > w {
			w = int(fs[i].Severity)
		}
	}
	return w
}

func counts(fs []finding.Finding) string {
	c := map[string]int{}
	for i := range fs {
		if fs[i].Suppressed == nil {
			c[fs[i].Severity.String()]++
		}
	}
	b, _ := json.Marshal(c)
	return string(b)
}

func encodeDB(db *report.DBInfo) string {
	if db == nil {
		return ""
	}
	b, _ := json.Marshal(db)
	return string(b)
}

func (s *Store) encodeScan(what string, sc *store.Scan) (*encodedScan, error) {
	e := &encodedScan{dbInfo: encodeDB(sc.DB), counts: counts(sc.Findings), worst: worst(sc.Findings)}
	var err error
	if sc.Encoded != nil {
		if e.inventory, err = s.codec.compress(what+": inventory", sc.Encoded.Inventory); err != nil {
			return nil, err
		}
		if e.findings, err = s.codec.compress(what+": findings", sc.Encoded.Findings); err != nil {
			return nil, err
		}
	} else {
		if e.inventory, err = s.codec.encode(what+": inventory", sc.Inventory); err != nil {
			return nil, err
		}
		fs := sc.Findings
		if fs == nil {
			fs = []finding.Finding{}
		}
		if e.findings, err = s.codec.encode(what+": findings", fs); err != nil {
			return nil, err
		}
	}
	e.packages = s.packageRows(sc)
	e.idx = s.indexFindings(sc.Findings)
	return e, nil
}

// withScanID prefixes every row of cols values with the scan ID.
func withScanID(id int64, rows []any, cols int) []any {
	out := make([]any, 0, len(rows)/cols*(cols+1))
	for i := 0; i < len(rows); i += cols {
		out = append(out, id)
		out = append(out, rows[i:i+cols]...)
	}
	return out
}

// fleetDelta is, per vulnerability ID, how many of the scans that cond
// selects rate it at each severity (d0 to d4: each scan counted once, at
// its worst rating) and have a fixed version (dfx).
const fleetDelta = `SELECT vuln_id, SUM(CASE WHEN sev = 0 THEN 1 ELSE 0 END) AS d0, SUM(CASE WHEN sev = 1 THEN 1 ELSE 0 END) AS d1,
	SUM(CASE WHEN sev = 2 THEN 1 ELSE 0 END) AS d2, SUM(CASE WHEN sev = 3 THEN 1 ELSE 0 END) AS d3, SUM(CASE WHEN sev >= 4 THEN 1 ELSE 0 END) AS d4, SUM(fx) AS dfx
	FROM (SELECT vuln_id, scan_id, MAX(severity) AS sev, MAX(CASE WHEN fixed <> '' THEN 1 ELSE 0 END) AS fx
		FROM scan_findings WHERE kind = 'vulnerability' AND suppressed = 0 AND %s GROUP BY vuln_id, scan_id) x
	GROUP BY vuln_id`

// fleetRemove takes the index rows cond selects out of fleet_vulns; call
// it before deleting them.
func (s *Store) fleetRemove(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	_, err := tx.ExecContext(ctx, s.q(`UPDATE fleet_vulns SET n0 = n0 - d.d0, n1 = n1 - d.d1, n2 = n2 - d.d2, n3 = n3 - d.d3, n4 = n4 - d.d4, fixable = fixable - d.dfx
		FROM (`+fmt.Sprintf(fleetDelta, cond)+`) d WHERE fleet_vulns.vuln_id = d.vuln_id`), args...)
	return err
}

// fleetAdd adds the index rows cond selects to fleet_vulns; call it after
// inserting them.
func (s *Store) fleetAdd(ctx context.Context, tx *sql.Tx, cond string, args ...any) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO fleet_vulns (vuln_id, n0, n1, n2, n3, n4, fixable)
		SELECT vuln_id, d0, d1, d2, d3, d4, dfx FROM (`+fmt.Sprintf(fleetDelta, cond)+`) d WHERE true ORDER BY vuln_id
		ON CONFLICT (vuln_id) DO UPDATE SET n0 = fleet_vulns.n0 + excluded.n0, n1 = fleet_vulns.n1 + excluded.n1, n2 = fleet_vulns.n2 + excluded.n2,
			n3 = fleet_vulns.n3 + excluded.n3, n4 = fleet_vulns.n4 + excluded.n4, fixable = fleet_vulns.fixable + excluded.fixable`), args...)
	return err
}

// dropFindingIndex deletes the finding index rows of the digest's scans
// other than keep.
func (s *Store) dropFindingIndex(ctx context.Context, tx *sql.Tx, digest string, keep int64) error {
	// The digest's first scan (the common case) has nothing to drop: one
	// index lookup instead of three statements.
	var other int64
	switch err := tx.QueryRowContext(ctx, s.q("SELECT id FROM scans WHERE digest = ? AND id <> ? LIMIT 1"), digest, keep).Scan(&other); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	// Rows of this transaction's earlier scans may not be counted yet.
	if err := txStateOf(ctx).flush(ctx, tx); err != nil {
		return err
	}
	const cond = "scan_id IN (SELECT id FROM scans WHERE digest = ? AND id <> ?)"
	if err := s.fleetRemove(ctx, tx, cond, digest, keep); err != nil {
		return err
	}
	for _, table := range []string{"finding_ids", "scan_findings"} {
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM "+table+" WHERE scan_id IN (SELECT id FROM scans WHERE digest = ? AND id <> ?)"), digest, keep); err != nil {
			return err
		}
	}
	return nil
}

// fleetAddScans counts the index rows of the scans ids in fleet_vulns.
func (s *Store) fleetAddScans(ctx context.Context, tx *sql.Tx, ids []int64) error {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return s.fleetAdd(ctx, tx, "scan_id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+")", args...)
}

// insertFindingRows inserts index rows without counting them in
// fleet_vulns (the caller does, once for the whole scan).
func (s *Store) insertFindingRows(ctx context.Context, tx *sql.Tx, id int64, x findingIndex) error {
	if err := s.insertRows(ctx, tx, "INSERT INTO scan_findings (scan_id, ord, kind, vuln_id, package, version, fixed, severity, suppressed)", 9, withScanID(id, x.rows, 8)); err != nil {
		return err
	}
	return s.insertRows(ctx, tx, "INSERT INTO finding_ids (scan_id, ord, id)", 3, withScanID(id, x.ids, 2))
}

// PutScan stores a scan and its sighting in one transaction. A re-upload of
// the same digest makes a new scan, which becomes the digest's latest.
func (s *Store) PutScan(ctx context.Context, sc *store.Scan, seen *store.Sighting) (int64, error) {
	const what = "put scan"
	if sc == nil {
		return 0, invalid("%s: no scan", what)
	}
	if err := checkDigest(what, sc.Digest); err != nil {
		return 0, err
	}
	if err := checkOneOf(what, "source", sc.Source, scanSources); err != nil {
		return 0, err
	}
	if err := s.checkText(what, "repository", sc.Repository); err != nil {
		return 0, err
	}
	if sc.Inventory == nil {
		return 0, invalid("%s %s: no inventory", what, sc.Digest)
	}
	if seen != nil {
		cp := *seen
		if cp.Digest == "" {
			cp.Digest = sc.Digest
		}
		if cp.Digest != sc.Digest {
			return 0, invalid("%s %s: the sighting is of another digest, %s", what, sc.Digest, cp.Digest)
		}
		if err := s.checkSighting(what, &cp); err != nil {
			return 0, err
		}
		seen = &cp
	}
	e, err := s.encodeScan(what+" "+sc.Digest, sc)
	if err != nil {
		return 0, err
	}
	provBase, provSig, err := encodeProvenance(what+" "+sc.Digest, sc.Provenance)
	if err != nil {
		return 0, err
	}
	at := sc.ScannedAt
	if at.IsZero() {
		at = now()
	}
	var id int64
	err = s.writeUpload(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO images (digest, latest_scan_id, first_seen_at) VALUES (?, 0, ?) ON CONFLICT (digest) DO NOTHING"),
			sc.Digest, micros(now())); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO scans (digest, repository, scanned_at, source, db_info, packages, counts, worst, inventory, findings, n_findings)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			sc.Digest, sc.Repository, micros(at), sc.Source, e.dbInfo, len(sc.Inventory.Packages), e.counts, e.worst,
			e.inventory, e.findings, e.idx.n).Scan(&id); err != nil {
			return err
		}
		if err := s.putProvenance(ctx, tx, id, provBase, provSig); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q("UPDATE images SET latest_scan_id = ? WHERE digest = ? AND latest_scan_id < ?"), id, sc.Digest, id); err != nil {
			return err
		}
		// The index rows are written by a drain (deferred.go): at the end of
		// this transaction on PostgreSQL, later on SQLite, where the scan
		// waits in index_pending meanwhile.
		st := txStateOf(ctx)
		if st == nil {
			return errors.New("an upload outside the group writer")
		}
		if s.deferIndex {
			if _, err := tx.ExecContext(ctx, "INSERT INTO index_pending (scan_id) VALUES (?)", id); err != nil {
				return err
			}
		}
		st.deferred = append(st.deferred, pendingScan{id: id, digest: sc.Digest, e: &encodedScan{packages: e.packages, idx: e.idx}, at: time.Now()})
		if seen != nil {
			return s.upsertSighting(ctx, tx, seen)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", what, sc.Digest, err)
	}
	return id, nil
}

const scanCols = "s.id, s.digest, s.repository, s.scanned_at, s.source, s.db_info"

type rowScanner interface{ Scan(...any) error }

// scanRow reads scanCols and, when full, the two blobs.
func (s *Store) scanRow(r rowScanner, full bool) (*store.Scan, []byte, []byte, error) {
	var sc store.Scan
	var at int64
	var db string
	var inv, fs []byte
	dst := []any{&sc.ID, &sc.Digest, &sc.Repository, &at, &sc.Source, &db}
	if full {
		dst = append(dst, &inv, &fs)
	}
	if err := r.Scan(dst...); err != nil {
		return nil, nil, nil, err
	}
	sc.ScannedAt = fromMicros(at)
	if db != "" {
		sc.DB = new(report.DBInfo)
		if err := json.Unmarshal([]byte(db), sc.DB); err != nil {
			return nil, nil, nil, fmt.Errorf("scan %d: database info: %w", sc.ID, err)
		}
	}
	return &sc, inv, fs, nil
}

// decodeBlobs fills the scan's inventory and findings.
func (s *Store) decodeBlobs(sc *store.Scan, inv, fs []byte) error {
	what := fmt.Sprintf("scan %d", sc.ID)
	if err := s.codec.decode(what+": inventory", inv, &sc.Inventory); err != nil {
		return err
	}
	if sc.Inventory == nil {
		return fmt.Errorf("%s: inventory: null", what)
	}
	return s.codec.decode(what+": findings", fs, &sc.Findings)
}

func (s *Store) oneScan(ctx context.Context, what, query string, arg any) (*store.Scan, error) {
	sc, inv, fs, err := s.scanRow(s.db.QueryRowContext(ctx, s.q(query), arg), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s: %w", what, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := s.decodeBlobs(sc, inv, fs); err != nil {
		return nil, err
	}
	return sc, nil
}

// Scan returns one scan with its inventory and findings.
func (s *Store) Scan(ctx context.Context, id int64) (*store.Scan, error) {
	return s.oneScan(ctx, fmt.Sprintf("scan %d", id),
		"SELECT "+scanCols+", s.inventory, s.findings FROM scans s WHERE s.id = ?", id)
}

// LatestScan returns the newest scan of a digest.
func (s *Store) LatestScan(ctx context.Context, digest string) (*store.Scan, error) {
	return s.oneScan(ctx, "latest scan of "+digest,
		"SELECT "+scanCols+", s.inventory, s.findings FROM images i JOIN scans s ON s.id = i.latest_scan_id WHERE i.digest = ?", digest)
}

// ScansOf lists the scans of a repository, newest first, without their
// inventory and findings.
func (s *Store) ScansOf(ctx context.Context, repository string, limit int) ([]store.Scan, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT "+scanCols+" FROM scans s WHERE s.repository = ? ORDER BY s.id DESC LIMIT ?"), repository, page(limit))
	if err != nil {
		return nil, fmt.Errorf("scans of %s: %w", repository, err)
	}
	defer rows.Close()
	var out []store.Scan
	for rows.Next() {
		sc, _, _, err := s.scanRow(rows, false)
		if err != nil {
			return nil, fmt.Errorf("scans of %s: %w", repository, err)
		}
		out = append(out, *sc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("scans of %s: %w", repository, err)
	}
	return out, nil
}

// eachPage is how many latest scans EachLatest reads per query: the blobs
// of one page are held compressed while the page is decoded.
const eachPage = 64

// EachLatest calls fn with the latest scan of every digest, in ascending
// scan ID. It reads a page of compressed rows, closes the query, then
// decodes and hands the scans over one at a time, so fn may write to the
// store (Reevaluated) and only one page is in memory. A scan stored while
// it runs is visited if its ID is above the page being read.
func (s *Store) EachLatest(ctx context.Context, fn func(*store.Scan) error) error {
	type raw struct {
		sc       *store.Scan
		inv, fds []byte
	}
	after := int64(0)
	buf := make([]raw, 0, eachPage)
	for {
		buf = buf[:0]
		rows, err := s.db.QueryContext(ctx, s.q("SELECT "+scanCols+", s.inventory, s.findings FROM images i JOIN scans s ON s.id = i.latest_scan_id WHERE i.latest_scan_id > ? ORDER BY i.latest_scan_id LIMIT ?"), after, eachPage)
		if err != nil {
			return fmt.Errorf("latest scans: %w", err)
		}
		for rows.Next() {
			sc, inv, fds, err := s.scanRow(rows, true)
			if err != nil {
				rows.Close()
				return fmt.Errorf("latest scans: %w", err)
			}
			buf = append(buf, raw{sc, inv, fds})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("latest scans: %w", err)
		}
		if len(buf) == 0 {
			return nil
		}
		if err := s.decodeEach(ctx, len(buf), func(i int) (*store.Scan, error) {
			r := &buf[i]
			err := s.decodeBlobs(r.sc, r.inv, r.fds)
			r.inv, r.fds = nil, nil
			return r.sc, err
		}, fn); err != nil {
			return err
		}
		after = buf[len(buf)-1].sc.ID
	}
}
