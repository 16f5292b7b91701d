package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
)

// TestSBOMsOfRealImages writes CycloneDX 1.6 and SPDX 2.3 for real images,
// validates them against the official schemas, and reads them back.
func TestSBOMsOfRealImages(t *testing.T) {
	requireEnv(t)
	schemas := filepath.Join(repoRoot, "sbom", "testdata", "schemas")
	cdxSchema := sbomtest.Schema(t, filepath.Join(schemas, "cyclonedx"), "bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json")
	spdxSchema := sbomtest.Schema(t, filepath.Join(schemas, "spdx"), "spdx-2.3.schema.json")

	dir := t.TempDir()
	deb := filepath.Join(dir, "debian.tar")
	run(t, "podman", "save", "-q", "--format", "oci-archive", "-o", deb, debianImage(t))
	rpmRef, _ := rpmImage(t)
	rpmTar := filepath.Join(dir, "rpm.tar")
	run(t, "podman", "save", "-q", "--format", "docker-archive", "-o", rpmTar, rpmRef)
	targets := map[string]string{
		"debian": "oci-archive:" + deb,
		"alpine": filepath.Join(repoRoot, "testdata", "images", "alpine-demo.oci.tar"),
		"rpm":    rpmTar,
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			inv := scanJSON(t, "image", target)
			for _, f := range []struct{ format string }{{"cyclonedx"}, {"spdx-json"}} {
				out := filepath.Join(dir, name+"."+f.format+".json")
				if _, errOut, code := bulkhead("image", target, "--quiet", "--format", f.format, "--output", out); code != 0 {
					t.Fatalf("%s: %s", f.format, errOut)
				}
				doc, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				var back *inventory.Inventory
				if f.format == "cyclonedx" {
					if err := sbomtest.Validate(cdxSchema, doc); err != nil {
						t.Errorf("CycloneDX 1.6 schema: %v", err)
					}
					back, err = cyclonedx.Decode(bytes.NewReader(doc))
				} else {
					if err := sbomtest.Validate(spdxSchema, doc); err != nil {
						t.Errorf("SPDX 2.3 schema: %v", err)
					}
					back, err = spdx.Decode(bytes.NewReader(doc))
				}
				if err != nil {
					t.Fatalf("decode our %s: %v", f.format, err)
				}
				// Every package comes back with its purl.
				want := map[string]bool{}
				for _, p := range inv.Packages {
					want[p.PURL] = true
				}
				got := map[string]bool{}
				for _, p := range back.Packages {
					got[p.PURL] = true
				}
				for p := range want {
					if !got[p] {
						t.Errorf("%s: %s missing after a round trip", f.format, p)
					}
				}
				if len(want) < 10 {
					t.Errorf("only %d packages", len(want))
				}
			}
		})
	}
}
