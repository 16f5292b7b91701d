package match

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/version"
)

// The matcher's warnings carry their codes: an expired ignore entry (at
// its file and line), a package type with no OSV ecosystem, a version that
// cannot be compared.
func TestMatchDiagnosticCodes(t *testing.T) {
	src := testSource(t)
	ig, err := LoadIgnoreFile("testdata/ignore/bulkheadignore.yaml", false)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		inv  *inventory.Inventory
		opts Options
		code diag.Code
		loc  diag.Location
	}{
		{"expired ignore entry", suppressInventory(), Options{Ignore: ig, Now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}, diag.IgnoreExpired,
			diag.Location{Path: "testdata/ignore/bulkheadignore.yaml", Line: expiredLine(t, ig), Object: "GHSA-2fqw-684c-pvp7"}},
		{"no ecosystem", &inventory.Inventory{Packages: []inventory.Package{{Name: "bash", Version: "5.2", Type: "rpm"}}}, Options{}, diag.MatchUnsupported,
			diag.Location{Object: "rpm"}},
		{"version not understood", &inventory.Inventory{Packages: []inventory.Package{{Name: "django", Version: "1." + strings.Repeat("0", version.MaxLen), Type: "pypi", PURL: "pkg:pypi/django"}}}, Options{}, diag.MatchVersionUnknown,
			diag.Location{Object: "PyPI/django"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ds []diag.Diagnostic
			var warns []string
			opts := c.opts
			opts.Diagnose = func(d diag.Diagnostic) { ds = append(ds, d) }
			opts.Warn = func(s string) { warns = append(warns, s) }
			if _, err := Match(context.Background(), c.inv, src, opts); err != nil {
				t.Fatal(err)
			}
			if len(warns) != 0 {
				t.Errorf("Warn called besides Diagnose: %q", warns)
			}
			for _, d := range ds {
				if d.Code == c.code {
					if d.Location == nil || *d.Location != c.loc || d.Severity != diag.Warning {
						t.Errorf("%s at %+v, want %+v", d.Code, d.Location, c.loc)
					}
					return
				}
			}
			t.Errorf("no %s among %+v", c.code, ds)
		})
	}
}

func expiredLine(t *testing.T, ig *IgnoreFile) int {
	for _, e := range ig.Entries {
		if e.ID == "GHSA-2fqw-684c-pvp7" {
			return e.Line
		}
	}
	t.Fatal("no GHSA-2fqw-684c-pvp7 entry")
	return 0
}
