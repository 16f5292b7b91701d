package sbomtest

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Padded returns an inventory of n apk packages whose fields are some
// hundred bytes long, like the hostile images that pad them: what the
// streaming writers' memory tests write.
func Padded(n int) *inventory.Inventory {
	inv := &inventory.Inventory{Target: inventory.Target{Name: "big"}, OS: &inventory.OS{ID: "alpine", VersionID: "3.20.3"}}
	layer := &inventory.Layer{Index: 0, DiffID: "sha256:" + strings.Repeat("a", 64)}
	for i := range n {
		name := fmt.Sprintf("p%d%s", i, strings.Repeat("n", 300))
		inv.Packages = append(inv.Packages, inventory.Package{
			Name: name, Version: fmt.Sprintf("1.0.%d-r0", i), Type: "apk", Arch: "x86_64",
			SourceName: name, SourceVersion: "1", PURL: "pkg:apk/alpine/" + name + "@1", FoundBy: "apk",
			Licenses: []string{"MIT"}, Locations: []inventory.Location{{Path: "/lib/apk/db/installed", Layer: layer}},
		})
	}
	return inv
}

// HeapGrowth runs write against a writer that discards what it is given
// and measures the live heap every 2 MiB written; it returns the bytes
// written and how far the live heap grew above where it stood before.
func HeapGrowth(write func(io.Writer) error) (written, grew int64, err error) {
	base := liveHeap()
	p := &probe{}
	err = write(p)
	return int64(p.n), int64(p.peak) - int64(base), err
}

type probe struct {
	n, next int
	peak    uint64
}

func (p *probe) Write(b []byte) (int, error) {
	p.n += len(b)
	if p.n >= p.next {
		p.next = p.n + 2<<20
		p.peak = max(p.peak, liveHeap())
	}
	return len(b), nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
