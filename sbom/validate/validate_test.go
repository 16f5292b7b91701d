package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
	"github.com/bulkhead-sec/bulkhead/scan"
)

const demoArchive = "../../testdata/images/alpine-demo.oci.tar"

var (
	demoOnce sync.Once
	demoInv  *inventory.Inventory
	demoErr  error
)

// demo scans the repository's demo image (the one syft-demo.*.json were
// made from) once per test binary.
func demo(t testing.TB) *inventory.Inventory {
	t.Helper()
	demoOnce.Do(func() {
		img, err := image.Open(context.Background(), "oci-archive:"+demoArchive, image.Options{TempDir: os.TempDir()})
		if err != nil {
			demoErr = err
			return
		}
		defer img.Close()
		res, err := scan.Image(context.Background(), img, scan.Options{})
		if err != nil {
			demoErr = err
			return
		}
		demoInv = res.Inventory
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoInv
}

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bulkheadSBOMs encodes the demo inventory the way `bulkhead image
// --format cyclonedx|spdx-json` does.
func bulkheadSBOMs(t testing.TB) map[string][]byte {
	t.Helper()
	inv := demo(t)
	var c, s bytes.Buffer
	if err := cyclonedx.Encode(&c, inv, sbom.Options{ToolVersion: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := spdx.Encode(&s, inv, sbom.Options{ToolVersion: "test"}); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{"bulkhead.cdx.json": c.Bytes(), "bulkhead.spdx.json": s.Bytes()}
}

func TestFaithfulSBOMsPass(t *testing.T) {
	docs := bulkheadSBOMs(t)
	docs["syft-demo.cdx.json"] = read(t, "syft-demo.cdx.json")
	docs["syft-demo.spdx.json"] = read(t, "syft-demo.spdx.json")
	want := map[string]string{
		"bulkhead.cdx.json": "CycloneDX 1.6", "bulkhead.spdx.json": "SPDX 2.3",
		"syft-demo.cdx.json": "CycloneDX 1.7", "syft-demo.spdx.json": "SPDX 2.3",
	}
	for name, data := range docs {
		t.Run(name, func(t *testing.T) {
			r, err := Validate(name, data, demo(t))
			if err != nil {
				t.Fatal(err)
			}
			if r.Schema.Schema != want[name] {
				t.Errorf("schema %q, want %q", r.Schema.Schema, want[name])
			}
			if !r.Passed() {
				t.Errorf("a faithful SBOM fails: schema %+v, missing %v, extra %v, mismatched %v", r.Schema, r.Missing, r.Extra, r.Mismatched)
			}
			if r.Matched != len(demo(t).Packages) || r.ImagePackages != len(demo(t).Packages) {
				t.Errorf("matched %d of %d, want all %d", r.Matched, r.ImagePackages, len(demo(t).Packages))
			}
		})
	}
}

// mutate edits a CycloneDX document's components.
func mutate(t *testing.T, data []byte, edit func(comps []map[string]any) []map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var comps []map[string]any
	for _, c := range doc["components"].([]any) {
		comps = append(comps, c.(map[string]any))
	}
	comps = edit(comps)
	out := make([]any, len(comps))
	for i := range comps {
		out[i] = comps[i]
	}
	doc["components"] = out
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEachDefectIsFlagged(t *testing.T) {
	for _, src := range []string{"syft-demo.cdx.json", "bulkhead.cdx.json"} {
		var data []byte
		if src == "bulkhead.cdx.json" {
			data = bulkheadSBOMs(t)[src]
		} else {
			data = read(t, src)
		}
		cases := []struct {
			name                     string
			edit                     func([]map[string]any) []map[string]any
			missing, extra, mismatch []string
		}{
			{"removed", func(cs []map[string]any) []map[string]any {
				var out []map[string]any
				for _, c := range cs {
					if c["name"] != "musl" {
						out = append(out, c)
					}
				}
				return out
			}, []string{"musl 1.2.4-r2"}, nil, nil},
			{"version edited", func(cs []map[string]any) []map[string]any {
				for _, c := range cs {
					if c["name"] == "lodash" {
						c["version"] = "4.17.21"
						c["purl"] = strings.Replace(c["purl"].(string), "4.17.15", "4.17.21", 1)
					}
				}
				return cs
			}, nil, nil, []string{"lodash 4.17.21/4.17.15"}},
			{"extra package", func(cs []map[string]any) []map[string]any {
				return append(cs, map[string]any{"type": "library", "bom-ref": "extra-left-pad", "name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0"})
			}, nil, []string{"left-pad 1.3.0"}, nil},
		}
		for _, tc := range cases {
			t.Run(src+"/"+tc.name, func(t *testing.T) {
				r, err := Validate(tc.name, mutate(t, data, tc.edit), demo(t))
				if err != nil {
					t.Fatal(err)
				}
				if !r.Schema.Valid {
					t.Errorf("the edit broke the schema: %v", r.Schema.Errors)
				}
				if r.Passed() {
					t.Fatal("the defect passed")
				}
				var missing, extra, mismatch []string
				for _, p := range r.Missing {
					missing = append(missing, p.Name+" "+p.Version)
				}
				for _, p := range r.Extra {
					extra = append(extra, p.Name+" "+p.Version)
				}
				for _, m := range r.Mismatched {
					mismatch = append(mismatch, m.Name+" "+strings.Join(m.SBOM, ",")+"/"+strings.Join(m.Image, ","))
				}
				if strings.Join(missing, ";") != strings.Join(tc.missing, ";") || strings.Join(extra, ";") != strings.Join(tc.extra, ";") || strings.Join(mismatch, ";") != strings.Join(tc.mismatch, ";") {
					t.Errorf("missing %v extra %v mismatched %v; want %v %v %v", missing, extra, mismatch, tc.missing, tc.extra, tc.mismatch)
				}
			})
		}
	}
}

func TestSBOMOfAnotherImage(t *testing.T) {
	// trivy's SBOM of a CentOS 7 image against the Alpine demo image.
	r, err := Validate("trivy-centos-7.cdx.json", read(t, "trivy-centos-7.cdx.json"), demo(t))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Schema.Valid {
		t.Errorf("trivy's SBOM should be schema-valid: %v", r.Schema.Errors)
	}
	if r.Passed() || len(r.Missing) != len(demo(t).Packages) || len(r.Extra) == 0 || r.Matched != 0 {
		t.Errorf("another image's SBOM: matched %d, missing %d (of %d), extra %d", r.Matched, len(r.Missing), len(demo(t).Packages), len(r.Extra))
	}
}

// TestTrivyStyle checks identities in trivy's own spelling (rpm epochs in
// the purl qualifier) against the same packages as bulkhead would read them.
func TestTrivyStyle(t *testing.T) {
	data := read(t, "trivy-centos-7.cdx.json")
	inv, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Packages) == 0 {
		t.Fatal("no packages decoded")
	}
	// The image as a scan spells it: version with the epoch, no purl.
	var image []inventory.Package
	for _, p := range inv.Packages {
		image = append(image, inventory.Package{Name: p.Name, Version: p.Version, Type: p.Type})
	}
	r := &Report{}
	Completeness(r, inv.Packages, image)
	if !r.Complete() || r.Matched != len(image) {
		t.Errorf("trivy SBOM vs its own packages: matched %d of %d, missing %v extra %v mismatched %v", r.Matched, len(image), r.Missing, r.Extra, r.Mismatched)
	}
	dropped := image[1:]
	Completeness(r, inv.Packages, dropped)
	if len(r.Extra) != 1 || r.Extra[0].Name != image[0].Name {
		t.Errorf("a package the image lacks: extra %v", r.Extra)
	}
}

func TestSchemaConformance(t *testing.T) {
	files, _ := filepath.Glob("testdata/*valid-*.json")
	if corpus := sbomtest.CorpusDir(); corpus != "" {
		more, _ := filepath.Glob(filepath.Join(corpus, "sbom", "cyclonedx-spec-testdata", "*", "*.json"))
		files = append(files, more...)
	}
	if len(files) < 4 {
		t.Fatalf("only %d conformance files", len(files))
	}
	for _, f := range files {
		base := filepath.Base(f)
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Schema(data)
		switch {
		case strings.HasPrefix(base, "valid-"):
			if err != nil || !res.Valid {
				t.Errorf("%s: valid case rejected: %v %v", f, err, res.Errors)
			}
		case strings.HasPrefix(base, "invalid-"):
			if err == nil && res.Valid {
				t.Errorf("%s: invalid case accepted", f)
			}
			if err == nil && len(res.Errors) == 0 {
				t.Errorf("%s: invalid without a message", f)
			}
		}
	}
}

func TestSchemaMessages(t *testing.T) {
	res, err := Schema(read(t, "invalid-metadata-timestamp-1.5.json"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Valid || len(res.Errors) != 1 || !strings.HasPrefix(res.Errors[0], "/metadata/timestamp: ") || !strings.Contains(res.Errors[0], "date-time") {
		t.Errorf("errors = %q", res.Errors)
	}
}

func TestUnsupported(t *testing.T) {
	for _, doc := range []string{`{"bomFormat":"CycloneDX","specVersion":"1.2"}`, `{"spdxVersion":"SPDX-2.1"}`, `{"hello":1}`, `[1]`, `not json`} {
		if _, err := Schema([]byte(doc)); err == nil {
			t.Errorf("%s: no error", doc)
		}
	}
	for _, doc := range []string{`{"hello":1}`, `[1]`, `not json`} {
		if _, err := Validate("x", []byte(doc), &inventory.Inventory{}); err == nil {
			t.Errorf("%s: Validate gave no error", doc)
		}
	}
	// A known format at a version without a schema: the schema check fails,
	// the rest is still reported.
	r, err := Validate("x", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.2","components":[]}`), &inventory.Inventory{})
	if err != nil || r.Schema.Valid || r.Passed() || len(r.Schema.Errors) != 1 || !strings.Contains(r.Schema.Errors[0], "unsupported") {
		t.Errorf("CycloneDX 1.2: %v %+v", err, r)
	}
}

func TestIdentity(t *testing.T) {
	cases := []struct {
		p    inventory.Package
		want string
	}{
		{inventory.Package{Type: "apk", Name: "musl", PURL: "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.18.9"}, "apk/musl"},
		{inventory.Package{Type: "apk", Name: "musl"}, "apk/musl"},
		{inventory.Package{Type: "pypi", Name: "Jinja2"}, "pypi/jinja2"},
		{inventory.Package{Type: "pypi", Name: "zope.interface", PURL: "pkg:pypi/zope-interface@6.0"}, "pypi/zope-interface"},
		{inventory.Package{Type: "golang", Name: "golang.org/x/text", PURL: "pkg:golang/golang.org/x/text@v0.3.5"}, "golang/golang.org/x/text"},
		{inventory.Package{Type: "maven", Name: "log4j-core", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"}, "maven/org.apache.logging.log4j/log4j-core"},
		{inventory.Package{Type: "npm", Name: "@babel/core", PURL: "pkg:npm/%40babel/core@7.0.0"}, "npm/@babel/core"},
	}
	for _, c := range cases {
		if _, got := Identity(&c.p); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
	vs := []struct {
		typ, name, a, b string
		same            bool
	}{
		{"golang", "stdlib", "go1.26.8", "1.26.8", true},
		{"rpm", "bash", "0:4.2.46-34.el7", "4.2.46-34.el7", true},
		{"rpm", "openssl-libs", "1:1.0.2k-19.el7", "1.0.2k-19.el7", true},
		{"rpm", "openssl-libs", "1:1.0.2k-19.el7", "2:1.0.2k-19.el7", false},
		{"npm", "lodash", "4.17.15", "4.17.21", false},
	}
	for _, v := range vs {
		a, b := NormalizeVersion(v.typ, v.name, v.a), NormalizeVersion(v.typ, v.name, v.b)
		if got := a == b || sameVersion(v.typ, a, b); got != v.same {
			t.Errorf("%s %s vs %s: same=%v", v.typ, v.a, v.b, got)
		}
	}
}

func FuzzValidate(f *testing.F) {
	for _, name := range []string{"trivy-centos-7.cdx.json", "valid-bom-1.5.json", "invalid-component-type-1.5.json"} {
		f.Add(read(f, name))
	}
	inv := demo(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Validate("fuzz", data, inv)
		if err != nil {
			return
		}
		if r.Schema.Schema == "" || len(r.Schema.Errors) > MaxErrors {
			t.Fatalf("report: %+v", r.Schema)
		}
		if r.Matched > r.ImagePackages {
			t.Fatalf("matched %d of %d", r.Matched, r.ImagePackages)
		}
	})
}

func BenchmarkValidate(b *testing.B) {
	data := read(b, "syft-demo.cdx.json")
	inv := demo(b)
	if _, err := Validate("bench", data, inv); err != nil { // compile the schema outside the loop
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Validate("bench", data, inv); err != nil {
			b.Fatal(err)
		}
	}
}
