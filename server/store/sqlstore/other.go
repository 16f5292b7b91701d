package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

func (s *Store) upsertSighting(ctx context.Context, tx *sql.Tx, seen *store.Sighting) error {
	at := seen.SeenAt
	if at.IsZero() {
		at = now()
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO sightings (digest, reference, kind, cluster, namespace, workload, ci_run, first_seen_at, seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (digest, reference, kind, cluster, namespace, workload, ci_run) DO UPDATE
		SET seen_at = CASE WHEN excluded.seen_at > sightings.seen_at THEN excluded.seen_at ELSE sightings.seen_at END`),
		seen.Digest, seen.Reference, seen.Kind, seen.Cluster, seen.Namespace, seen.Workload, seen.CIRun, micros(at), micros(at))
	return err
}

// AddSighting records where a digest was seen. The same place seen again
// moves its time forward; it is one row.
func (s *Store) AddSighting(ctx context.Context, seen *store.Sighting) error {
	const what = "add sighting"
	if seen == nil {
		return invalid("%s: no sighting", what)
	}
	if err := s.checkSighting(what, seen); err != nil {
		return err
	}
	if err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error { return s.upsertSighting(ctx, tx, seen) }); err != nil {
		return fmt.Errorf("%s %s: %w", what, seen.Digest, err)
	}
	return nil
}

// Images lists the latest scan of every image, in ascending scan ID; After
// is the ScanID of the previous page's last summary. Package alone keeps
// the images whose inventory holds a package of that name. MinSeverity
// and Fixed keep the images with at least one unsuppressed finding at or
// above that severity (and, with Fixed, a vulnerability with or without a
// fixed version), in that package when Package is set too.
func (s *Store) Images(ctx context.Context, f store.ImageFilter) ([]store.ImageSummary, error) {
	if err := s.indexed(ctx); err != nil {
		return nil, err
	}
	q := `SELECT ` + summaryCols + `
		FROM images i JOIN scans s ON s.id = i.latest_scan_id WHERE i.latest_scan_id > ?`
	args := []any{f.After}
	if f.Repository != "" {
		q += " AND s.repository = ?"
		args = append(args, f.Repository)
	}
	if f.Worst != nil {
		q += " AND s.worst = ?"
		args = append(args, int(*f.Worst))
	}
	if f.Query != "" {
		if err := s.checkText("images", "query", f.Query); err != nil {
			return nil, err
		}
		q += ` AND (LOWER(s.repository) LIKE ? ESCAPE '\' OR i.digest LIKE ? ESCAPE '\')`
		pat := "%" + likeEscape(strings.ToLower(f.Query)) + "%"
		args = append(args, pat, pat)
	}
	if f.MinSeverity > finding.Unknown || f.Fixed != nil {
		q += " AND EXISTS (SELECT 1 FROM scan_findings f WHERE f.scan_id = s.id AND f.suppressed = 0 AND f.severity >= ?"
		args = append(args, int(f.MinSeverity))
		if f.Fixed != nil {
			op := "="
			if *f.Fixed {
				op = "<>"
			}
			q += " AND f.kind = 'vulnerability' AND f.fixed " + op + " ''"
		}
		if f.Package != "" {
			q += " AND f.package = ?"
			args = append(args, f.Package)
		}
		q += ")"
	} else if f.Package != "" {
		q += " AND EXISTS (SELECT 1 FROM scan_packages p WHERE p.name = ? AND p.scan_id = s.id)"
		args = append(args, f.Package)
	}
	q += " ORDER BY i.latest_scan_id LIMIT ?"
	args = append(args, page(f.Limit))
	out, err := s.summaries(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	return out, nil
}

const summaryCols = "i.digest, s.repository, s.id, s.scanned_at, s.packages, s.counts, s.worst"

// summaries runs a query selecting summaryCols.
func (s *Store) summaries(ctx context.Context, q string, args ...any) ([]store.ImageSummary, error) {
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.ImageSummary{}
	for rows.Next() {
		var m store.ImageSummary
		var at int64
		var c string
		var w int
		if err := rows.Scan(&m.Digest, &m.Repository, &m.ScanID, &at, &m.Packages, &c, &w); err != nil {
			return nil, err
		}
		m.ScannedAt, m.Worst = fromMicros(at), finding.Severity(w)
		if err := json.Unmarshal([]byte(c), &m.Counts); err != nil {
			return nil, fmt.Errorf("scan %d: counts: %w", m.ScanID, err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// likeEscape escapes LIKE's wildcards (the escape character is '\').
func likeEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(v)
}

// maxAffected bounds one Affected answer.
const maxAffected = 100000

// Affected lists the images whose latest scan has an unsuppressed finding
// with this ID or alias (case-insensitive), with where they were seen.
func (s *Store) Affected(ctx context.Context, vulnID string) ([]store.Affected, error) {
	if err := s.indexed(ctx); err != nil {
		return nil, err
	}
	id := strings.ToUpper(strings.TrimSpace(vulnID))
	if id == "" {
		return nil, invalid("affected: no vulnerability ID")
	}
	if err := s.checkText("affected", "vulnerability ID", id); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT i.digest, s.repository, s.id, f.package, f.version, f.fixed
		FROM finding_ids x
		JOIN images i ON i.latest_scan_id = x.scan_id
		JOIN scans s ON s.id = x.scan_id
		JOIN scan_findings f ON f.scan_id = x.scan_id AND f.ord = x.ord
		WHERE x.id = ? AND f.suppressed = 0
		ORDER BY s.id, f.package, f.version, f.ord LIMIT ?`), id, maxAffected+1)
	if err != nil {
		return nil, fmt.Errorf("affected by %s: %w", vulnID, err)
	}
	defer rows.Close()
	out := []store.Affected{}
	type key struct {
		scan     int64
		pkg, ver string
	}
	dup := map[key]bool{}
	for rows.Next() {
		var a store.Affected
		if err := rows.Scan(&a.Digest, &a.Repository, &a.ScanID, &a.Package, &a.Version, &a.Fixed); err != nil {
			return nil, fmt.Errorf("affected by %s: %w", vulnID, err)
		}
		k := key{a.ScanID, a.Package, a.Version}
		if dup[k] {
			continue
		}
		dup[k] = true
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("affected by %s: %w", vulnID, err)
	}
	rows.Close()
	if len(out) > maxAffected {
		return nil, fmt.Errorf("%w: affected by %s: over %d package findings", store.ErrTooLarge, vulnID, maxAffected)
	}
	seen, err := s.sightingsOf(ctx, out)
	if err != nil {
		return nil, fmt.Errorf("affected by %s: %w", vulnID, err)
	}
	for i := range out {
		out[i].Sightings = seen[out[i].Digest]
	}
	return out, nil
}

func (s *Store) sightingsOf(ctx context.Context, as []store.Affected) (map[string][]store.Sighting, error) {
	var digests []string
	set := map[string]bool{}
	for _, a := range as {
		if !set[a.Digest] {
			set[a.Digest] = true
			digests = append(digests, a.Digest)
		}
	}
	out := map[string][]store.Sighting{}
	for len(digests) > 0 {
		n := min(len(digests), 400)
		args := make([]any, n)
		for i := range n {
			args[i] = digests[i]
		}
		digests = digests[n:]
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT digest, reference, kind, cluster, namespace, workload, ci_run, seen_at
			FROM sightings WHERE digest IN (?`+strings.Repeat(",?", n-1)+`) ORDER BY digest, seen_at DESC, id`), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var g store.Sighting
			var at int64
			if err := rows.Scan(&g.Digest, &g.Reference, &g.Kind, &g.Cluster, &g.Namespace, &g.Workload, &g.CIRun, &at); err != nil {
				rows.Close()
				return nil, err
			}
			g.SeenAt = fromMicros(at)
			out[g.Digest] = append(out[g.Digest], g)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Sightings lists where a digest was seen, most recent first.
func (s *Store) Sightings(ctx context.Context, digest string) ([]store.Sighting, error) {
	m, err := s.sightingsOf(ctx, []store.Affected{{Digest: digest}})
	if err != nil {
		return nil, fmt.Errorf("sightings of %s: %w", digest, err)
	}
	return m[digest], nil
}

// Changes lists the findings that appeared or disappeared after since,
// oldest first.
func (s *Store) Changes(ctx context.Context, since time.Time, limit int) ([]store.Change, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT scan_id, digest, kind, finding, at, db_version FROM changes
		WHERE at > ? ORDER BY at, id LIMIT ?`), micros(since), page(limit))
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	defer rows.Close()
	out := []store.Change{}
	for rows.Next() {
		var c store.Change
		var f string
		var at int64
		if err := rows.Scan(&c.ScanID, &c.Digest, &c.Kind, &f, &at, &c.DBVersion); err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		if err := json.Unmarshal([]byte(f), &c.Finding); err != nil {
			return nil, fmt.Errorf("changes: scan %d: %w", c.ScanID, err)
		}
		c.At = fromMicros(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	return out, nil
}

// PutEvent stores a runtime alert or a gate/admission decision.
func (s *Store) PutEvent(ctx context.Context, e *store.Event) (int64, error) {
	const what = "put event"
	if e == nil {
		return 0, invalid("%s: no event", what)
	}
	if err := checkOneOf(what, "kind", e.Kind, eventKinds); err != nil {
		return 0, err
	}
	if e.Digest != "" {
		if err := checkDigest(what, e.Digest); err != nil {
			return 0, err
		}
	}
	for _, f := range []struct{ name, v string }{{"priority", e.Priority}, {"rule", e.Rule}, {"container", e.Container}, {"namespace", e.Namespace}} {
		if err := s.checkText(what, f.name, f.v); err != nil {
			return 0, err
		}
	}
	if len(e.Output) > s.opt.MaxEventBody || len(e.Body) > s.opt.MaxEventBody {
		return 0, fmt.Errorf("%w: %s: the body or output is over the limit of %d bytes", store.ErrTooLarge, what, s.opt.MaxEventBody)
	}
	if strings.IndexByte(e.Output, 0) >= 0 || !utf8.ValidString(e.Output) {
		return 0, invalid("%s: the output holds a NUL byte or invalid UTF-8", what)
	}
	body := e.Body
	if body == nil {
		body = []byte{}
	}
	at := e.At
	if at.IsZero() {
		at = now()
	}
	var id int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, s.q(`INSERT INTO events (kind, digest, priority, rule, output, container, namespace, body, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), e.Kind, e.Digest, e.Priority, e.Rule, e.Output, e.Container, e.Namespace, body, micros(at)).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return id, nil
}

// Events lists events after since, oldest first; digest "" is every image.
func (s *Store) Events(ctx context.Context, digest string, since time.Time, limit int) ([]store.Event, error) {
	q := "SELECT " + eventCols + " FROM events WHERE at > ?"
	args := []any{micros(since)}
	if digest != "" {
		q += " AND digest = ?"
		args = append(args, digest)
	}
	q += " ORDER BY at, id LIMIT ?"
	args = append(args, page(limit))
	out, err := s.events(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}

const eventCols = "id, kind, digest, priority, rule, output, container, namespace, body, at"

func (s *Store) events(ctx context.Context, q string, args ...any) ([]store.Event, error) {
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Event{}
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.Digest, &e.Priority, &e.Rule, &e.Output, &e.Container, &e.Namespace, &e.Body, &at); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PutToken stores a token (its hash). A name or hash already stored is
// ErrConflict.
func (s *Store) PutToken(ctx context.Context, t *store.Token) (int64, error) {
	const what = "put token"
	if t == nil {
		return 0, invalid("%s: no token", what)
	}
	if t.Name == "" || len(t.Name) > maxTokenName {
		return 0, invalid("%s: the name must be 1 to %d bytes", what, maxTokenName)
	}
	if err := s.checkText(what, "name", t.Name); err != nil {
		return 0, err
	}
	if err := checkOneOf(what, "role", t.Role, tokenRoles); err != nil {
		return 0, err
	}
	if len(t.Hash) < minHash || len(t.Hash) > maxHash {
		return 0, invalid("%s %s: the hash is %d bytes, want %d to %d (store a hash of the token, never the token)", what, t.Name, len(t.Hash), minHash, maxHash)
	}
	at := t.CreatedAt
	if at.IsZero() {
		at = now()
	}
	var id int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM tokens WHERE name = ? OR hash = ?"), t.Name, t.Hash).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrConflict
		}
		return tx.QueryRowContext(ctx, s.q("INSERT INTO tokens (name, role, hash, created_at) VALUES (?, ?, ?, ?) RETURNING id"),
			t.Name, t.Role, t.Hash, micros(at)).Scan(&id)
	})
	if isUnique(err) {
		err = store.ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", what, t.Name, err)
	}
	return id, nil
}

// TokenByHash finds a token by its hash.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*store.Token, error) {
	var t store.Token
	var at int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT id, name, role, hash, created_at FROM tokens WHERE hash = ?"), hash).
		Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	t.CreatedAt = fromMicros(at)
	return &t, nil
}

// Tokens lists the tokens by name (with their hashes).
func (s *Store) Tokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, name, role, hash, created_at FROM tokens ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		var t store.Token
		var at int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Role, &t.Hash, &at); err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		t.CreatedAt = fromMicros(at)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, rows.Err()
}

// DeleteToken deletes a token by name.
func (s *Store) DeleteToken(ctx context.Context, name string) error {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, s.q("DELETE FROM tokens WHERE name = ?"), name)
		if err != nil {
			return err
		}
		n, err = r.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("delete token %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("delete token %s: %w", name, store.ErrNotFound)
	}
	return nil
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
