package catalog_test

import (
	"context"
	"errors"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/apk"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Each kind of cataloger warning carries its code, the file and the
// cataloger: an unparseable file, a file read in part, and a file over a
// limit for hostile input.
func TestCatalogDiagnosticCodes(t *testing.T) {
	db := apkDB(100, func(int) int { return 20 })
	cases := []struct {
		name string
		col  func(t *testing.T) *catalog.Collector
		code diag.Code
		path string
		obj  string
	}{
		{"unreadable", func(t *testing.T) *catalog.Collector {
			return collect(t, context.Background(), []catalog.Cataloger{&probe{name: "failing", fail: true, limit: -1}}, layerOf(t, map[string][]byte{"usr/bin/tool": []byte("x")}))
		}, diag.CatalogUnreadable, "/usr/bin/tool", "failing"},
		{"partial", func(t *testing.T) *catalog.Collector {
			return collect(t, context.Background(), []catalog.Cataloger{&partial{problems: []error{errors.New("inner.jar: bad")}}}, layerOf(t, map[string][]byte{"usr/bin/tool": []byte("x")}))
		}, diag.CatalogPartial, "/usr/bin/tool", "partial"},
		{"file budget", func(t *testing.T) *catalog.Collector {
			return collectBudget(t, catalog.Budget{FileBytes: 10 * apkCost(0, 20)}, map[string][]byte{"lib/apk/db/installed": db})
		}, diag.CatalogLimit, "/lib/apk/db/installed", "apk"},
		{"image budget", func(t *testing.T) *catalog.Collector {
			return collectBudget(t, catalog.Budget{ImageBytes: 10 * apkCost(0, 20)}, map[string][]byte{"lib/apk/db/installed": db})
		}, diag.CatalogLimit, "/lib/apk/db/installed", "apk"},
		{"too many packages", func(t *testing.T) *catalog.Collector {
			ctx := context.Background()
			col := catalog.NewCollector(ctx, []catalog.Cataloger{&apk.Cataloger{MaxPackages: 50}}, []inventory.Layer{{Index: 0, Digest: "sha256:feed"}}, t.TempDir())
			if _, err := walk.Walk(ctx, []walk.Layer{layerOf(t, map[string][]byte{"lib/apk/db/installed": db})}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir(), Jobs: 1}); err != nil {
				t.Fatal(err)
			}
			return col
		}, diag.CatalogLimit, "/lib/apk/db/installed", "apk"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			col := c.col(t)
			ds := col.Diagnostics()
			if len(ds) == 0 || len(ds) != len(col.Warnings()) {
				t.Fatalf("diagnostics %+v, warnings %q", ds, col.Warnings())
			}
			for i, d := range ds {
				if d.Message != col.Warnings()[i] {
					t.Errorf("diagnostic %d message %q, warning %q", i, d.Message, col.Warnings()[i])
				}
				if d.Code != c.code || d.Location == nil || d.Location.Path != c.path || d.Location.Object != c.obj {
					t.Errorf("got %s at %+v, want %s at %s (%s)", d.Code, d.Location, c.code, c.path, c.obj)
				}
			}
		})
	}
}
