package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	out, stderr, err := runDB(t, "status", "--db", db)
	if err != nil || !strings.Contains(out, "Records:   20 (2 withdrawn)") || !strings.Contains(out, "AlmaLinux:8") || stderr != "" {
		t.Fatalf("status: %q %q %v", out, stderr, err)
	}
	// A one-hour limit on a fresh import: no warning; 0s max age disables.
	if _, stderr, _ := runDB(t, "status", "--db", db, "--db-max-age", "1h"); stderr != "" {
		t.Errorf("fresh database warned: %q", stderr)
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
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Records != 20 || len(st.Ecosystems) == 0 || st.AgeSeconds == nil {
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

func TestOpenVulnDBBuildsBundledAndWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db", "osv.db")
	var warnings []string
	db, info, err := openDB(path, 24*time.Hour, func(s string) { warnings = append(warnings, s) })
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The snapshot's data is older than a day: the scan is told so.
	all := strings.Join(warnings, "\n")
	if !strings.Contains(all, "bundled in this binary") || !strings.Contains(all, "vulnerability database is") {
		t.Errorf("warnings: %q", all)
	}
	if info == nil || !strings.Contains(info.Source, "bundled snapshot") || info.Records == 0 {
		t.Errorf("db info: %+v", info)
	}
	if vs, err := db.Lookup("Go", "stdlib"); err != nil || len(vs) == 0 {
		t.Errorf("bundled lookup: %d %v", len(vs), err)
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
