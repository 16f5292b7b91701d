package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// TestFleetQueries: the dashboard's aggregates agree with what was stored,
// count the latest scan of each image only and leave suppressed findings
// out.
func TestFleetQueries(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		// Images 1 and 2: 40 packages, findings on packages 0,10,20,30
		// with severities LOW, MEDIUM, HIGH, CRITICAL (genFindings).
		old := genScan(1, 40)
		putT(t, s, old, nil)
		// Image 1 again: the finding on package 30 (CRITICAL) is gone;
		// the older scan must not count any more.
		re := genScan(1, 40)
		re.Findings = re.Findings[:3]
		putT(t, s, re, &store.Sighting{Kind: "cluster", Cluster: "prod", Namespace: "shop", Workload: "Deployment/web"})
		two := genScan(2, 40)
		two.Findings[3].Suppressed = &finding.Suppression{Kind: "vex", Status: "not_affected"} // CRITICAL suppressed
		putT(t, s, two, &store.Sighting{Kind: "cluster", Cluster: "prod", Namespace: "shop", Workload: "Deployment/api"})
		s.AddSighting(ctx, &store.Sighting{Digest: two.Digest, Kind: "cluster", Cluster: "dev", Namespace: "shop", Workload: "Deployment/api"})
		three := genScan(3, 40)
		three.Findings = nil
		putT(t, s, three, nil)
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}

		f, err := s.Fleet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := &store.Fleet{Images: 3, ByWorst: map[string]int{"HIGH": 2, "NONE": 1},
			Findings: map[string]int{"LOW": 2, "MEDIUM": 2, "HIGH": 2}, Workloads: 3}
		if !reflect.DeepEqual(f, want) {
			t.Fatalf("Fleet = %+v, want %+v", f, want)
		}

		top, err := s.TopVulnerabilities(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		wantTop := []store.VulnCount{
			{ID: "CVE-2026-00020", Severity: finding.High, Images: 2, Workloads: 3, Fixable: true},
			{ID: "CVE-2026-00010", Severity: finding.Medium, Images: 2, Workloads: 3},
			{ID: "CVE-2026-00000", Severity: finding.Low, Images: 2, Workloads: 3, Fixable: true},
		}
		if !reflect.DeepEqual(top, wantTop) {
			t.Fatalf("TopVulnerabilities = %+v, want %+v", top, wantTop)
		}
		if one, _ := s.TopVulnerabilities(ctx, 1); len(one) != 1 || one[0].ID != "CVE-2026-00020" {
			t.Fatalf("TopVulnerabilities(1) = %+v", one)
		}

		high := finding.High
		none := store.NoFindings
		for _, c := range []struct {
			f    store.ImageFilter
			want []string
		}{
			{store.ImageFilter{Worst: &high}, []string{re.Digest, two.Digest}},
			{store.ImageFilter{Worst: &none}, []string{three.Digest}},
			{store.ImageFilter{Query: "APP-2"}, []string{two.Digest}},                              // repository, case-insensitive
			{store.ImageFilter{Query: three.Digest[len(three.Digest)-4:]}, []string{three.Digest}}, // digest text
			{store.ImageFilter{Query: "app_%"}, nil},                                               // wildcards are text
		} {
			got, err := s.Images(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var ds []string
			for _, g := range got {
				ds = append(ds, g.Digest)
			}
			if !reflect.DeepEqual(ds, c.want) {
				t.Errorf("Images(%+v) = %v, want %v", c.f, ds, c.want)
			}
		}
		if got, _ := s.Images(ctx, store.ImageFilter{}); got[0].Worst != finding.High || got[2].Worst != store.NoFindings {
			t.Errorf("Worst of the summaries: %v, %v", got[0].Worst, got[2].Worst)
		}

		r, err := s.Search(ctx, "ghsa-0020-abcd-efgh", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Vulnerabilities) != 1 || r.Vulnerabilities[0].ID != "CVE-2026-00020" || r.Vulnerabilities[0].Images != 2 || len(r.Images) != 0 {
			t.Errorf("Search(alias) = %+v", r)
		}
		if r, _ = s.Search(ctx, "libssl0", 0); len(r.Packages) != 1 || r.Packages[0].Images != 3 {
			t.Errorf("Search(package) = %+v", r)
		}
		if r, _ = s.Search(ctx, "app-3", 0); len(r.Images) != 1 || r.Images[0].Digest != three.Digest || len(r.Packages) != 0 {
			t.Errorf("Search(image) = %+v", r)
		}
		if _, err := s.Search(ctx, " ", 0); err == nil {
			t.Error("Search of nothing: no error")
		}

		seen, err := s.Sightings(ctx, two.Digest)
		if err != nil || len(seen) != 2 {
			t.Fatalf("Sightings = %+v, %v", seen, err)
		}
		// Verify catches fleet_vulns out of step with the findings.
		if _, err := s.db.ExecContext(ctx, "UPDATE fleet_vulns SET n1 = n1 + 1 WHERE vuln_id = 'CVE-2026-00010'"); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx); err == nil || !strings.Contains(err.Error(), "fleet_vulns disagrees") {
			t.Fatalf("Verify of a drifted fleet_vulns: %v", err)
		}
	})
}

func TestTrendAndChangeCounts(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		today := time.Now().UTC().Truncate(24 * time.Hour)
		sc := genScan(5, 20)
		sc.ScannedAt = today.Add(-2*24*time.Hour + time.Hour)
		id := putT(t, s, sc, nil)
		sc2 := genScan(6, 20)
		sc2.ScannedAt = today.Add(time.Minute)
		putT(t, s, sc2, nil)
		changes := []store.Change{
			{Kind: "disappeared", Finding: sc.Findings[0], At: today.Add(-24*time.Hour + time.Hour)},
			{Kind: "appeared", Finding: sc.Findings[0], At: today.Add(time.Second)},
			{Kind: "appeared", Finding: sc.Findings[1], At: today.Add(2 * time.Second)},
		}
		if err := s.Reevaluated(ctx, id, nil, sc.Findings, changes); err != nil {
			t.Fatal(err)
		}
		tr, err := s.Trend(ctx, today.Add(-3*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprint(tr)
		if len(tr) != 4 || !tr[0].Day.Equal(today.Add(-3*24*time.Hour)) || tr[1].Scans != 1 || tr[2].Disappeared != 1 || tr[3].Scans != 1 || tr[3].Appeared != 2 || tr[0].Scans+tr[0].Appeared != 0 {
			t.Fatalf("Trend = %s", got)
		}
		a, d, err := s.ChangeCounts(ctx, today.Add(-24*time.Hour))
		if err != nil || a != 2 || d != 1 {
			t.Fatalf("ChangeCounts(yesterday) = %d, %d, %v", a, d, err)
		}
		if a, d, _ = s.ChangeCounts(ctx, today); a != 2 || d != 0 {
			t.Fatalf("ChangeCounts(today) = %d, %d", a, d)
		}
		if _, err := s.Trend(ctx, today.AddDate(-20, 0, 0)); err == nil {
			t.Fatal("Trend over 20 years: no error")
		}
	})
}

func TestEventsPage(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
		var ids []int64
		for i := range 6 {
			e := &store.Event{Kind: "runtime", Digest: digestOf(i % 2), Priority: []string{"Critical", "Warning"}[i%2],
				Rule: fmt.Sprintf("rule %d", i%3), Container: fmt.Sprintf("c%d", i%2), Namespace: "ns", Body: []byte("{}"), At: t0.Add(time.Duration(i) * time.Minute)}
			if i == 5 {
				e.Kind, e.Rule, e.Priority = "admission", "no-critical", "deny"
			}
			id, err := s.PutEvent(ctx, e)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		page := func(f store.EventFilter) []int64 {
			t.Helper()
			es, err := s.EventsPage(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, e := range es {
				out = append(out, e.ID)
			}
			return out
		}
		for _, c := range []struct {
			f    store.EventFilter
			want []int64
		}{
			{store.EventFilter{Kinds: []string{"runtime"}}, []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}},
			{store.EventFilter{Kinds: []string{"runtime"}, Limit: 2, Before: ids[3]}, []int64{ids[2], ids[1]}},
			{store.EventFilter{Kinds: []string{"gate", "admission"}}, []int64{ids[5]}},
			{store.EventFilter{Rule: "rule 1"}, []int64{ids[4], ids[1]}},
			{store.EventFilter{Priority: "Warning", Container: "c1"}, []int64{ids[3], ids[1]}},
			{store.EventFilter{Digest: digestOf(0), Namespace: "ns"}, []int64{ids[4], ids[2], ids[0]}},
			{store.EventFilter{Namespace: "other"}, nil},
		} {
			if got := page(c.f); !reflect.DeepEqual(got, c.want) {
				t.Errorf("EventsPage(%+v) = %v, want %v", c.f, got, c.want)
			}
		}
		es, _ := s.EventsPage(ctx, store.EventFilter{Container: "c1", Limit: 1})
		if len(es) != 1 || es[0].Container != "c1" || es[0].Namespace != "ns" {
			t.Errorf("container and namespace not returned: %+v", es)
		}
		if _, err := s.EventsPage(ctx, store.EventFilter{Kinds: []string{"bogus"}}); err == nil {
			t.Error("unknown kind: no error")
		}
	})
}

// TestMigration2: a database of schema 1 with scans gets each scan's worst
// severity and loses the finding index rows of superseded scans.
func TestMigration2(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		old := putT(t, s, genScan(1, 40), nil)
		sc := genScan(1, 40)
		sc.Findings = sc.Findings[:2] // worst MEDIUM
		putT(t, s, sc, nil)
		putT(t, s, genScan(2, 40), nil)        // worst CRITICAL
		if err := s.indexed(ctx); err != nil { // the old schemas index at once
			t.Fatal(err)
		}
		sub, err := fs.Sub(migrations, "migrations/"+s.dialect)
		if err != nil {
			t.Fatal(err)
		}
		d := goose.DialectSQLite3
		if s.dialect == Postgres {
			d = goose.DialectPostgres
		}
		p, err := goose.NewProvider(d, s.db, sub, goose.WithDisableGlobalRegistry(true), goose.WithTableName(versionTable))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.DownTo(ctx, 1); err != nil {
			t.Fatal(err)
		}
		// Schema 1 indexed every scan: give the superseded one its rows.
		if err := s.tx(ctx, func(tx *sql.Tx) error {
			x := s.indexFindings(genScan(1, 40).Findings)
			return s.insertRows(ctx, tx, "INSERT INTO scan_findings (scan_id, ord, kind, vuln_id, package, version, fixed, severity, suppressed)", 9, withScanID(old, x.rows, 8))
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Up(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		f, err := s.Fleet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.ByWorst["MEDIUM"] != 1 || f.ByWorst["CRITICAL"] != 1 {
			t.Fatalf("after the migration: %+v", f)
		}
		// fleet_vulns was filled from the latest scans only (Verify
		// checked it agrees): the CRITICAL finding of the superseded scan
		// of image 1 counts once, for image 2.
		top, err := s.TopVulnerabilities(ctx, 1)
		if err != nil || len(top) != 1 || top[0].Severity != finding.Critical || top[0].Images != 1 {
			t.Fatalf("after the migration: top %+v, %v", top, err)
		}
	})
}
