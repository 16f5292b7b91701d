package report

import (
	"bytes"
	"encoding/json"
	"io"
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

// While a JSON report is written, the live heap grows by far less than the
// report: the document is never held whole (it was, twice over, before the
// writers streamed packages).
func TestJSONMemory(t *testing.T) {
	inv := sbomtest.Padded(20_000)
	for name, write := range map[string]func(io.Writer) error{
		"JSON":       func(w io.Writer) error { return JSON(w, inv) },
		"ResultJSON": func(w io.Writer) error { return ResultJSON(w, &Result{Inventory: inv, Scanners: []string{"vuln"}}) },
	} {
		n, grew, err := sbomtest.HeapGrowth(write)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d MiB written, live heap grew by %d KiB", name, n>>20, grew>>10)
		if n < 20<<20 {
			t.Fatalf("%s: only %d bytes written", name, n)
		}
		if grew > n/8 {
			t.Errorf("%s: live heap grew by %d MiB while writing %d MiB: the document is held in memory", name, grew>>20, n>>20)
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
