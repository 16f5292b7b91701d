package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

var tables = []string{"images", "scans", "scan_packages", "scan_findings", "finding_ids", "changes", "sightings", "events", "tokens"}

func rowCounts(t *testing.T, s *Store) map[string]int {
	t.Helper()
	if err := s.indexed(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Helper()
	m := map[string]int{}
	for _, tb := range tables {
		var n int
		if err := s.db.QueryRow("SELECT COUNT(*) FROM " + tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		m[tb] = n
	}
	return m
}

// TestBadInput: every bad write is refused with a typed error that says
// what is wrong, and writes nothing. The limits are small here; the
// production defaults are DefaultMaxBlob and friends.
func TestBadInput(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			s := openT(t, b.dsn(t), Options{MaxBlob: 64 << 10, MaxEventBody: 1 << 10, MaxString: 200})
			good := genScan(1, 10)
			id := putT(t, s, good, nil)
			before := rowCounts(t, s)
			with := func(f func(sc *store.Scan)) *store.Scan {
				sc := genScan(2, 10)
				f(sc)
				return sc
			}
			big := genScan(3, 400) // ~150 KiB of JSON, over 64 KiB
			nul := genScan(4, 2)
			nul.Findings = nil
			for _, tc := range []struct {
				name string
				want error
				text string // in the message
				call func() error
			}{
				{"nil scan", store.ErrInvalid, "no scan", func() error { _, err := s.PutScan(ctx, nil, nil); return err }},
				{"no inventory", store.ErrInvalid, "no inventory", func() error {
					_, err := s.PutScan(ctx, with(func(sc *store.Scan) { sc.Inventory = nil }), nil)
					return err
				}},
				{"bad digest", store.ErrInvalid, "image digest", func() error {
					_, err := s.PutScan(ctx, with(func(sc *store.Scan) { sc.Digest = "sha256:abc" }), nil)
					return err
				}},
				{"bad source", store.ErrInvalid, "source", func() error {
					_, err := s.PutScan(ctx, with(func(sc *store.Scan) { sc.Source = "ftp" }), nil)
					return err
				}},
				{"oversized repository", store.ErrTooLarge, "repository", func() error {
					_, err := s.PutScan(ctx, with(func(sc *store.Scan) { sc.Repository = strings.Repeat("r", 201) }), nil)
					return err
				}},
				{"NUL in repository", store.ErrInvalid, "NUL", func() error {
					_, err := s.PutScan(ctx, with(func(sc *store.Scan) { sc.Repository = "a\x00b" }), nil)
					return err
				}},
				{"oversized inventory", store.ErrTooLarge, "inventory", func() error { _, err := s.PutScan(ctx, big, nil); return err }},
				{"oversized findings", store.ErrTooLarge, "findings", func() error {
					_, err := s.PutScan(ctx, with(func(sc *store.Scan) {
						sc.Findings = []finding.Finding{{ID: "CVE-1", Description: strings.Repeat("d", 70<<10)}}
					}), nil)
					return err
				}},
				{"sighting of another digest", store.ErrInvalid, "another digest", func() error {
					_, err := s.PutScan(ctx, genScan(2, 10), &store.Sighting{Digest: digestOf(9), Kind: "ci"})
					return err
				}},
				{"bad sighting kind", store.ErrInvalid, "sighting kind", func() error {
					_, err := s.PutScan(ctx, genScan(2, 10), &store.Sighting{Kind: "moon"})
					return err
				}},
				{"nil sighting", store.ErrInvalid, "no sighting", func() error { return s.AddSighting(ctx, nil) }},
				{"oversized workload", store.ErrTooLarge, "workload", func() error {
					return s.AddSighting(ctx, &store.Sighting{Digest: digestOf(1), Kind: "cluster", Workload: strings.Repeat("w", 300)})
				}},
				{"change of another scan", store.ErrInvalid, "change 0", func() error {
					return s.Reevaluated(ctx, id, nil, nil, []store.Change{{ScanID: id + 1, Kind: "appeared"}})
				}},
				{"bad change kind", store.ErrInvalid, "change kind", func() error {
					return s.Reevaluated(ctx, id, nil, nil, []store.Change{{Kind: "vanished"}})
				}},
				{"oversized re-evaluation", store.ErrTooLarge, "findings", func() error {
					return s.Reevaluated(ctx, id, nil, []finding.Finding{{ID: "X", Description: strings.Repeat("d", 70<<10)}}, nil)
				}},
				{"nil event", store.ErrInvalid, "no event", func() error { _, err := s.PutEvent(ctx, nil); return err }},
				{"bad event kind", store.ErrInvalid, "kind", func() error { _, err := s.PutEvent(ctx, &store.Event{Kind: "x"}); return err }},
				{"oversized event", store.ErrTooLarge, "over the limit", func() error {
					_, err := s.PutEvent(ctx, &store.Event{Kind: "runtime", Body: make([]byte, 2<<10)})
					return err
				}},
				{"event with bad digest", store.ErrInvalid, "image digest", func() error {
					_, err := s.PutEvent(ctx, &store.Event{Kind: "runtime", Digest: "latest"})
					return err
				}},
				{"nil token", store.ErrInvalid, "no token", func() error { _, err := s.PutToken(ctx, nil); return err }},
				{"token without name", store.ErrInvalid, "name", func() error {
					_, err := s.PutToken(ctx, &store.Token{Role: "read", Hash: make([]byte, 32)})
					return err
				}},
				{"token role", store.ErrInvalid, "role", func() error {
					_, err := s.PutToken(ctx, &store.Token{Name: "a", Role: "root", Hash: make([]byte, 32)})
					return err
				}},
				{"token in clear", store.ErrInvalid, "hash", func() error {
					_, err := s.PutToken(ctx, &store.Token{Name: "a", Role: "read", Hash: []byte("secret")})
					return err
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.call()
					if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
						t.Fatalf("err = %v, want %v mentioning %q", err, tc.want, tc.text)
					}
				})
			}
			// A package name or finding ID with NUL or invalid UTF-8 is
			// kept as it was in the blob; the index gets a clean copy.
			nul.Inventory.Packages[0].Name = "bad\x00name\xff"
			nul.Findings = []finding.Finding{{ID: "CVE-\x00-1", Kind: finding.KindVulnerability, Package: &finding.Package{Name: "bad\x00name\xff"}}}
			nid := putT(t, s, nul, nil)
			got, err := s.Scan(ctx, nid)
			if err != nil || got.Inventory.Packages[0].Name != "bad\x00name\ufffd" {
				// encoding/json replaces invalid UTF-8 when it writes.
				t.Fatalf("Scan = %v, %v", got, err)
			}
			if err := s.Reevaluated(ctx, nid, nil, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(ctx); err != nil {
				t.Fatal(err)
			}
			after := rowCounts(t, s)
			after["images"]--
			after["scans"]--
			after["scan_packages"] -= 2
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("rows after the refused writes:\n%v\nbefore:\n%v", after, before)
			}
		})
	}
}

// TestMigrations: a second Open finds the schema current; several replicas
// opening one fresh PostgreSQL database at once migrate it once; river's
// tables migrate on both databases.
func TestMigrations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			dsn := b.dsn(t)
			const n = 4
			var wg sync.WaitGroup
			stores := make([]*Store, n)
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					stores[i], errs[i] = Open(ctx, dsn, Options{})
					if errs[i] == nil {
						errs[i] = stores[i].MigrateRiver(ctx)
					}
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("replica %d: %v", i, errs[i])
				}
				defer stores[i].Close()
			}
			s := stores[0]
			v, err := s.SchemaVersion(ctx)
			if want := newestMigration(t, s.dialect); err != nil || v != want {
				t.Fatalf("schema version %d, %v; want %d", v, err, want)
			}
			var applied int
			if err := s.db.QueryRow("SELECT COUNT(*) FROM " + versionTable + " WHERE version_id = 1").Scan(&applied); err != nil || applied != 1 {
				t.Fatalf("migration 1 recorded %d times (%v)", applied, err)
			}
			var jobs int
			if err := s.db.QueryRow("SELECT COUNT(*) FROM river_job").Scan(&jobs); err != nil {
				t.Fatalf("river's tables: %v", err)
			}
			putT(t, stores[1], genScan(1, 3), nil)
			if sc, err := stores[2].LatestScan(ctx, digestOf(1)); err != nil || sc.Inventory == nil {
				t.Fatalf("another replica: %v", err)
			}
		})
	}
}

func TestOpenDSN(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "", Options{CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if s.Dialect() != SQLite || s.Location != dir+"/"+DefaultFile || s.Pool() != nil {
		t.Fatalf("default: %s at %s", s.Dialect(), s.Location)
	}
	var sync, fk int
	var mode string
	s.db.QueryRow("PRAGMA journal_mode").Scan(&mode)
	s.db.QueryRow("PRAGMA synchronous").Scan(&sync)
	s.db.QueryRow("PRAGMA foreign_keys").Scan(&fk)
	if mode != "wal" || sync != 2 || fk != 1 {
		t.Fatalf("journal_mode %s, synchronous %d (2 is FULL), foreign_keys %d", mode, sync, fk)
	}
	s.Close()
	for _, tc := range []struct{ dsn, opt, want string }{
		{"", "", "no cache directory"},
		{"mysql://x", dir, "unknown database"},
		{"postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=1", dir, "is PostgreSQL running"},
		{"sqlite://" + dir + "/a?b", dir, "bad SQLite path"},
	} {
		_, err := Open(ctx, tc.dsn, Options{CacheDir: tc.opt})
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) = %v, want an error saying %q (and no password)", tc.dsn, err, tc.want)
		}
	}
	_ = time.Second
	_ = inventory.TypeDeb
}

// newestMigration is the highest version among a dialect's embedded
// migrations.
func newestMigration(t *testing.T, dialect string) int64 {
	t.Helper()
	entries, err := fs.ReadDir(migrations, "migrations/"+dialect)
	if err != nil {
		t.Fatal(err)
	}
	var newest int64
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseInt(num, 10, 64); ok && err == nil && v > newest {
			newest = v
		}
	}
	return newest
}
