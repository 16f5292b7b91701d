package match

import (
	"context"
	"fmt"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	osvpb "github.com/ossf/osv-schema/bindings/go/osvschema"
)

// benchSource builds a source with realistic record counts: the committed
// real records plus, per synthetic package, a few records with the real
// records' shapes (several ranges, a versions list, CVSS). Names are spread
// so that each package has 0-6 candidate records, as in a distro image
// against the full Debian data (about 2.5 records per source package).
func benchSource(b *testing.B) (*MemorySource, *inventory.Inventory) {
	b.Helper()
	recs, err := LoadRecords("testdata/osv")
	if err != nil {
		b.Fatal(err)
	}
	inv := &inventory.Inventory{Target: inventory.Target{Name: "bench"}, OS: &inventory.OS{ID: "debian", VersionID: "12"}}
	types := []struct{ typ, eco, ver, fix string }{
		{"deb", "Debian:12", "1.2.3-4+deb12u1", "1.2.3-4+deb12u2"},
		{"pypi", "PyPI", "2.28.1", "2.31.0"},
		{"npm", "npm", "4.17.20", "4.17.21"},
		{"maven", "Maven", "4.1.85.Final", "4.1.86.Final"},
		{"golang", "Go", "v1.20.3", "1.20.4"},
	}
	for i := range 10000 {
		tp := types[i%len(types)]
		name := fmt.Sprintf("pkg%05d", i)
		if tp.typ == "maven" {
			name = "org.example:" + name
		}
		inv.Packages = append(inv.Packages, inventory.Package{Name: name, SourceName: name, Version: tp.ver, Type: tp.typ})
		for j := range i % 7 {
			sev := []*osvpb.Severity{{Type: osvpb.Severity_CVSS_V3, Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}
			recs = append(recs, &osvpb.Vulnerability{
				Id:       fmt.Sprintf("BENCH-%05d-%d", i, j),
				Aliases:  []string{fmt.Sprintf("CVE-2024-%05d%d", i, j)},
				Severity: sev,
				Affected: []*osvpb.Affected{{
					Package: &osvpb.Package{Ecosystem: tp.eco, Name: name},
					Ranges: []*osvpb.Range{{Type: osvpb.Range_ECOSYSTEM, Events: []*osvpb.Event{
						{Introduced: "0"}, {Fixed: tp.fix},
					}}},
				}},
			})
		}
	}
	return NewMemorySource(recs), inv
}

func BenchmarkMatch10k(b *testing.B) {
	src, inv := benchSource(b)
	b.ResetTimer()
	for b.Loop() {
		fs, err := Match(context.Background(), inv, src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(fs) == 0 {
			b.Fatal("no findings")
		}
	}
}

func BenchmarkParseIgnoreFile(b *testing.B) {
	for b.Loop() {
		if _, err := LoadIgnoreFile("testdata/ignore/bulkheadignore.yaml", false); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkApplyVEX(b *testing.B) {
	d := loadVEX(b, "sample-2vulns.openvex.json")
	image := ImageIdentifiers(&inventory.Target{Name: "nginx", Digest: "sha256:13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0"})
	for b.Loop() {
		fs := suppressInventoryFindings()
		ApplyVEX(fs, []*VEXDocument{d}, image)
	}
}

func suppressInventoryFindings() []finding.Finding {
	fs := make([]finding.Finding, 100)
	for i := range fs {
		fs[i] = finding.Finding{ID: fmt.Sprintf("CVE-2023-%d", 27000+i), Package: &finding.Package{Name: "p", PURL: "pkg:deb/debian/p@1"}}
	}
	return fs
}
