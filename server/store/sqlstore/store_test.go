package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

func TestScanRoundTrip(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		want := genScan(1, 40)
		seen := &store.Sighting{Reference: "registry.example/app-1:1.1", Kind: "registry", SeenAt: want.ScannedAt}
		id := putT(t, s, want, seen)
		got, err := s.Scan(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want.ID = id
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Scan(%d) differs from what was stored:\n got %+v\nwant %+v", id, got, want)
		}
		latest, err := s.LatestScan(ctx, want.Digest)
		if err != nil || latest.ID != id {
			t.Fatalf("LatestScan = %v, %v; want scan %d", latest, err, id)
		}
		// A re-upload of the same digest is a new scan and the latest.
		again := genScan(1, 40)
		again.Source, again.ScannedAt = "upload", want.ScannedAt.Add(time.Hour)
		id2 := putT(t, s, again, nil)
		if id2 <= id {
			t.Fatalf("second scan ID %d, first %d", id2, id)
		}
		if latest, err = s.LatestScan(ctx, want.Digest); err != nil || latest.ID != id2 || latest.Source != "upload" {
			t.Fatalf("LatestScan after re-upload = %+v, %v; want scan %d", latest, err, id2)
		}
		putT(t, s, genScan(8, 5), nil) // same repository (seed%7), another digest
		list, err := s.ScansOf(ctx, want.Repository, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 || list[0].ID <= list[1].ID || list[1].ID != id2 || list[2].ID != id || list[0].Inventory != nil || list[0].Findings != nil {
			t.Fatalf("ScansOf = %+v; want 3 scans newest first without inventory", list)
		}
		if list, _ = s.ScansOf(ctx, want.Repository, 1); len(list) != 1 {
			t.Fatalf("ScansOf limit 1 gave %d", len(list))
		}
		for _, err := range []error{
			func() error { _, err := s.Scan(ctx, 999999); return err }(),
			func() error { _, err := s.LatestScan(ctx, digestOf(4242)); return err }(),
		} {
			if !errors.Is(err, store.ErrNotFound) {
				t.Errorf("missing scan: err = %v, want ErrNotFound", err)
			}
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func digests(ims []store.ImageSummary) []string {
	var out []string
	for _, m := range ims {
		out = append(out, m.Digest)
	}
	return out
}

func TestImagesFilters(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// Images are listed by their latest scan's ID. Image 0: a critical
		// fixed finding in libssl0. Image 1: a high
		// unfixed one in libcurl1, and an older scan (superseded) with a
		// critical. Image 2: no findings. Image 3: a suppressed critical.
		mk := func(seed int, fs ...finding.Finding) *store.Scan {
			sc := genScan(seed, 12)
			sc.Findings = fs
			return sc
		}
		vuln := func(id, pkg string, sev finding.Severity, fixed string) finding.Finding {
			f := finding.Finding{ID: id, Kind: finding.KindVulnerability, Severity: sev, Package: &finding.Package{Name: pkg, Version: "1"}}
			if fixed != "" {
				f.FixedVersions = []string{fixed}
			}
			return f
		}
		supp := vuln("CVE-9", "libz3", finding.Critical, "2")
		supp.Suppressed = &finding.Suppression{Kind: "vex", Status: "not_affected"}
		putT(t, s, mk(0, vuln("CVE-1", "libssl0", finding.Critical, "2")), nil)
		putT(t, s, mk(1, vuln("CVE-2", "libcurl1", finding.Critical, "")), nil)
		putT(t, s, mk(1, vuln("CVE-2", "libcurl1", finding.High, "")), nil)
		putT(t, s, mk(2), nil)
		putT(t, s, mk(3, supp), nil)
		yes, no := true, false
		for _, tc := range []struct {
			name string
			f    store.ImageFilter
			want []int
		}{
			{"all", store.ImageFilter{}, []int{0, 1, 2, 3}},
			{"critical", store.ImageFilter{MinSeverity: finding.Critical}, []int{0}},
			{"high", store.ImageFilter{MinSeverity: finding.High}, []int{0, 1}},
			{"fixed", store.ImageFilter{Fixed: &yes}, []int{0}},
			{"unfixed", store.ImageFilter{Fixed: &no}, []int{1}},
			{"package held", store.ImageFilter{Package: "libxml2"}, []int{0, 1, 2, 3}},
			{"package not held", store.ImageFilter{Package: "openssl"}, nil},
			{"package with finding", store.ImageFilter{Package: "libcurl1", MinSeverity: finding.Low}, []int{1}},
			{"package with fixed finding", store.ImageFilter{Package: "libcurl1", Fixed: &yes}, nil},
			{"repository", store.ImageFilter{Repository: "registry.example/app-2"}, []int{2}},
			{"limit", store.ImageFilter{Limit: 2}, []int{0, 1}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.Images(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, i := range tc.want {
					want = append(want, digestOf(i))
				}
				if !slices.Equal(digests(got), want) {
					t.Fatalf("Images(%+v) = %v, want %v", tc.f, digests(got), want)
				}
			})
		}
		// Paging: After is the last ScanID of the previous page.
		first, _ := s.Images(ctx, store.ImageFilter{Limit: 2})
		rest, _ := s.Images(ctx, store.ImageFilter{After: first[1].ScanID})
		if got := digests(append(first, rest...)); !slices.Equal(got, []string{digestOf(0), digestOf(1), digestOf(2), digestOf(3)}) {
			t.Fatalf("pages = %v", got)
		}
		all, _ := s.Images(ctx, store.ImageFilter{})
		last := all[1] // ordered by latest scan: image 1's is its second
		if last.Packages != 12 || !reflect.DeepEqual(last.Counts, map[string]int{"HIGH": 1}) || last.Repository != "registry.example/app-1" {
			t.Fatalf("summary of image 1 = %+v", last)
		}
		if sup := all[3]; len(sup.Counts) != 0 {
			t.Fatalf("suppressed findings counted: %+v", sup.Counts)
		}
	})
}

func TestAffected(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := genScan(0, 30) // CVE-2026-00000 on lib ssl0, CVE-2026-00010, -00020
		ida := putT(t, s, a, &store.Sighting{Kind: "cluster", Cluster: "prod", Namespace: "web", Workload: "Deployment/web", SeenAt: time.Unix(1700000000, 0).UTC()})
		if err := s.AddSighting(ctx, &store.Sighting{Digest: a.Digest, Kind: "ci", CIRun: "https://ci.example/run/7", SeenAt: time.Unix(1700000100, 0).UTC()}); err != nil {
			t.Fatal(err)
		}
		// The same place seen again is one sighting, with the later time.
		if err := s.AddSighting(ctx, &store.Sighting{Digest: a.Digest, Kind: "cluster", Cluster: "prod", Namespace: "web", Workload: "Deployment/web", SeenAt: time.Unix(1700000200, 0).UTC()}); err != nil {
			t.Fatal(err)
		}
		b := genScan(1, 30)
		idb := putT(t, s, b, nil)
		// An older scan of c had the CVE; its latest does not.
		c := genScan(2, 30)
		putT(t, s, c, nil)
		c2 := genScan(2, 30)
		c2.Findings = nil
		putT(t, s, c2, nil)
		// A suppressed finding does not make an image affected.
		d := genScan(3, 30)
		for i := range d.Findings {
			d.Findings[i].Suppressed = &finding.Suppression{Kind: "vex", Status: "not_affected"}
		}
		putT(t, s, d, nil)

		for _, id := range []string{"CVE-2026-00010", "cve-2026-00010", " GHSA-0010-abcd-efgh "} {
			got, err := s.Affected(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0].ScanID != ida || got[1].ScanID != idb {
				t.Fatalf("Affected(%q) = %+v; want images 0 and 1", id, got)
			}
			g := got[0]
			if g.Digest != a.Digest || g.Package != a.Inventory.Packages[10].Name || g.Version != a.Inventory.Packages[10].Version || g.Fixed != "" || g.Repository != a.Repository {
				t.Fatalf("Affected(%q)[0] = %+v", id, g)
			}
			if len(g.Sightings) != 2 || g.Sightings[0].Kind != "cluster" || !g.Sightings[0].SeenAt.Equal(time.Unix(1700000200, 0)) || g.Sightings[1].CIRun == "" {
				t.Fatalf("sightings = %+v; want the cluster (seen last) then the CI run", g.Sightings)
			}
			if len(got[1].Sightings) != 0 {
				t.Fatalf("image 1 has sightings %+v", got[1].Sightings)
			}
		}
		if got, _ := s.Affected(ctx, "CVE-2026-00000"); len(got) != 2 || got[0].Fixed == "" {
			t.Fatalf("fixed finding: %+v", got)
		}
		if got, err := s.Affected(ctx, "CVE-1999-0001"); err != nil || len(got) != 0 {
			t.Fatalf("unknown CVE: %v, %v", got, err)
		}
		if _, err := s.Affected(ctx, " "); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("empty ID: %v", err)
		}
	})
}

func TestReevaluatedAndChanges(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		sc := genScan(5, 20)
		id := putT(t, s, sc, nil)
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		gone := sc.Findings[0]
		newf := finding.Finding{ID: "CVE-2026-77777", Kind: finding.KindVulnerability, Aliases: []string{"GHSA-7777-7777-7777"}, Severity: finding.Critical,
			Package: &finding.Package{Name: "libssl0", Version: sc.Inventory.Packages[0].Version}, FixedVersions: []string{"9"}}
		fs := append(slices.Clone(sc.Findings[1:]), newf)
		db := &report.DBInfo{Source: "osv", Records: 99}
		changes := []store.Change{
			{Kind: "disappeared", Finding: gone, At: t0, DBVersion: "v2"},
			{ScanID: id, Kind: "appeared", Finding: newf, At: t0.Add(time.Second), DBVersion: "v2"},
		}
		if err := s.Reevaluated(ctx, id, db, fs, changes); err != nil {
			t.Fatal(err)
		}
		got, err := s.Scan(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Findings, fs) || !reflect.DeepEqual(got.DB, db) {
			t.Fatalf("findings after re-evaluation = %+v", got.Findings)
		}
		if a, _ := s.Affected(ctx, "ghsa-7777-7777-7777"); len(a) != 1 || a[0].ScanID != id || a[0].Fixed != "9" {
			t.Fatalf("the appeared finding is not indexed: %+v", a)
		}
		if a, _ := s.Affected(ctx, gone.ID); len(a) != 0 {
			t.Fatalf("the disappeared finding is still indexed: %+v", a)
		}
		crit, _ := s.Images(ctx, store.ImageFilter{MinSeverity: finding.Critical})
		if len(crit) != 1 || crit[0].Counts["CRITICAL"] != 1 {
			t.Fatalf("Images(critical) = %+v", crit)
		}
		all, err := s.Changes(ctx, t0.Add(-time.Second), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].Kind != "disappeared" || all[0].ScanID != id || all[0].Digest != sc.Digest || !all[0].At.Equal(t0) ||
			all[1].Kind != "appeared" || all[1].DBVersion != "v2" || !reflect.DeepEqual(all[1].Finding, newf) {
			t.Fatalf("Changes = %+v", all)
		}
		if since, _ := s.Changes(ctx, t0, 0); len(since) != 1 || since[0].Kind != "appeared" {
			t.Fatalf("Changes since t0 = %+v; want only the one after", since)
		}
		if lim, _ := s.Changes(ctx, time.Time{}, 1); len(lim) != 1 {
			t.Fatalf("Changes limit 1 = %d", len(lim))
		}
		if err := s.Reevaluated(ctx, 424242, db, fs, nil); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Reevaluated(unknown) = %v, want ErrNotFound", err)
		}
		// No findings at all is a valid re-evaluation.
		if err := s.Reevaluated(ctx, id, db, nil, nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Scan(ctx, id); len(got.Findings) != 0 {
			t.Fatalf("findings = %d, want 0", len(got.Findings))
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEachLatest(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// More than a page, one digest scanned twice.
		n := eachPage + 6
		want := map[string]int64{}
		for i := range n {
			want[digestOf(i)] = putT(t, s, genScan(i, 3), nil)
		}
		want[digestOf(4)] = putT(t, s, genScan(4, 3), nil)
		var seen []int64
		err := s.EachLatest(ctx, func(sc *store.Scan) error {
			if want[sc.Digest] != sc.ID {
				t.Errorf("EachLatest gave scan %d of %s, want the latest, %d", sc.ID, sc.Digest, want[sc.Digest])
			}
			if sc.Inventory == nil || len(sc.Inventory.Packages) != 3 || sc.Inventory.Target.Digest != sc.Digest {
				t.Errorf("scan %d: inventory not decoded", sc.ID)
			}
			seen = append(seen, sc.ID)
			// fn may write to the store while it runs.
			return s.Reevaluated(ctx, sc.ID, nil, sc.Findings[:0], []store.Change{{Kind: "disappeared", Finding: sc.Findings[0]}})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != n || !slices.IsSorted(seen) {
			t.Fatalf("EachLatest visited %d scans (sorted: %v), want %d in order", len(seen), slices.IsSorted(seen), n)
		}
		if ch, _ := s.Changes(ctx, time.Time{}, 1000); len(ch) != n {
			t.Fatalf("changes = %d, want %d", len(ch), n)
		}
		stop := errors.New("stop")
		calls := 0
		if err := s.EachLatest(ctx, func(*store.Scan) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("EachLatest error: %v after %d calls", err, calls)
		}
	})
}

func TestEventsAndTokens(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		id1, err := s.PutEvent(ctx, &store.Event{Kind: "runtime", Digest: digestOf(1), Priority: "Critical", Rule: "Terminal shell in container",
			Output: "A shell was spawned", Body: []byte(`{"rule":"Terminal shell in container"}`), At: t0})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutEvent(ctx, &store.Event{Kind: "gate", Body: []byte(`{"allow":false}`), At: t0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutEvent(ctx, &store.Event{Kind: "admission", Digest: digestOf(1), At: t0.Add(2 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		all, err := s.Events(ctx, "", time.Time{}, 0)
		if err != nil || len(all) != 3 || all[0].ID != id1 || string(all[0].Body) != `{"rule":"Terminal shell in container"}` || all[0].Rule == "" || !all[0].At.Equal(t0) {
			t.Fatalf("Events = %+v, %v", all, err)
		}
		if one, _ := s.Events(ctx, digestOf(1), t0, 0); len(one) != 1 || one[0].Kind != "admission" {
			t.Fatalf("Events(digest, since t0) = %+v", one)
		}
		if lim, _ := s.Events(ctx, "", time.Time{}, 2); len(lim) != 2 {
			t.Fatalf("Events limit 2 = %d", len(lim))
		}

		hash := []byte(strings.Repeat("h", 32))
		tid, err := s.PutToken(ctx, &store.Token{Name: "ci", Role: "scan", Hash: hash})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := s.TokenByHash(ctx, hash)
		if err != nil || tok.ID != tid || tok.Name != "ci" || tok.Role != "scan" || tok.CreatedAt.IsZero() {
			t.Fatalf("TokenByHash = %+v, %v", tok, err)
		}
		for _, dup := range []*store.Token{{Name: "ci", Role: "read", Hash: []byte(strings.Repeat("x", 32))}, {Name: "other", Role: "read", Hash: hash}} {
			if _, err := s.PutToken(ctx, dup); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("duplicate token %s: %v, want ErrConflict", dup.Name, err)
			}
		}
		if _, err := s.TokenByHash(ctx, []byte(strings.Repeat("y", 32))); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown hash: %v", err)
		}
		if err := s.DeleteToken(ctx, "ci"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByHash(ctx, hash); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted token still found: %v", err)
		}
		if err := s.DeleteToken(ctx, "ci"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentWriters: writers at once (as uploads from many CI jobs)
// all succeed (SQLite waits on its write lock, no "database is locked"),
// and the latest scan of a digest is the one with the highest ID.
func TestConcurrentWriters(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		const writers, each = 8, 4
		ids := make(chan int64, writers*each)
		errs := make(chan error, writers*each)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					sc := genScan(w%2, 50) // two digests, many scans of each
					sc.Repository = fmt.Sprintf("writer-%d-%d", w, i)
					id, err := s.PutScan(ctx, sc, &store.Sighting{Kind: "ci", CIRun: fmt.Sprint(w)})
					if err != nil {
						errs <- err
						continue
					}
					ids <- id
				}
			})
		}
		wg.Wait()
		close(ids)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var max int64
		n := 0
		for id := range ids {
			max = maxOf(max, id)
			n++
		}
		a, _ := s.LatestScan(ctx, digestOf(0))
		b, _ := s.LatestScan(ctx, digestOf(1))
		if n != writers*each || maxOf(a.ID, b.ID) != max {
			t.Fatalf("%d scans stored; latest %d and %d, highest ID %d", n, a.ID, b.ID, max)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func maxOf(a, b int64) int64 { return max(a, b) }
