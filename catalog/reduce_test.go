package catalog

import (
	"context"
	"fmt"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

type named string

func (n named) Name() string                                            { return string(n) }
func (named) Match(string) bool                                         { return true }
func (named) Parse(context.Context, Input) ([]inventory.Package, error) { return nil, nil }

// Of the copies of one file in several layers, the Collector keeps only the
// newest whole, as they arrive in any order: an image that rewrites a
// large database in every layer costs one copy, not one per layer.
func TestRecordKeepsOnlyNewestCopy(t *testing.T) {
	c := NewCollector(context.Background(), []Cataloger{named("apk")}, nil, t.TempDir())
	pkgs := func(n int) []inventory.Package {
		var out []inventory.Package
		for i := range n {
			out = append(out, inventory.Package{Name: fmt.Sprint(i), Version: "1", Type: "apk"})
		}
		return out
	}
	for _, layer := range []int{1, 3, 0, 2} {
		c.record(named("apk"), &walk.Entry{Path: "lib/apk/db/installed", Layer: layer}, pkgs(100), nil)
	}
	insts := c.found["apk"]["lib/apk/db/installed"]
	for _, in := range insts {
		whole := in.pkgs != nil
		if whole != (in.layer == 3) || (!whole && len(in.keys) != 100) {
			t.Errorf("layer %d: %d packages, %d keys", in.layer, len(in.pkgs), len(in.keys))
		}
	}
}
