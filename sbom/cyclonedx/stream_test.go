package cyclonedx

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

// whole fills the document's BOM with every component and encodes it in
// one piece with cyclonedx-go's encoder, as Encode did before it streamed.
func whole(t *testing.T, d *document) []byte {
	t.Helper()
	bom := *d.bom
	comps := []cdx.Component{} // as the old build did; EncodeVersion drops it when empty
	var refs []string
	if d.os != nil {
		comps = append(comps, *d.os)
		refs = append(refs, d.os.BOMRef)
	}
	lc := sbom.LicenseCache{}
	for i := range d.inv.Packages {
		comps = append(comps, packageComponent(&d.inv.Packages[i], d.refs[i], lc))
		refs = append(refs, d.refs[i])
	}
	bom.Components = &comps
	dep := (*d.bom.Dependencies)[0]
	if dep.Dependencies != nil {
		dep.Dependencies = &refs
	}
	bom.Dependencies = &[]cdx.Dependency{dep}
	var b bytes.Buffer
	enc := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.EncodeVersion(&bom, cdx.SpecVersion1_6); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func vulnsFor(inv *inventory.Inventory) []finding.Finding {
	var fs []finding.Finding
	for i, p := range inv.Packages {
		if i > 2 {
			break
		}
		fs = append(fs, finding.Finding{
			ID: fmt.Sprintf("CVE-2024-000%d", i%2), Kind: finding.KindVulnerability, Severity: finding.High, Title: "t <&>",
			CVSS:          []finding.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", Score: 9.8}},
			Package:       &finding.Package{Name: p.Name, Version: p.Version, PURL: p.PURL, Type: p.Type, Path: firstPath(&p)},
			FixedVersions: []string{"9.9"},
		})
	}
	return fs
}

// The streamed document is byte for byte what cyclonedx-go writes for the
// whole BOM, with and without vulnerabilities.
func TestEncodeStreamIdentical(t *testing.T) {
	invs := sbomtest.All()
	invs["empty"] = &inventory.Inventory{}
	invs["os-only"] = &inventory.Inventory{OS: &inventory.OS{ID: "alpine", VersionID: "3.20.3"}}
	for name, inv := range invs {
		for _, vulns := range []bool{false, true} {
			var got bytes.Buffer
			var err error
			if vulns {
				err = EncodeWithVulnerabilities(&got, inv, vulnsFor(inv), fixed())
			} else {
				err = Encode(&got, inv, fixed())
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := build(inv, fixed())
			if err != nil {
				t.Fatal(err)
			}
			if vulns {
				// The vulnerabilities are part of the skeleton, not
				// streamed: take them from the streamed document.
				bom, err := decodeBOM(got.Bytes())
				if err != nil {
					t.Fatal(err)
				}
				if len(inv.Packages) > 0 && (bom.Vulnerabilities == nil || len(*bom.Vulnerabilities) == 0) {
					t.Fatalf("%s: no vulnerabilities written", name)
				}
				d.bom.Vulnerabilities = bom.Vulnerabilities
			}
			if want := whole(t, d); !bytes.Equal(got.Bytes(), want) {
				t.Errorf("%s (vulns %v): streamed CycloneDX differs:\n%s\nwant:\n%s", name, vulns, got.Bytes(), want)
			}
		}
	}
}

func decodeBOM(b []byte) (*cdx.BOM, error) {
	var bom cdx.BOM
	err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom)
	return &bom, err
}

// While a CycloneDX document is written, the live heap grows by far less
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
	if grew > n/8 {
		t.Errorf("live heap grew by %d MiB while writing %d MiB: the document is held in memory", grew>>20, n>>20)
	}
}
