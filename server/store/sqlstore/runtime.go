package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

var _ store.RuntimeStore = (*Store)(nil)

var imageIDRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^sha256:[0-9a-f]{64}$`) })

func checkImageID(what, id string) error {
	if !imageIDRe().MatchString(id) {
		return invalid("%s: image id %q is not sha256:<64 lower-case hex digits>", what, id)
	}
	return nil
}

// PutProfile stores (replaces) a runtime profile. The document is bounded
// by MaxBlob.
func (s *Store) PutProfile(ctx context.Context, p *store.RuntimeProfile) error {
	const what = "put runtime profile"
	if p == nil {
		return invalid("%s: no profile", what)
	}
	if err := checkImageID(what, p.Image); err != nil {
		return err
	}
	if err := checkOneOf(what, "state", p.State, []string{"learning", "enforcing"}); err != nil {
		return err
	}
	if len(p.Document) == 0 {
		return invalid("%s %s: empty document", what, p.Image)
	}
	if len(p.Document) > s.opt.MaxBlob {
		return fmt.Errorf("%w: %s %s: the document is %d bytes, over the limit of %d", store.ErrTooLarge, what, p.Image, len(p.Document), s.opt.MaxBlob)
	}
	for _, n := range p.Names {
		if err := s.checkText(what, "name", n); err != nil {
			return err
		}
	}
	names, err := json.Marshal(p.Names)
	if err != nil {
		return err
	}
	at := p.UpdatedAt
	if at.IsZero() {
		at = now()
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO runtime_profiles (image_id, state, names, entries, document, updated_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (image_id) DO UPDATE SET state = excluded.state, names = excluded.names, entries = excluded.entries, document = excluded.document, updated_at = excluded.updated_at`),
			p.Image, p.State, string(names), p.Entries, p.Document, micros(at))
		return err
	})
}

// Profile returns one runtime profile with its document.
func (s *Store) Profile(ctx context.Context, image string) (*store.RuntimeProfile, error) {
	var p store.RuntimeProfile
	var names string
	var at int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT image_id, state, names, entries, document, updated_at FROM runtime_profiles WHERE image_id = ?"), image).
		Scan(&p.Image, &p.State, &names, &p.Entries, &p.Document, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("runtime profile %s: %w", image, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(names), &p.Names); err != nil {
		return nil, fmt.Errorf("runtime profile %s: stored names: %w", image, err)
	}
	p.UpdatedAt = fromMicros(at)
	return &p, nil
}

// Profiles lists runtime profiles in image id order, without documents.
func (s *Store) Profiles(ctx context.Context, after string, limit int) ([]store.RuntimeProfile, error) {
	rows, err := s.db.QueryContext(ctx, s.q("SELECT image_id, state, names, entries, updated_at FROM runtime_profiles WHERE image_id > ? ORDER BY image_id LIMIT ?"), after, page(limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.RuntimeProfile{}
	for rows.Next() {
		var p store.RuntimeProfile
		var names string
		var at int64
		if err := rows.Scan(&p.Image, &p.State, &names, &p.Entries, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(names), &p.Names); err != nil {
			return nil, fmt.Errorf("runtime profile %s: stored names: %w", p.Image, err)
		}
		p.UpdatedAt = fromMicros(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// PutFileList stores (replaces) an image's file list (gzip JSON, bounded
// by MaxBlob compressed).
func (s *Store) PutFileList(ctx context.Context, f *store.FileList) error {
	const what = "put image file list"
	if f == nil {
		return invalid("%s: no file list", what)
	}
	if err := checkImageID(what, f.Image); err != nil {
		return err
	}
	if len(f.Gzip) == 0 {
		return invalid("%s %s: empty body", what, f.Image)
	}
	if len(f.Gzip) > s.opt.MaxBlob {
		return fmt.Errorf("%w: %s %s: %d bytes, over the limit of %d", store.ErrTooLarge, what, f.Image, len(f.Gzip), s.opt.MaxBlob)
	}
	at := f.UpdatedAt
	if at.IsZero() {
		at = now()
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO image_filelists (image_id, files, body, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (image_id) DO UPDATE SET files = excluded.files, body = excluded.body, updated_at = excluded.updated_at`),
			f.Image, f.Files, f.Gzip, micros(at))
		return err
	})
}

// FileList returns one image's file list.
func (s *Store) FileList(ctx context.Context, image string) (*store.FileList, error) {
	var f store.FileList
	var at int64
	err := s.db.QueryRowContext(ctx, s.q("SELECT image_id, files, body, updated_at FROM image_filelists WHERE image_id = ?"), image).
		Scan(&f.Image, &f.Files, &f.Gzip, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("image file list %s: %w", image, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	f.UpdatedAt = fromMicros(at)
	return &f, nil
}
