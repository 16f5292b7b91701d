package spdx

import (
	"bytes"
	"io"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	v23 "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// whole fills the document with every package and relationship and writes
// it in one piece with tools-golang, as Encode did before it streamed.
func whole(t *testing.T, d *streamDoc) []byte {
	t.Helper()
	doc := *d.doc
	doc.OtherLicenses = d.lic.others
	doc.Packages = append([]*v23.Package{}, d.head...)
	doc.Relationships = append([]*v23.Relationship{}, d.headRel...)
	for i := range d.inv.Packages {
		doc.Packages = append(doc.Packages, pkg(&d.inv.Packages[i], d.ids[i], d.lic))
		doc.Relationships = append(doc.Relationships, contains(d.root, d.ids[i]))
	}
	var b bytes.Buffer
	if err := spdxjson.Write(&doc, &b, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// The streamed document is byte for byte what tools-golang writes for the
// whole document.
func TestEncodeStreamIdentical(t *testing.T) {
	invs := sbomtest.All()
	invs["empty"] = &inventory.Inventory{}
	invs["licences"] = &inventory.Inventory{OS: &inventory.OS{ID: "alpine"}, Packages: []inventory.Package{
		{Name: "a", Version: "1", Type: "apk", Licenses: []string{"GPL2+", "MIT"}},
		{Name: "a", Version: "1", Type: "apk", Licenses: []string{"BSD", "GPL2+"}},
		{Name: "b<&>", Version: "1", Type: "apk", Licenses: []string{"MIT OR Apache-2.0"}},
	}}
	for name, inv := range invs {
		var got bytes.Buffer
		if err := Encode(&got, inv, fixed()); err != nil {
			t.Fatal(err)
		}
		d, err := build(inv, fixed())
		if err != nil {
			t.Fatal(err)
		}
		if want := whole(t, d); !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: streamed SPDX differs:\n%s\nwant:\n%s", name, got.Bytes(), want)
		}
	}
}

// While an SPDX document is written, the live heap grows by far less
// than the document.
func TestEncodeMemory(t *testing.T) {
	inv := sbomtest.Padded(10_000)
	n, grew, err := sbomtest.HeapGrowth(func(w io.Writer) error { return Encode(w, inv, fixed()) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d MiB written, live heap grew by %d KiB", n>>20, grew>>10)
	if n < 10<<20 {
		t.Fatalf("only %d bytes written", n)
	}
	if grew > n/4 {
		t.Errorf("live heap grew by %d MiB while writing %d MiB: the document is held in memory", grew>>20, n>>20)
	}
}
