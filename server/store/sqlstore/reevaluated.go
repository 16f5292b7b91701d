package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Reevaluated replaces a scan's findings and records the changes, in one
// transaction.
func (s *Store) Reevaluated(ctx context.Context, scanID int64, db *report.DBInfo, findings []finding.Finding, changes []store.Change) error {
	return s.ReevaluatedBatch(ctx, []store.Reevaluation{{ScanID: scanID, DB: db, Findings: findings, Changes: changes}})
}

// encodedReeval is one re-evaluation made ready outside the transaction.
type encodedReeval struct {
	r       *store.Reevaluation
	what    string
	dbInfo  string
	counts  string
	worst   int
	blob    []byte
	idx     findingIndex
	keys    []string // the index key of each new finding (see indexKey)
	changes []any    // changes rows without scan_id and digest: kind, finding, at, db_version
}

// ReevaluatedBatch records the re-evaluations in ONE transaction: all or
// none. The write is proportional to what changed: the findings index of a
// scan is compared with the stored one and only the rows of findings that
// appeared or disappeared are deleted and inserted; a re-evaluation with
// SameFindings updates the database information alone and leaves the
// findings blob as it is.
func (s *Store) ReevaluatedBatch(ctx context.Context, rs []store.Reevaluation) error {
	if len(rs) == 0 {
		return nil
	}
	enc := make([]encodedReeval, len(rs))
	for i := range rs {
		if err := s.encodeReeval(&rs[i], &enc[i]); err != nil {
			return err
		}
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for i := range enc {
			if err := s.applyReeval(ctx, tx, &enc[i]); err != nil {
				return fmt.Errorf("%s: %w", enc[i].what, err)
			}
		}
		return nil
	})
}

func (s *Store) encodeReeval(r *store.Reevaluation, e *encodedReeval) error {
	e.r = r
	e.what = fmt.Sprintf("re-evaluated scan %d", r.ScanID)
	what := e.what
	if r.SameFindings && len(r.Changes) > 0 {
		return invalid("%s: %d changes, but the findings are said to be the same", what, len(r.Changes))
	}
	e.dbInfo = encodeDB(r.DB)
	e.changes = make([]any, 0, len(r.Changes)*4)
	for i := range r.Changes {
		c := &r.Changes[i]
		if c.ScanID != 0 && c.ScanID != r.ScanID {
			return invalid("%s: change %d is of scan %d", what, i, c.ScanID)
		}
		if err := checkOneOf(what, "change kind", c.Kind, changeKinds); err != nil {
			return err
		}
		if err := s.checkText(what, "database version", c.DBVersion); err != nil {
			return err
		}
		b, err := json.Marshal(&c.Finding)
		if err != nil {
			return invalid("%s: change %d: %v", what, i, err)
		}
		if len(b) > s.opt.MaxBlob {
			return fmt.Errorf("%w: %s: change %d is %d bytes", store.ErrTooLarge, what, i, len(b))
		}
		at := c.At
		if at.IsZero() {
			at = now()
		}
		e.changes = append(e.changes, c.Kind, string(b), micros(at), c.DBVersion)
	}
	if r.SameFindings {
		return nil
	}
	findings := r.Findings
	if findings == nil {
		findings = []finding.Finding{}
	}
	var err error
	if e.blob, err = s.codec.encode(what+": findings", findings); err != nil {
		return err
	}
	e.counts = counts(findings)
	e.worst = worst(findings)
	e.idx = s.indexFindings(findings)
	ids := make([][]string, e.idx.n)
	for i := 0; i < len(e.idx.ids); i += 2 {
		ord := e.idx.ids[i].(int)
		ids[ord] = append(ids[ord], e.idx.ids[i+1].(string))
	}
	e.keys = make([]string, e.idx.n)
	for i := range e.keys {
		row := e.idx.rows[i*8 : i*8+8]
		e.keys[i] = indexKey(row[1].(string), row[2].(string), row[3].(string), row[4].(string), row[5].(string),
			int64(row[6].(int)), int64(row[7].(int)), ids[i])
	}
	return nil
}

// indexKey is what one scan_findings row and its finding_ids say: two rows
// with one key are interchangeable. The texts hold no NUL (indexText).
func indexKey(kind, vulnID, pkg, version, fixed string, severity, suppressed int64, ids []string) string {
	slices.Sort(ids)
	var b strings.Builder
	for _, v := range []string{kind, vulnID, pkg, version, fixed, strconv.FormatInt(severity, 10), strconv.FormatInt(suppressed, 10)} {
		b.WriteString(v)
		b.WriteByte(0)
	}
	for _, id := range ids {
		b.WriteString(id)
		b.WriteByte(1)
	}
	return b.String()
}

func (s *Store) applyReeval(ctx context.Context, tx *sql.Tx, e *encodedReeval) error {
	id := e.r.ScanID
	var digest string
	var err error
	if e.r.SameFindings {
		err = tx.QueryRowContext(ctx, s.q("UPDATE scans SET db_info = ? WHERE id = ? RETURNING digest"), e.dbInfo, id).Scan(&digest)
	} else {
		err = tx.QueryRowContext(ctx, s.q("UPDATE scans SET db_info = ?, counts = ?, worst = ?, findings = ?, n_findings = ? WHERE id = ? RETURNING digest"),
			e.dbInfo, e.counts, e.worst, e.blob, e.idx.n, id).Scan(&digest)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	if err != nil {
		return err
	}
	if !e.r.SameFindings {
		// Only the latest scan of a digest is indexed (see PutScan): an
		// older one has no index rows to bring up to date.
		var latest int64
		if err := tx.QueryRowContext(ctx, s.q("SELECT latest_scan_id FROM images WHERE digest = ?"), digest).Scan(&latest); err != nil {
			return err
		}
		if latest == id {
			// fleet_vulns counts each scan once per vulnerability: take the
			// scan out, change its rows, count it in again (after the
			// counts this transaction still owes: see txState).
			if err := txStateOf(ctx).flush(ctx, tx); err != nil {
				return err
			}
			if err := s.fleetRemove(ctx, tx, "scan_id = ?", id); err != nil {
				return err
			}
			if err := s.updateFindingIndex(ctx, tx, id, e); err != nil {
				return err
			}
			if err := s.fleetAdd(ctx, tx, "scan_id = ?", id); err != nil {
				return err
			}
		}
	}
	if len(e.changes) == 0 {
		return nil
	}
	rows := make([]any, 0, len(e.changes)/4*6)
	for i := 0; i < len(e.changes); i += 4 {
		rows = append(rows, id, digest, e.changes[i], e.changes[i+1], e.changes[i+2], e.changes[i+3])
	}
	return s.insertRows(ctx, tx, "INSERT INTO changes (scan_id, digest, kind, finding, at, db_version)", 6, rows)
}

// updateFindingIndex brings a scan's stored findings index to e's: the
// rows whose key is in both stay (an ord identifies a row within its scan,
// not a place in the findings list), those only stored are deleted, those
// only new are inserted after the highest stored ord.
func (s *Store) updateFindingIndex(ctx context.Context, tx *sql.Tx, id int64, e *encodedReeval) error {
	type old struct {
		kind, vulnID, pkg, version, fixed string
		severity, suppressed              int64
		ids                               []string
	}
	stored := map[int64]*old{}
	maxOrd := int64(-1)
	rows, err := tx.QueryContext(ctx, s.q("SELECT ord, kind, vuln_id, package, version, fixed, severity, suppressed FROM scan_findings WHERE scan_id = ?"), id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var ord int64
		o := new(old)
		if err := rows.Scan(&ord, &o.kind, &o.vulnID, &o.pkg, &o.version, &o.fixed, &o.severity, &o.suppressed); err != nil {
			rows.Close()
			return err
		}
		stored[ord] = o
		maxOrd = max(maxOrd, ord)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = tx.QueryContext(ctx, s.q("SELECT ord, id FROM finding_ids WHERE scan_id = ?"), id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var ord int64
		var fid string
		if err := rows.Scan(&ord, &fid); err != nil {
			rows.Close()
			return err
		}
		if o := stored[ord]; o != nil {
			o.ids = append(o.ids, fid)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	byKey := make(map[string][]int64, len(stored))
	for ord, o := range stored {
		k := indexKey(o.kind, o.vulnID, o.pkg, o.version, o.fixed, o.severity, o.suppressed, o.ids)
		byKey[k] = append(byKey[k], ord)
	}
	var add []int // new findings to insert
	for i, k := range e.keys {
		if ords := byKey[k]; len(ords) > 0 {
			byKey[k] = ords[1:]
			continue
		}
		add = append(add, i)
	}
	var gone []any
	for _, ords := range byKey {
		for _, o := range ords {
			gone = append(gone, o)
		}
	}
	if err := chunked(gone, func(in string, ords []any) error {
		args := append([]any{id}, ords...)
		if _, err := tx.ExecContext(ctx, s.q("DELETE FROM finding_ids WHERE scan_id = ? AND ord IN "+in), args...); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q("DELETE FROM scan_findings WHERE scan_id = ? AND ord IN "+in), args...)
		return err
	}); err != nil {
		return err
	}
	if len(add) == 0 {
		return nil
	}
	// The new rows, renumbered after the stored ones.
	var x findingIndex
	newOrd := make(map[int]int64, len(add))
	for k, i := range add {
		ord := maxOrd + 1 + int64(k)
		newOrd[i] = ord
		x.rows = append(x.rows, ord)
		x.rows = append(x.rows, e.idx.rows[i*8+1:i*8+8]...)
	}
	for j := 0; j < len(e.idx.ids); j += 2 {
		if ord, ok := newOrd[e.idx.ids[j].(int)]; ok {
			x.ids = append(x.ids, ord, e.idx.ids[j+1])
		}
	}
	return s.insertFindingRows(ctx, tx, id, x)
}
