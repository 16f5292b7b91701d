package vulndb

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

const day = 24 * time.Hour

// osvJSON is one minimal OSV record naming one package.
func osvJSON(id, eco, name string, modified time.Time) string {
	return fmt.Sprintf(`{"schema_version":"1.6.0","id":%q,"modified":%q,"affected":[{"package":{"ecosystem":%q,"name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.0"}]}]}]}`,
		id, modified.UTC().Format(time.RFC3339), eco, name)
}

// buildOldSnapshot builds a database at path from a snapshot of a few Go
// and AlmaLinux records dated age ago, as the bundled one would be.
func buildOldSnapshot(t testing.TB, path string, age time.Duration) time.Time {
	t.Helper()
	date := time.Now().Add(-age).UTC().Truncate(time.Second)
	var recs []*osvschema.Vulnerability
	for i, r := range [][2]string{{"Go", "stdlib"}, {"Go", "golang.org/x/net"}, {"AlmaLinux:9", "openssl"}} {
		v, err := ParseRecord([]byte(osvJSON(fmt.Sprintf("SNAP-%d", i), r[0], r[1], date.Add(-time.Duration(i)*day))))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, v)
	}
	data, err := EncodeSnapshot(recs)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	m := SnapshotManifest{Date: date, Records: len(recs), SHA256: hex.EncodeToString(sum[:])}
	if err := BuildSnapshot(path, data, m); err != nil {
		t.Fatal(err)
	}
	return date
}

// writeZip writes records (name -> JSON) to a zip file.
func writeZip(t testing.TB, path string, files map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func scanAge(t *testing.T, path string, lookups ...[2]string) DataAge {
	t.Helper()
	db := openT(t, path)
	defer db.Close()
	tr := db.Track()
	for _, l := range lookups {
		if _, err := tr.Lookup(l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	a, err := tr.DataAge()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func near(d, want time.Duration) bool { return d > want-time.Hour && d < want+time.Hour }

// A partial import (four fresh records) does not make a 103-day-old
// snapshot look fresh: not for the ecosystems it did not touch, and not
// for the one it did either.
func TestPartialImportKeepsAge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "osv.db")
	date := buildOldSnapshot(t, path, 103*day)
	zipPath := filepath.Join(dir, "four.zip")
	now := time.Now()
	writeZip(t, zipPath, map[string]string{
		"a.json": osvJSON("PYSEC-T-1", "PyPI", "django", now),
		"b.json": osvJSON("PYSEC-T-2", "PyPI", "flask", now),
		"c.json": osvJSON("GHSA-T-3", "npm", "left-pad", now),
		"d.json": osvJSON("GO-T-4", "Go", "example.com/m", now),
	})
	res, err := Import(t.Context(), path, []string{zipPath}, Options{})
	if err != nil || res.Records != 4 || len(res.Fresh) != 0 {
		t.Fatalf("import: %+v %v", res, err)
	}
	if res.Ecosystems["PyPI"] != 2 || res.Ecosystems["npm"] != 1 || res.Ecosystems["Go"] != 1 {
		t.Errorf("ecosystems counted: %v", res.Ecosystems)
	}

	for _, lookups := range [][][2]string{
		{{"Debian:12", "openssl"}, {"Alpine:v3.20", "musl"}}, // other ecosystems
		{{"Go", "stdlib"}},                 // the snapshot's
		{{"PyPI", "django"}, {"npm", "x"}}, // the import's own: still not dated by it
		nil,                                // nothing looked up: the whole database
	} {
		a := scanAge(t, path, lookups...)
		if !a.Known() || !a.Oldest.AsOf.Equal(date) || !near(a.Age(), 103*day) || a.Oldest.Kind != KindBundled {
			t.Errorf("lookups %v: age %v, oldest %+v", lookups, a.Age(), a.Oldest)
		}
		var se *StaleError
		if err := a.CheckAge(DefaultMaxAge); !errors.As(err, &se) || !strings.Contains(err.Error(), "103 days old") {
			t.Errorf("lookups %v: no staleness warning: %v", lookups, err)
		}
	}
	st, err := openT(t, path).Status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Updated.Equal(date) || st.Source != SourceBundled || !strings.HasPrefix(st.Writer, "import ") || st.CheckAge(DefaultMaxAge) == nil {
		t.Errorf("status: updated %v source %q writer %q", st.Updated, st.Source, st.Writer)
	}
}

// A complete export of one ecosystem dates that ecosystem by its newest
// record, and only that one; a second full import replaces the first.
func TestFullEcosystemImportRefreshes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "osv.db")
	date := buildOldSnapshot(t, path, 103*day)
	newest := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	zipPath := filepath.Join(dir, "all.zip")
	writeZip(t, zipPath, map[string]string{
		"PYSEC-T-1.json": osvJSON("PYSEC-T-1", "PyPI", "django", newest.Add(-30*day)),
		"PYSEC-T-2.json": osvJSON("PYSEC-T-2", "PyPI", "flask", newest),
		"PYSEC-T-3.json": osvJSON("PYSEC-T-3", "PyPI", "jinja2", newest.Add(-400*day)),
	})
	res, err := Import(t.Context(), path, []string{zipPath}, Options{FullEcosystem: "PyPI"})
	if err != nil || len(res.Fresh) != 1 {
		t.Fatalf("import: %+v %v", res, err)
	}
	a := scanAge(t, path, [2]string{"PyPI", "django"})
	if !a.Oldest.AsOf.Equal(newest) || a.Oldest.Kind != KindFullImport || a.CheckAge(DefaultMaxAge) != nil {
		t.Errorf("refreshed ecosystem: %+v", a.Oldest)
	}
	// A scan that also used Go data is as old as that.
	if a := scanAge(t, path, [2]string{"PyPI", "django"}, [2]string{"Go", "stdlib"}); !a.Oldest.AsOf.Equal(date) || a.Oldest.Ecosystem != "Go" {
		t.Errorf("mixed scan: %+v", a.Oldest)
	}

	// The next export no longer holds PYSEC-T-3: it goes.
	writeZip(t, zipPath, map[string]string{
		"PYSEC-T-1.json": osvJSON("PYSEC-T-1", "PyPI", "django", newest),
		"PYSEC-T-2.json": osvJSON("PYSEC-T-2", "PyPI", "flask", newest.Add(time.Hour)),
	})
	res, err = Import(t.Context(), path, []string{zipPath}, Options{FullEcosystem: "PyPI"})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("second import: %+v %v", res, err)
	}
	db := openT(t, path)
	if ids := lookupIDs(t, db, "PyPI", "jinja2"); len(ids) != 0 {
		t.Errorf("record gone from the export kept: %v", ids)
	}
	db.Close()
	if a := scanAge(t, path, [2]string{"PyPI", "flask"}); !a.Oldest.AsOf.Equal(newest.Add(time.Hour)) {
		t.Errorf("second export: %+v", a.Oldest)
	}

	// A declared export with no record of the ecosystem is refused, and
	// the database is unchanged.
	before := sum(t, path)
	if _, err := Import(t.Context(), path, []string{zipPath}, Options{FullEcosystem: "npm"}); err == nil || !strings.Contains(err.Error(), `names ecosystem "npm"`) {
		t.Errorf("wrong ecosystem: %v", err)
	}
	if _, err := Import(t.Context(), path, []string{zipPath}, Options{FullEcosystem: "Debian:12"}); err == nil || !strings.Contains(err.Error(), "without its release") {
		t.Errorf("release in the name: %v", err)
	}
	if sum(t, path) != before {
		t.Error("a refused import changed the database")
	}
}

// A database written before freshness was tracked is dated only from what
// it proves, and its first write by this version keeps that.
func TestLegacyDatabaseFreshness(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "osv.db")
	date := buildOldSnapshot(t, path, 103*day)
	toLegacy := func(source string, updated time.Time) {
		t.Helper()
		bdb, err := bolt.Open(path, 0o644, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = bdb.Update(func(tx *bolt.Tx) error {
			if err := tx.DeleteBucket(bucketFreshness); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			meta := tx.Bucket(bucketMeta)
			for _, k := range [][]byte{keyBaseline, keyWritten, keyWriter} {
				meta.Delete(k)
			}
			meta.Put(keySource, []byte(source))
			return meta.Put(keyUpdated, []byte(updated.UTC().Format(time.RFC3339Nano)))
		})
		if err != nil {
			t.Fatal(err)
		}
		bdb.Close()
	}
	// Last written by the snapshot: its date holds.
	toLegacy(SourceBundled, date)
	if a := scanAge(t, path, [2]string{"Go", "stdlib"}); !a.Oldest.AsOf.Equal(date) {
		t.Errorf("legacy snapshot database: %+v", a.Oldest)
	}
	// Last written by an import, which set "updated" to its own time:
	// that proves nothing, the age is unknown.
	toLegacy("import /tmp/four.zip", time.Now())
	a := scanAge(t, path, [2]string{"Go", "stdlib"})
	var se *StaleError
	if a.Known() || !errors.As(a.CheckAge(DefaultMaxAge), &se) || !se.Unknown || !strings.Contains(se.Error(), "older bulkhead") {
		t.Errorf("legacy import database looks dated: %+v", a.Oldest)
	}
	// A partial import by this version keeps it unknown.
	zipPath := filepath.Join(dir, "one.zip")
	writeZip(t, zipPath, map[string]string{"a.json": osvJSON("PYSEC-T-1", "PyPI", "django", time.Now())})
	if _, err := Import(t.Context(), path, []string{zipPath}, Options{}); err != nil {
		t.Fatal(err)
	}
	if a := scanAge(t, path, [2]string{"PyPI", "django"}); a.Known() {
		t.Errorf("partial import dated a legacy database: %+v", a.Oldest)
	}
	st, _ := openT(t, path).Status()
	if st.CheckAge(DefaultMaxAge) == nil || !st.Updated.IsZero() {
		t.Errorf("status of a legacy database after import: %+v", st.Data.Oldest)
	}
	// What an older bulkhead reads from it: a date long past, not now.
	bdb, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	bdb.View(func(tx *bolt.Tx) error {
		if u := parseTime(tx.Bucket(bucketMeta).Get(keyUpdated)); time.Since(u) < 365*day {
			t.Errorf("meta updated %v would look fresh to an older bulkhead", u)
		}
		return nil
	})
	bdb.Close()
}

// One record with a 100 KB ecosystem, package name or id is skipped with
// the file named; the rest of the zip is imported.
func TestImportSkipsOversizedKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "osv.db")
	huge := strings.Repeat("x", 100<<10)
	now := time.Now()
	zipPath := filepath.Join(dir, "hostile.zip")
	writeZip(t, zipPath, map[string]string{
		"ok.json":        osvJSON("GO-T-1", "Go", "example.com/m", now),
		"huge-eco.json":  osvJSON("GO-T-2", huge, "example.com/m", now),
		"huge-name.json": osvJSON("GO-T-3", "Go", huge, now),
		"huge-id.json":   osvJSON("GO-T-"+huge, "Go", "example.com/m", now),
	})
	res, err := Import(t.Context(), path, []string{zipPath}, Options{})
	if err != nil {
		t.Fatalf("import failed on one bad record: %v", err)
	}
	if res.Records != 1 || res.Skipped != 3 {
		t.Fatalf("result %+v", res)
	}
	all := strings.Join(res.Problems, "\n")
	for _, want := range []string{"hostile.zip!huge-eco.json", "hostile.zip!huge-name.json", "hostile.zip!huge-id.json", "over the"} {
		if !strings.Contains(all, want) {
			t.Errorf("problems do not name %q:\n%.2000s", want, all)
		}
	}
	if len(all) > 4000 {
		t.Errorf("problems quote the huge strings (%d bytes)", len(all))
	}
	db := openT(t, path)
	defer db.Close()
	if ids := lookupIDs(t, db, "Go", "example.com/m"); len(ids) != 1 {
		t.Errorf("good record: %v", ids)
	}
	// A huge ecosystem name given to a writer is refused, not a bbolt error.
	if _, err := Import(t.Context(), path, []string{zipPath}, Options{FullEcosystem: huge}); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Errorf("huge --full-ecosystem: %v", err)
	}
	if _, err := Update(t.Context(), path, Options{BaseURL: "http://127.0.0.1:1", Ecosystems: []string{huge}}); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Errorf("huge ecosystem to update: %v", err)
	}
}
