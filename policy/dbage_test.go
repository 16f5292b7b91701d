package policy

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/vulndb"
	"github.com/ossf/osv-schema/bindings/go/osvschema"
)

func osvRecord(id, eco, name string, modified time.Time) string {
	return fmt.Sprintf(`{"id":%q,"modified":%q,"affected":[{"package":{"ecosystem":%q,"name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"0.0.1"}]}]}]}`,
		id, modified.UTC().Format(time.RFC3339), eco, name)
}

func writeOSVZip(t *testing.T, path string, records ...string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for i, r := range records {
		w, _ := zw.Create(fmt.Sprintf("r%d.json", i))
		w.Write([]byte(r))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// A database built from a 103-day-old snapshot stays 103 days old for a
// policy's dbMaxAge after a four-record import; a complete export of each
// ecosystem the image uses does refresh it.
func TestDBMaxAgeAfterPartialImport(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "osv.db")
	date := time.Now().Add(-103 * 24 * time.Hour).UTC().Truncate(time.Second)
	v, err := vulndb.ParseRecord([]byte(osvRecord("SNAP-1", "Go", "stdlib", date)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := vulndb.EncodeSnapshot([]*osvschema.Vulnerability{v})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := vulndb.BuildSnapshot(dbPath, data, vulndb.SnapshotManifest{Date: date, Records: 1, SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	four := filepath.Join(dir, "four.zip")
	writeOSVZip(t, four,
		osvRecord("T-1", "PyPI", "not-in-the-image-1", now), osvRecord("T-2", "PyPI", "not-in-the-image-2", now),
		osvRecord("T-3", "npm", "not-in-the-image-3", now), osvRecord("T-4", "crates.io", "not-in-the-image-4", now))
	if _, err := vulndb.Import(t.Context(), dbPath, []string{four}, vulndb.Options{}); err != nil {
		t.Fatal(err)
	}

	scanDemo := func() *Scan {
		t.Helper()
		db, err := vulndb.Open(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		img, err := image.Open(context.Background(), "oci-archive:../testdata/images/alpine-demo.oci.tar", image.Options{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		sc, err := ScanImage(context.Background(), img, db, nil, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	rule := &VulnerabilityRule{DBMaxAge: Duration(30 * 24 * time.Hour)}
	sc := scanDemo()
	if age := time.Since(sc.DBUpdated); age < 103*24*time.Hour-time.Hour || age > 103*24*time.Hour+time.Hour {
		t.Errorf("scan dated %v (%s, %s): %v old, want ~103 days", sc.DBUpdated, sc.DBEcosystem, sc.DBSource, age)
	}
	err = checkVulns(rule, sc, time.Now())
	if err == nil || !strings.Contains(err.Error(), "older than dbMaxAge") {
		t.Fatalf("dbMaxAge after a partial import: %v", err)
	}

	// Complete exports of what the image uses (Alpine, Go, npm, PyPI), dated
	// by their newest record, an hour ago.
	for _, eco := range []string{"Alpine", "Go", "npm", "PyPI"} {
		name := "x"
		if eco == "Alpine" {
			eco += ":v3.20"
		}
		all := filepath.Join(dir, "all.zip")
		writeOSVZip(t, all, osvRecord("F-"+strings.ReplaceAll(eco, ":", "-"), eco, name, now.Add(-time.Hour)))
		base, _, _ := strings.Cut(eco, ":")
		if _, err := vulndb.Import(t.Context(), dbPath, []string{all}, vulndb.Options{FullEcosystem: base}); err != nil {
			t.Fatal(err)
		}
	}
	sc = scanDemo()
	if err := checkVulns(rule, sc, time.Now()); err != nil && strings.Contains(err.Error(), "dbMaxAge") {
		t.Errorf("dbMaxAge after full imports of every ecosystem used (oldest %s %v): %v", sc.DBEcosystem, sc.DBUpdated, err)
	}
	if age := time.Since(sc.DBUpdated); age > 2*time.Hour {
		t.Errorf("refreshed scan dated %v (%s)", sc.DBUpdated, sc.DBEcosystem)
	}
}

// A scan whose data cannot be dated fails dbMaxAge.
func TestDBMaxAgeUnknown(t *testing.T) {
	rule := &VulnerabilityRule{DBMaxAge: Duration(time.Hour)}
	err := checkVulns(rule, &Scan{DBEcosystem: "PyPI", DBSource: "no complete refresh recorded"}, time.Now())
	if err == nil || !strings.Contains(err.Error(), "unknown") || !strings.Contains(err.Error(), "PyPI") {
		t.Errorf("undated scan: %v", err)
	}
}
