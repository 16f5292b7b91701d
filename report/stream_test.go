package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// normalized is what the writers did before they streamed: a copy of the
// inventory whose packages have empty rather than null locations.
func normalized(inv *inventory.Inventory) *inventory.Inventory {
	out := *inv
	out.Packages = make([]inventory.Package, len(inv.Packages))
	copy(out.Packages, inv.Packages)
	for i := range out.Packages {
		if out.Packages[i].Locations == nil {
			out.Packages[i].Locations = []inventory.Location{}
		}
	}
	return &out
}

// whole encodes v in one piece, as the writers did before they streamed.
func whole(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func wholeResult(t *testing.T, r *Result) []byte {
	inv := normalized(r.Inventory)
	inv.Warnings = append(append([]string{}, inv.Warnings...), r.Warnings...)
	if len(inv.Warnings) == 0 {
		inv.Warnings = r.Inventory.Warnings
	}
	var fs []finding.Finding
	r.each(func(f *finding.Finding) error { fs = append(fs, *f); return nil })
	if fs == nil {
		fs = []finding.Finding{}
	}
	return whole(t, ResultDocument{SchemaVersion: SchemaVersion, Inventory: inv, Scanners: r.Scanners, DB: r.DB, Findings: fs, Summary: r.summary()})
}

// The streamed documents are byte for byte what encoding the whole
// document gives.
func TestJSONStreamIdentical(t *testing.T) {
	invs := sbomtest.All()
	invs["empty"] = &inventory.Inventory{}
	invs["one"] = &inventory.Inventory{Packages: []inventory.Package{{Name: "a<b>&", Version: "1\u2028"}}, Warnings: []string{"w"}}
	for name, inv := range invs {
		var b bytes.Buffer
		if err := JSON(&b, inv); err != nil {
			t.Fatal(err)
		}
		if want := whole(t, Document{SchemaVersion: SchemaVersion, Inventory: normalized(inv)}); !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: streamed JSON differs:\n%s\nwant:\n%s", name, b.Bytes(), want)
		}
	}
	stored := sampleResult()
	stored.Store = NewStore()
	for _, f := range stored.Findings {
		stored.Store.Add(f)
	}
	stored.Findings = nil
	stored.Warnings = []string{"database is old"}
	noFindings := sampleResult()
	noFindings.Findings = nil
	for name, r := range map[string]*Result{"sample": sampleResult(), "store": stored, "none": noFindings, "empty": {Inventory: &inventory.Inventory{}}} {
		var b bytes.Buffer
		if err := ResultJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		if want := wholeResult(t, r); !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s: streamed result JSON differs:\n%s\nwant:\n%s", name, b.Bytes(), want)
		}
	}
}

// bigInventory has n packages with fields of some hundred bytes, like the
// hostile images that pad them.
func bigInventory(n int) *inventory.Inventory {
	inv := &inventory.Inventory{Target: inventory.Target{Name: "big"}}
	layer := &inventory.Layer{Index: 0, DiffID: "sha256:" + strings.Repeat("a", 64)}
	for i := range n {
		name := fmt.Sprintf("p%d%s", i, strings.Repeat("n", 300))
		inv.Packages = append(inv.Packages, inventory.Package{
			Name: name, Version: fmt.Sprintf("1.0.%d-r0", i), Type: "apk", Arch: "x86_64",
			SourceName: name, SourceVersion: "1", PURL: "pkg:apk/alpine/" + name + "@1",
			FoundBy: "apk", Locations: []inventory.Location{{Path: "/lib/apk/db/installed", Layer: layer}},
		})
	}
	return inv
}

// heapProbe is a writer that measures the live heap every few MiB written.
type heapProbe struct {
	n, next int
	peak    uint64
}

func (h *heapProbe) Write(p []byte) (int, error) {
	h.n += len(p)
	if h.n >= h.next {
		h.next = h.n + 4<<20
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapAlloc)
	}
	return len(p), nil
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// While a JSON report is written, the live heap grows by far less than the
// report: the document is never held whole (it was, twice over, before the
// writers streamed packages).
func TestJSONMemory(t *testing.T) {
	inv := bigInventory(20_000)
	for name, write := range map[string]func(*heapProbe) error{
		"JSON":       func(h *heapProbe) error { return JSON(h, inv) },
		"ResultJSON": func(h *heapProbe) error { return ResultJSON(h, &Result{Inventory: inv, Scanners: []string{"vuln"}}) },
	} {
		base := liveHeap()
		h := &heapProbe{}
		if err := write(h); err != nil {
			t.Fatal(err)
		}
		grew := int64(h.peak) - int64(base)
		t.Logf("%s: %d MiB written, live heap grew by %d KiB", name, h.n>>20, grew>>10)
		if h.n < 20<<20 {
			t.Fatalf("%s: only %d bytes written", name, h.n)
		}
		if grew > int64(h.n/8) {
			t.Errorf("%s: live heap grew by %d MiB while writing %d MiB: the document is held in memory", name, grew>>20, h.n>>20)
		}
	}
}

// Whatever the package data, the streamed report is the whole-document
// encoding: slot keys and newlines in names, versions and warnings must
// not throw off where the packages go.
func FuzzJSONStream(f *testing.F) {
	f.Add("bash", "5.2", "\n  \"packages\": []", "w", 2)
	f.Add("a\"b", "1\u2028", "\n    ]", "\n  \"findings\": []", 0)
	f.Add("", "", "", "", 1)
	f.Fuzz(func(t *testing.T, name, version, source, warning string, n int) {
		n = n%4 + 1
		if n < 0 {
			n = -n
		}
		inv := &inventory.Inventory{Target: inventory.Target{Name: name, Labels: map[string]string{"packages": version}}, Warnings: []string{warning}}
		for i := range n {
			p := inventory.Package{Name: name, Version: version, SourceName: source, Type: "apk", Licenses: []string{warning}}
			if i%2 == 1 {
				p.Locations = []inventory.Location{{Path: source}}
			}
			inv.Packages = append(inv.Packages, p)
		}
		var b bytes.Buffer
		if err := JSON(&b, inv); err != nil {
			t.Fatal(err)
		}
		if want := whole(t, Document{SchemaVersion: SchemaVersion, Inventory: normalized(inv)}); !bytes.Equal(b.Bytes(), want) {
			t.Fatalf("streamed JSON differs:\n%s\nwant:\n%s", b.Bytes(), want)
		}
		r := &Result{Inventory: inv, Scanners: []string{"vuln"}, Warnings: []string{source}, Findings: []finding.Finding{{ID: name, Title: version, Package: &finding.Package{Name: source}}}}
		b.Reset()
		if err := ResultJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		if want := wholeResult(t, r); !bytes.Equal(b.Bytes(), want) {
			t.Fatalf("streamed result JSON differs:\n%s\nwant:\n%s", b.Bytes(), want)
		}
	})
}
