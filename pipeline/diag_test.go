package pipeline

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// The database's warnings carry their codes into the matcher and into a
// result: built from the bundled snapshot (vulndb.bundled, at the
// database's path), data older than MaxAge (vulndb.stale, naming the
// ecosystem), an expired ignore entry (ignore.expired).
func TestPipelineDiagnosticCodes(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "db", "osv.db")
	ignore := filepath.Join(dir, "ignore")
	if err := writeFile(ignore, "CVE-2000-0001 exp:2001-01-01\n"); err != nil {
		t.Fatal(err)
	}
	inv := &inventory.Inventory{Packages: []inventory.Package{{Name: "lodash", Version: "4.17.4", Type: "npm", PURL: "pkg:npm/lodash@4.17.4"}}}
	res, err := Inventory(t.Context(), inv, Options{Vulns: &MatchOptions{DBPath: dbPath, MaxAge: time.Hour, IgnoreFile: ignore}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) == 0 {
		t.Fatal("no finding for lodash 4.17.4")
	}
	want := map[diag.Code]diag.Location{
		diag.VulnDBBundled: {Path: dbPath},
		diag.VulnDBStale:   {Object: "npm"},
		diag.IgnoreExpired: {Path: ignore, Line: 1, Object: "CVE-2000-0001"},
	}
	for _, d := range res.Diagnostics {
		loc, ok := want[d.Code]
		if !ok {
			t.Errorf("unexpected %s: %s", d.Code, d.Message)
			continue
		}
		delete(want, d.Code)
		if d.Location == nil || *d.Location != loc || d.Severity != diag.Warning {
			t.Errorf("%s at %+v (%s), want %+v", d.Code, d.Location, d.Severity, loc)
		}
	}
	for code := range want {
		t.Errorf("no %s among %+v", code, res.Diagnostics)
	}
	if got, w := diag.Messages(res.Diagnostics), res.Warnings; len(got) != len(w) {
		t.Errorf("warnings %q are not the diagnostics' messages %q", w, got)
	}
}

func writeFile(p, s string) error { return os.WriteFile(p, []byte(s), 0o600) }
