package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// A scan's provenance (scan_provenance) and the fleet's daily snapshots
// (fleet_trend), migration 00003.

// maxProvenance bounds each of a scan's provenance documents (the base
// recommendation ranks a catalog of a few dozen bases: some kilobytes).
const maxProvenance = 1 << 20

var (
	signatureStatuses = []string{store.SignatureVerified, store.SignatureFailed, store.SignatureNoPolicy, store.SignatureNotChecked}
	checkers          = []string{store.CheckedByServer, store.CheckedByUpload}
)

// encodeProvenance checks p and makes its two JSON columns ("" for a
// missing part).
func encodeProvenance(what string, p *store.Provenance) (base, sig string, err error) {
	if p == nil {
		return "", "", nil
	}
	if p.Signature != nil {
		if err := checkOneOf(what, "signature status", p.Signature.Status, signatureStatuses); err != nil {
			return "", "", err
		}
		if err := checkOneOf(what, "signature checkedBy", p.Signature.CheckedBy, checkers); err != nil {
			return "", "", err
		}
	}
	enc := func(field string, v any) (string, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return "", invalid("%s: %s: %v", what, field, err)
		}
		if len(b) > maxProvenance {
			return "", fmt.Errorf("%w: %s: the %s is %d bytes of JSON, over the limit of %d", store.ErrTooLarge, what, field, len(b), maxProvenance)
		}
		return string(b), nil
	}
	if p.Base != nil {
		if base, err = enc("base image", p.Base); err != nil {
			return "", "", err
		}
	}
	if p.Signature != nil {
		if sig, err = enc("signature status", p.Signature); err != nil {
			return "", "", err
		}
	}
	return base, sig, nil
}

// putProvenance writes a scan's provenance in the scan's transaction.
func (s *Store) putProvenance(ctx context.Context, tx *sql.Tx, id int64, base, sig string) error {
	if base == "" && sig == "" {
		return nil
	}
	_, err := tx.ExecContext(ctx, s.q("INSERT INTO scan_provenance (scan_id, base, signature) VALUES (?, ?, ?)"), id, base, sig)
	return err
}

// Provenance is the provenance stored with a scan.
func (s *Store) Provenance(ctx context.Context, scanID int64) (*store.Provenance, error) {
	var base, sig string
	err := s.db.QueryRowContext(ctx, s.q("SELECT base, signature FROM scan_provenance WHERE scan_id = ?"), scanID).Scan(&base, &sig)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: scan %d has no provenance recorded", store.ErrNotFound, scanID)
	}
	if err != nil {
		return nil, fmt.Errorf("provenance of scan %d: %w", scanID, err)
	}
	p := &store.Provenance{}
	if base != "" {
		p.Base = &store.BaseImage{}
		if err := json.Unmarshal([]byte(base), p.Base); err != nil {
			return nil, fmt.Errorf("provenance of scan %d: base image: %w", scanID, err)
		}
	}
	if sig != "" {
		p.Signature = &store.SignatureStatus{}
		if err := json.Unmarshal([]byte(sig), p.Signature); err != nil {
			return nil, fmt.Errorf("provenance of scan %d: signature: %w", scanID, err)
		}
	}
	return p, nil
}

// trendSeverities are fleet_trend's columns, in the order of
// finding.Severity (UNKNOWN to CRITICAL).
var trendSeverities = []finding.Severity{finding.Unknown, finding.Low, finding.Medium, finding.High, finding.Critical}

// SnapshotFleet sums the latest scans' counts (Fleet: one small row per
// image, ~1,000 rows for 1,000 images, read outside the write transaction
// so that the SQLite writer is not held) and keeps them as the point of
// at's UTC day, unless that day already holds a snapshot of a later at.
// Callers pass the time they ask at: a snapshot asked later reads a fleet
// at least as new, so the later one wins whatever order they commit in.
func (s *Store) SnapshotFleet(ctx context.Context, at time.Time) error {
	at = at.UTC().Truncate(time.Microsecond)
	fl, err := s.Fleet(ctx)
	if err != nil {
		return fmt.Errorf("snapshot the fleet: %w", err)
	}
	args := []any{micros(at.Truncate(24 * time.Hour)), micros(at), fl.Images}
	for _, sev := range trendSeverities {
		args = append(args, fl.Findings[sev.String()])
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO fleet_trend (day, at, images, unknown, low, medium, high, critical) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (day) DO UPDATE SET at = excluded.at, images = excluded.images, unknown = excluded.unknown, low = excluded.low,
			medium = excluded.medium, high = excluded.high, critical = excluded.critical WHERE fleet_trend.at <= excluded.at`), args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot the fleet: %w", err)
	}
	return nil
}

// FleetTrend lists the daily snapshots since, oldest first.
func (s *Store) FleetTrend(ctx context.Context, since time.Time) ([]store.FleetPoint, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT day, at, images, unknown, low, medium, high, critical FROM fleet_trend
		WHERE day >= ? ORDER BY day LIMIT ?`), micros(since.UTC().Truncate(24*time.Hour)), maxPage)
	if err != nil {
		return nil, fmt.Errorf("fleet trend: %w", err)
	}
	defer rows.Close()
	out := []store.FleetPoint{}
	for rows.Next() {
		var d, at int64
		var p store.FleetPoint
		n := make([]int, len(trendSeverities))
		if err := rows.Scan(&d, &at, &p.Images, &n[0], &n[1], &n[2], &n[3], &n[4]); err != nil {
			return nil, fmt.Errorf("fleet trend: %w", err)
		}
		p.Day, p.At, p.Findings = fromMicros(d), fromMicros(at), map[string]int{}
		for i, sev := range trendSeverities {
			p.Findings[sev.String()] = n[i]
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet trend: %w", err)
	}
	return out, nil
}
