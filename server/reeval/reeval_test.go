package reeval

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

const demo = "oci-archive:../../testdata/images/alpine-demo.oci.tar"

// osvRecord builds an OSV record affecting one package at every version
// before fixed.
func osvRecord(id, modified, eco, name, fixed, withdrawn string) map[string]any {
	r := map[string]any{
		"schema_version": "1.6.0",
		"id":             id,
		"modified":       modified,
		"published":      "2026-11-30T00:00:00Z",
		"summary":        "test advisory for " + name,
		"severity":       []map[string]string{{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		"affected": []map[string]any{{
			"package": map[string]string{"ecosystem": eco, "name": name},
			"ranges":  []map[string]any{{"type": "ECOSYSTEM", "events": []map[string]string{{"introduced": "0"}, {"fixed": fixed}}}},
		}},
	}
	if withdrawn != "" {
		r["withdrawn"] = withdrawn
	}
	return r
}

func writeJSON(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func importInto(t *testing.T, dbPath string, sources ...string) {
	t.Helper()
	res, err := vulndb.Import(t.Context(), dbPath, sources, vulndb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped > 0 {
		t.Fatalf("import skipped %d: %v", res.Skipped, res.Problems)
	}
}

// scanDemo is a fresh `bulkhead image` scan of the demo image: the walk
// with the secret and misconfig scanners, matched by m.
func scanDemo(t *testing.T, tmp string, m *pipeline.Matcher) *pipeline.Result {
	t.Helper()
	res, err := pipeline.Run(t.Context(), demo, pipeline.Options{TempDir: tmp, Matcher: m,
		Scanners: []scan.Scanner{imagescan.New(secret.Default()), audit.New()}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func apkPackage(t *testing.T, inv *inventory.Inventory, name string) *inventory.Package {
	for i := range inv.Packages {
		if p := &inv.Packages[i]; p.Type == inventory.TypeAPK && p.Name == name {
			return p
		}
	}
	t.Fatalf("no apk package %s in the demo image", name)
	return nil
}

// The acceptance test: the demo image is scanned and stored; an OSV
// record that affects one of its packages is imported (and an advisory it
// had is withdrawn); the re-evaluation then stores exactly the findings
// (and database information) of a fresh scan with the updated database,
// keeps the walk's findings, handles the ignore file's suppression as the
// scan does, and records what appeared and disappeared.
func TestReevaluationEqualsFreshScan(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "osv.db")
	// Real records (lodash's GHSA, Go's), and one for minimist that will be
	// withdrawn.
	minimist := writeJSON(t, filepath.Join(dir, "minimist.json"),
		osvRecord("BULKTEST-2026-0002", "2026-12-01T00:00:00Z", "npm", "minimist", "1.2.99", ""))
	importInto(t, dbPath, "../../match/testdata/osv/npm", "../../match/testdata/osv/Go", minimist)
	ignore := filepath.Join(dir, "ignore")
	if err := os.WriteFile(ignore, []byte("GHSA-35jh-r3h4-6jhm\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := pipeline.MatchOptions{DBPath: dbPath, IgnoreFile: ignore}
	m1, err := pipeline.OpenMatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	first := scanDemo(t, tmp, m1)

	st := newStore(t)
	id, err := st.PutScan(t.Context(), &store.Scan{Digest: first.Inventory.Target.Digest, Source: "registry",
		ScannedAt: time.Now(), DB: first.DB, Inventory: first.Inventory, Findings: first.Findings}, nil)
	if err != nil {
		t.Fatal(err)
	}

	// The update: a new advisory for the image's busybox, the minimist one
	// withdrawn.
	bb := apkPackage(t, first.Inventory, "busybox")
	src := bb.SourceName
	if src == "" {
		src = bb.Name
	}
	upd := filepath.Join(dir, "update")
	if err := os.Mkdir(upd, 0o700); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, filepath.Join(upd, "busybox.json"), osvRecord("BULKTEST-2026-0001", "2026-12-02T00:00:00Z", "Alpine:v3.18", src, bb.Version+"9", ""))
	writeJSON(t, filepath.Join(upd, "minimist.json"), osvRecord("BULKTEST-2026-0002", "2026-12-02T00:00:00Z", "npm", "minimist", "1.2.99", "2026-12-02T00:00:00Z"))
	importInto(t, dbPath, upd)

	m2, err := pipeline.OpenMatcher(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var told *Report
	rec := notifierFunc(func(r *Report) { told = r })
	sum, err := Run(t.Context(), st, m2, Multi{metrics, rec})
	if err != nil {
		t.Fatal(err)
	}

	fresh := scanDemo(t, tmp, m2)
	got, err := st.Scan(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := asJSON(t, got.Findings), asJSON(t, fresh.Findings); a != b {
		t.Errorf("re-evaluated findings differ from a fresh scan's:\nstored: %s\nfresh: %s", a, b)
	}
	if a, b := asJSON(t, got.DB), asJSON(t, fresh.DB); a != b {
		t.Errorf("re-evaluated database information differs from a fresh scan's:\nstored: %s\nfresh: %s", a, b)
	}
	if asJSON(t, first.Findings) == asJSON(t, fresh.Findings) {
		t.Fatal("the update changed nothing: the test proves nothing")
	}

	kinds := map[finding.Kind]int{}
	suppressed := 0
	for _, f := range got.Findings {
		kinds[f.Kind]++
		if f.Suppressed != nil {
			suppressed++
		}
	}
	if kinds[finding.KindMisconfiguration] == 0 || kinds[finding.KindVulnerability] == 0 || suppressed == 0 {
		t.Errorf("want the audit's findings kept and the lodash finding suppressed: kinds %v, suppressed %d", kinds, suppressed)
	}

	changes, err := st.Changes(t.Context(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, c := range changes {
		desc = append(desc, fmt.Sprintf("%s %s %s %s", c.Kind, c.Finding.ID, c.Finding.Package.Name, c.Finding.Package.Version))
		if c.ScanID != id || c.DBVersion != sum.DBVersion || c.At.IsZero() || c.Digest != first.Inventory.Target.Digest {
			t.Errorf("change %+v: scan, digest, time or database version wrong", c)
		}
	}
	// The advisory names busybox's origin: every binary package built
	// from it is hit.
	want := []string{"disappeared BULKTEST-2026-0002 minimist 1.2.5"}
	for _, p := range first.Inventory.Packages {
		if p.Type == inventory.TypeAPK && (p.SourceName == src || p.SourceName == "" && p.Name == src) {
			want = append(want, "appeared BULKTEST-2026-0001 "+p.Name+" "+p.Version)
		}
	}
	slices.Sort(desc)
	slices.Sort(want)
	if !slices.Equal(desc, want) {
		t.Errorf("changes:\n got %q\nwant %q", desc, want)
	}
	if sum.Images != 1 || sum.Changed != 1 || sum.Appeared != len(want)-1 || sum.Disappeared != 1 || sum.Failed != 0 || sum.Updated != 1 {
		t.Errorf("summary %+v", sum)
	}
	if told == nil || len(told.Changes) != len(want) || told.Summary.DBVersion != sum.DBVersion {
		t.Errorf("notifier told %+v", told)
	}
	if v := testutil.ToFloat64(metrics.appeared); v != float64(len(want)-1) {
		t.Errorf("appeared counter %v", v)
	}
	if v := testutil.ToFloat64(metrics.images); v != 1 {
		t.Errorf("images counter %v", v)
	}
	if n := testutil.CollectAndCount(metrics.duration); n != 1 {
		t.Errorf("duration histogram: %d series", n)
	}

	// Again with the same database: nothing changes, nothing is written.
	writes := st.writes.Load()
	sum2, err := Run(t.Context(), st, m2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum2.Images != 1 || sum2.Changed != 0 || sum2.Updated != 0 || st.writes.Load() != writes {
		t.Errorf("second run with the same database: %+v, %d writes", sum2, st.writes.Load()-writes)
	}
}

type notifierFunc func(*Report)

func (f notifierFunc) Notify(_ context.Context, r *Report) error { f(r); return nil }
