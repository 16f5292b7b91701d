package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func runDB(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := newDBCmd(&stdout, &stderr)
	cmd.SetArgs(args)
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.ExecuteContext(context.Background())
	return stdout.String(), stderr.String(), err
}

func TestDBCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "osv.db")
	fixtures := filepath.Join("..", "..", "vulndb", "testdata", "osv")

	out, _, err := runDB(t, "import", "--db", db, fixtures)
	if err != nil || !strings.Contains(out, "imported 21 records (20 new or changed, 2 withdrawn)") {
		t.Fatalf("import: %q %v", out, err)
	}
	out, stderr, err := runDB(t, "status", "--db", db, "--db-max-age", "0")
	if err != nil || !strings.Contains(out, "Records:   20 (2 withdrawn)") || !strings.Contains(out, "AlmaLinux:8") || !strings.Contains(out, "Data age:  unknown") || stderr != "" {
		t.Fatalf("status: %q %q %v", out, stderr, err)
	}
	// Partial imports date nothing: the age is unknown, which warns at any
	// limit; 0 disables.
	if _, stderr, _ := runDB(t, "status", "--db", db, "--db-max-age", "1h"); !strings.Contains(stderr, "is unknown") || !strings.Contains(stderr, "--full-ecosystem") {
		t.Errorf("undated database did not warn: %q", stderr)
	}
	if _, stderr, _ := runDB(t, "status", "--db", db, "--db-max-age", "0"); stderr != "" {
		t.Errorf("--db-max-age 0 warned: %q", stderr)
	}
	out, _, err = runDB(t, "status", "--db", db, "--format", "json")
	var st struct {
		Records    int `json:"records"`
		Ecosystems []struct {
			Name    string `json:"name"`
			Records int    `json:"records"`
		} `json:"ecosystems"`
		AgeSeconds *int64 `json:"age_seconds"`
	}
	// age_seconds is null: partial imports only, the data is undated.
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Records != 20 || len(st.Ecosystems) == 0 || st.AgeSeconds != nil {
		t.Fatalf("status json: %q %v", out, err)
	}

	export := filepath.Join(dir, "db.tar.gz")
	if out, _, err = runDB(t, "export", "--db", db, export); err != nil || !strings.Contains(out, "bulkhead db import "+export) {
		t.Fatalf("export: %q %v", out, err)
	}
	other := filepath.Join(dir, "airgap", "osv.db")
	if out, _, err = runDB(t, "import", "--db", other, export); err != nil || !strings.Contains(out, "installed "+other+": 20 records") {
		t.Fatalf("import of an export file: %q %v", out, err)
	}
	if out, _, err = runDB(t, "import-export", "--db", other, export); err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("import-export: %q %v", out, err)
	}
	if _, _, err = runDB(t, "import", "--db", other, "--replace", export); err == nil {
		t.Error("--replace with an export file accepted")
	}
	if _, _, err = runDB(t, "import", "--db", other, filepath.Join(dir, "missing.zip")); err == nil || !strings.Contains(err.Error(), "missing.zip") {
		t.Errorf("missing source: %v", err)
	}
	if _, _, err = runDB(t, "import-export", "--db", other, filepath.Join(fixtures, "Go", "GO-2020-0014.json")); err == nil || !strings.Contains(err.Error(), "not a valid bulkhead vulnerability database export") {
		t.Errorf("import-export of a JSON file: %v", err)
	}

	out, _, err = runDB(t, "status", "--db", filepath.Join(dir, "none.db"))
	if err != nil || !strings.Contains(out, "bundled snapshot") || !strings.Contains(out, "bulkhead db update") {
		t.Errorf("status without a database: %q %v", out, err)
	}
	_, _, err = runDB(t, "update", "--db", db, "--db-repository", "http://127.0.0.1:1", "--ecosystems", "Go", "-q")
	if err == nil || !strings.Contains(err.Error(), "previous database is unchanged") {
		t.Errorf("update from an unreachable mirror: %v", err)
	}
}

// The reported case: a database built from a 103-day-old snapshot, then a
// four-record import. Status, the scan's metadata and its warning still
// say 103 days; a complete export of an ecosystem refreshes that one.
func TestImportKeepsSnapshotAge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "osv.db")
	date := time.Now().Add(-103 * 24 * time.Hour).UTC().Truncate(time.Second)
	rec := func(id, eco, name string, mod time.Time) string {
		return fmt.Sprintf(`{"id":%q,"modified":%q,"affected":[{"package":{"ecosystem":%q,"name":%q},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"9.0"}]}]}]}`,
			id, mod.UTC().Format(time.RFC3339), eco, name)
	}
	v, err := vulndb.ParseRecord([]byte(rec("SNAP-1", "Go", "example.com/old", date)))
	if err != nil {
		t.Fatal(err)
	}
	data, err := vulndb.EncodeSnapshot([]*osvschema.Vulnerability{v})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if err := vulndb.BuildSnapshot(path, data, vulndb.SnapshotManifest{Date: date, Records: 1, SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	zipFile := func(name string, recs ...string) string {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		for i, r := range recs {
			w, _ := zw.Create(fmt.Sprintf("%d.json", i))
			w.Write([]byte(r))
		}
		zw.Close()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	now := time.Now()
	four := zipFile("four.zip", rec("T-1", "PyPI", "a", now), rec("T-2", "PyPI", "b", now), rec("T-3", "npm", "c", now), rec("T-4", "npm", "d", now))
	_, stderr, err := runDB(t, "import", "--db", path, four)
	if err != nil || !strings.Contains(stderr, "partial import dates no data") || !strings.Contains(stderr, "PyPI, npm") {
		t.Fatalf("import: %q %v", stderr, err)
	}
	out, stderr, err := runDB(t, "status", "--db", path)
	if err != nil || !strings.Contains(out, "Data age:  103 days") || !strings.Contains(stderr, "103 days old") {
		t.Errorf("status after a partial import: %q %q %v", out, stderr, err)
	}

	// A scan of packages from other ecosystems (and of the imported ones).
	inv := &inventory.Inventory{Target: inventory.Target{Name: "test"}, Packages: []inventory.Package{
		{Name: "rack", Version: "1.0", Type: inventory.TypeGem},
		{Name: "serde", Version: "1.0", Type: inventory.TypeCargo},
		{Name: "a", Version: "1.0", Type: "pypi"},
	}}
	scan := func() *report.Result {
		t.Helper()
		f := &findingFlags{}
		f.path, f.maxAge, f.ignoreFile = path, 7*24*time.Hour, defaultIgnoreFile
		res, err := f.findings(t.Context(), inv, []string{scannerVuln})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := scan()
	if res.DB == nil || res.DB.Age != "103 days" || !res.DB.UpdatedAt.Equal(date) || res.DB.Source != vulndb.SourceBundled {
		t.Errorf("scan metadata: %+v", res.DB)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "103 days old") {
		t.Errorf("no staleness warning: %q", res.Warnings)
	}

	// Complete exports of the three ecosystems the scan uses refresh them.
	for _, eco := range []string{"RubyGems", "crates.io", "PyPI"} {
		all := zipFile("all.zip", rec("F-"+eco, eco, "z", now.Add(-time.Hour)))
		out, _, err := runDB(t, "import", "--db", path, "--full-ecosystem", eco, all)
		if err != nil || !strings.Contains(out, eco+" data dated") {
			t.Fatalf("full import of %s: %q %v", eco, out, err)
		}
	}
	res = scan()
	if res.DB == nil || time.Since(res.DB.UpdatedAt) > 2*time.Hour || strings.Contains(strings.Join(res.Warnings, "\n"), "old") {
		t.Errorf("after full imports: %+v %q", res.DB, res.Warnings)
	}
	// The database as a whole still holds 103-day-old Go data.
	if out, _, _ := runDB(t, "status", "--db", path); !strings.Contains(out, "Data age:  103 days (Go") {
		t.Errorf("status: %q", out)
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "0.5d": 12 * time.Hour, "36h": 36 * time.Hour, "0": 0} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "7", "-1d", "week"} {
		if _, err := parseAge(bad); err == nil {
			t.Errorf("parseAge(%q) accepted", bad)
		}
	}
}
