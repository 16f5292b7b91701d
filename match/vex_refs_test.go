package match

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// TestVEXCanonicalProducts: a statement about an image applies to the
// image however its reference (or the statement's product) spells the
// registry and repository, and never to another repository.
func TestVEXCanonicalProducts(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	doc := func(product string) *VEXDocument {
		d, err := ParseVEX([]byte(fmt.Sprintf(`{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/1",
  "author": "test",
  "timestamp": "2026-01-01T00:00:00Z",
  "version": 1,
  "statements": [{
    "vulnerability": {"name": "CVE-2026-0001"},
    "products": [{"@id": %q, "subcomponents": [{"@id": "pkg:npm/minimist@1.2.5"}]}],
    "status": "not_affected",
    "justification": "vulnerable_code_not_in_execute_path"
  }]
}`, product)), "test.vex.json")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		product, image string
		suppressed     bool
	}{
		{"pkg:oci/app?repository_url=registry.local:5000/t/app", "Registry.Local:05000/t/app:1", true},
		{"pkg:oci/app?repository_url=Registry.Local:05000/t/app", "registry.local:5000/t/app:1", true},
		{"pkg:oci/app?repository_url=registry.local:5000/t/app", "registry.local:5000/other/app:1", false},
		{"pkg:oci/app?repository_url=registry.local:5000/t/app", "registry.local:5001/t/app:1", false},
		{"pkg:oci/nginx?repository_url=docker.io/library/nginx", "nginx:latest", true},
		{"docker.io/library/nginx:latest", "nginx", true},
		{"index.docker.io/library/nginx@" + dg, "docker.io/nginx:1.27", true},
		{"docker.io/library/nginx:latest", "nginx:1.27", false},
		{"registry.example.com/t/app@" + dg, "registry.example.com:443/t/app:latest@" + dg, true},
		{"registry.example.com/t/app@" + dg, "registry.example.com/other/app@" + dg, false},
	} {
		fs := []finding.Finding{{ID: "CVE-2026-0001", Package: &finding.Package{Name: "minimist", PURL: "pkg:npm/minimist@1.2.5"}}}
		ApplyVEX(fs, []*VEXDocument{doc(tc.product)}, ImageIdentifiers(&inventory.Target{Name: tc.image, Source: "registry", Digest: dg}))
		if got := fs[0].Suppressed != nil; got != tc.suppressed {
			t.Errorf("product %s, image %s: suppressed %v, want %v (identifiers %s)", tc.product, tc.image, got, tc.suppressed,
				strings.Join(ImageIdentifiers(&inventory.Target{Name: tc.image, Source: "registry", Digest: dg}), " "))
		}
	}
}
