package pipeline

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A first scan with no database builds one from the bundled snapshot and
// says so; the snapshot's data is older than a day, so a scan with a
// one-day limit is told that too.
func TestOpenMatcherBuildsBundledAndWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db", "osv.db")
	m, err := OpenMatcher(MatchOptions{DBPath: path, MaxAge: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info, err := m.Info(nil)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(m.Warnings(), "\n")
	if !strings.Contains(all, "bundled in this binary") || !strings.Contains(all, "vulnerability data for AlmaLinux is") {
		t.Errorf("warnings: %q", all)
	}
	if info == nil || !strings.Contains(info.Source, "bundled snapshot") || info.Records == 0 {
		t.Errorf("db info: %+v", info)
	}
	if vs, err := m.DB().Lookup("Go", "stdlib"); err != nil || len(vs) == 0 {
		t.Errorf("bundled lookup: %d %v", len(vs), err)
	}
}
