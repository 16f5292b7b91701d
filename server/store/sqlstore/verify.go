package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Verify checks the database: on SQLite, PRAGMA integrity_check and
// foreign_key_check; on both, that no index row is orphaned and that every scan's blobs decode and agree with
// its index rows (packages; findings of the latest scans only) and worst
// severity. It reads everything: for tests and
// an operator's check, not for every start.
func (s *Store) Verify(ctx context.Context) error {
	if err := s.indexed(ctx); err != nil {
		return err
	}
	if s.dialect == SQLite {
		rows, err := s.db.QueryContext(ctx, "PRAGMA integrity_check")
		if err != nil {
			return fmt.Errorf("verify %s: %w", s.Location, err)
		}
		var msgs []string
		for rows.Next() {
			var m string
			if err := rows.Scan(&m); err != nil {
				rows.Close()
				return fmt.Errorf("verify %s: %w", s.Location, err)
			}
			msgs = append(msgs, m)
		}
		rows.Close()
		if len(msgs) != 1 || msgs[0] != "ok" {
			return fmt.Errorf("verify %s: integrity check: %s", s.Location, strings.Join(msgs, "; "))
		}
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM pragma_foreign_key_check").Scan(&n); err != nil {
			return fmt.Errorf("verify %s: %w", s.Location, err)
		}
		if n > 0 {
			return fmt.Errorf("verify %s: %d rows break a foreign key", s.Location, n)
		}
	}
	// The index tables have no foreign keys (migration 00005): no row may
	// point at a scan, or a finding row, that is not there.
	for _, q := range []struct{ what, query string }{
		{"package rows of no scan", "SELECT COUNT(*) FROM scan_packages p WHERE NOT EXISTS (SELECT 1 FROM scans s WHERE s.id = p.scan_id)"},
		{"finding rows of no scan", "SELECT COUNT(*) FROM scan_findings f WHERE NOT EXISTS (SELECT 1 FROM scans s WHERE s.id = f.scan_id)"},
		{"finding ID rows of no finding row", "SELECT COUNT(*) FROM finding_ids x WHERE NOT EXISTS (SELECT 1 FROM scan_findings f WHERE f.scan_id = x.scan_id AND f.ord = x.ord)"},
	} {
		var n int
		if err := s.db.QueryRowContext(ctx, q.query).Scan(&n); err != nil {
			return fmt.Errorf("verify %s: %w", s.Location, err)
		}
		if n > 0 {
			return fmt.Errorf("verify %s: %d %s", s.Location, n, q.what)
		}
	}
	pk, err := s.countBy(ctx, "SELECT scan_id, COUNT(*) FROM scan_packages GROUP BY scan_id")
	if err != nil {
		return err
	}
	fk, err := s.countBy(ctx, "SELECT scan_id, COUNT(*) FROM scan_findings GROUP BY scan_id")
	if err != nil {
		return err
	}
	latest, err := s.countBy(ctx, "SELECT latest_scan_id, 1 FROM images")
	if err != nil {
		return err
	}
	var dangling int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM images i LEFT JOIN scans s ON s.id = i.latest_scan_id WHERE s.id IS NULL").Scan(&dangling); err != nil {
		return fmt.Errorf("verify %s: %w", s.Location, err)
	}
	if dangling > 0 {
		return fmt.Errorf("verify %s: %d images have no latest scan", s.Location, dangling)
	}
	if err := s.verifyFleet(ctx); err != nil {
		return err
	}
	after := int64(0)
	for {
		rows, err := s.db.QueryContext(ctx, s.q("SELECT "+scanCols+", s.inventory, s.findings, s.packages, s.n_findings, s.worst FROM scans s WHERE s.id > ? ORDER BY s.id LIMIT 64"), after)
		if err != nil {
			return fmt.Errorf("verify %s: %w", s.Location, err)
		}
		n := 0
		for rows.Next() {
			var sc store.Scan
			var at int64
			var db string
			var inv, fs []byte
			var np, nf, w int64
			if err := rows.Scan(&sc.ID, &sc.Digest, &sc.Repository, &at, &sc.Source, &db, &inv, &fs, &np, &nf, &w); err != nil {
				rows.Close()
				return fmt.Errorf("verify %s: %w", s.Location, err)
			}
			n++
			after = sc.ID
			if err := s.decodeBlobs(&sc, inv, fs); err != nil {
				rows.Close()
				return fmt.Errorf("verify %s: %w", s.Location, err)
			}
			if int64(len(sc.Inventory.Packages)) != np || pk[sc.ID] != np {
				rows.Close()
				return fmt.Errorf("verify %s: scan %d: %d packages in the inventory, %d recorded, %d indexed", s.Location, sc.ID, len(sc.Inventory.Packages), np, pk[sc.ID])
			}
			indexed := nf
			if latest[sc.ID] == 0 {
				indexed = 0 // only the latest scan of a digest is indexed
			}
			if int64(len(sc.Findings)) != nf || fk[sc.ID] != indexed {
				rows.Close()
				return fmt.Errorf("verify %s: scan %d: %d findings, %d recorded, %d indexed (want %d)", s.Location, sc.ID, len(sc.Findings), nf, fk[sc.ID], indexed)
			}
			if int64(worst(sc.Findings)) != w {
				rows.Close()
				return fmt.Errorf("verify %s: scan %d: worst severity %d recorded, %d in its findings", s.Location, sc.ID, w, worst(sc.Findings))
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("verify %s: %w", s.Location, err)
		}
		if n == 0 {
			return nil
		}
	}
}

func (s *Store) countBy(ctx context.Context, q string) (map[int64]int64, error) {
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", s.Location, err)
	}
	defer rows.Close()
	m := map[int64]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("verify %s: %w", s.Location, err)
		}
		m[id] = n
	}
	return m, rows.Err()
}

// verifyFleet checks fleet_vulns against the finding index.
func (s *Store) verifyFleet(ctx context.Context) error {
	var bad int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM (
		SELECT COALESCE(f.vuln_id, d.vuln_id) AS id FROM fleet_vulns f FULL OUTER JOIN (`+fmt.Sprintf(fleetDelta, "1 = 1")+`) d ON d.vuln_id = f.vuln_id
		WHERE (d.vuln_id IS NULL AND f.n0 + f.n1 + f.n2 + f.n3 + f.n4 + f.fixable <> 0)
		   OR (d.vuln_id IS NOT NULL AND (f.vuln_id IS NULL OR f.n0 <> d.d0 OR f.n1 <> d.d1 OR f.n2 <> d.d2 OR f.n3 <> d.d3 OR f.n4 <> d.d4 OR f.fixable <> d.dfx))) x`).Scan(&bad)
	if err != nil {
		return fmt.Errorf("verify %s: fleet_vulns: %w", s.Location, err)
	}
	if bad > 0 {
		return fmt.Errorf("verify %s: fleet_vulns disagrees with the finding index for %d vulnerabilities", s.Location, bad)
	}
	return nil
}
