package cyclonedx

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/format"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

var update = flag.Bool("update", false, "rewrite golden files and the generated licence id table")

const schemaDir = "../testdata/schemas/cyclonedx"

// fixed makes Encode deterministic for golden files.
func fixed() Options {
	return Options{
		ToolVersion: "1.0.0-test",
		Now:         func() time.Time { return time.Date(2024, 10, 21, 12, 0, 0, 0, time.UTC) },
		Rand:        strings.NewReader(strings.Repeat("bulkhead", 4)),
	}
}

func encode(t testing.TB, inv *inventory.Inventory, opts Options) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, inv, opts); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestEncodeValidatesAgainstSchema(t *testing.T) {
	schema := sbomtest.Schema(t, schemaDir, "bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json")
	for name, inv := range sbomtest.All() {
		t.Run(name, func(t *testing.T) {
			out := encode(t, inv, Options{})
			if err := sbomtest.Validate(schema, out); err != nil {
				t.Fatalf("CycloneDX 1.6 schema: %v", err)
			}
			checkRefs(t, out)
		})
	}
}

// checkRefs checks what the schema cannot: bom-refs are unique and every
// dependency names a component that exists.
func checkRefs(t *testing.T, out []byte) {
	t.Helper()
	var bom cdx.BOM
	if err := json.Unmarshal(out, &bom); err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{bom.Metadata.Component.BOMRef: true}
	for _, c := range *bom.Components {
		if c.BOMRef == "" || refs[c.BOMRef] {
			t.Errorf("bom-ref %q empty or not unique", c.BOMRef)
		}
		refs[c.BOMRef] = true
	}
	if bom.Dependencies == nil || len(*bom.Dependencies) == 0 {
		t.Fatal("no dependencies section")
	}
	root := (*bom.Dependencies)[0]
	if root.Ref != bom.Metadata.Component.BOMRef {
		t.Errorf("first dependency is %q, want the image %q", root.Ref, bom.Metadata.Component.BOMRef)
	}
	n := 0
	for _, d := range *bom.Dependencies {
		if !refs[d.Ref] {
			t.Errorf("dependency ref %q names no component", d.Ref)
		}
		if d.Dependencies != nil {
			for _, r := range *d.Dependencies {
				n++
				if !refs[r] {
					t.Errorf("dependsOn %q names no component", r)
				}
			}
		}
	}
	if n != len(*bom.Components) {
		t.Errorf("image depends on %d components, want all %d", n, len(*bom.Components))
	}
}

func TestEncodeGolden(t *testing.T) {
	for name, inv := range sbomtest.All() {
		t.Run(name, func(t *testing.T) {
			got := encode(t, inv, fixed())
			path := filepath.Join("testdata", "golden", name+".cdx.json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it); got:\n%s", path, got)
			}
		})
	}
}

func TestEncodeDebianDetails(t *testing.T) {
	var bom cdx.BOM
	if err := json.Unmarshal(encode(t, sbomtest.Debian(), fixed()), &bom); err != nil {
		t.Fatal(err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 || bom.Metadata.Timestamp != "2024-10-21T12:00:00Z" {
		t.Errorf("spec %v timestamp %q", bom.SpecVersion, bom.Metadata.Timestamp)
	}
	if !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("serialNumber %q", bom.SerialNumber)
	}
	tool := (*bom.Metadata.Tools.Components)[0]
	if tool.Name != "bulkhead" || tool.Version != "1.0.0-test" {
		t.Errorf("tool %+v", tool)
	}
	img := bom.Metadata.Component
	if img.Type != cdx.ComponentTypeContainer || img.Version != "sha256:e831d9a884d63734fe3dd9c491ed9a5a3d4c6a6d32c5b14f2067357c49b0b7e1" {
		t.Errorf("image component %+v", img)
	}
	if want := "pkg:oci/debian@sha256:e831d9a884d63734fe3dd9c491ed9a5a3d4c6a6d32c5b14f2067357c49b0b7e1?arch=amd64&repository_url=docker.io%2Flibrary%2Fdebian&tag=12"; img.PackageURL != want {
		t.Errorf("image purl\n got %s\nwant %s", img.PackageURL, want)
	}
	comps := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		comps[c.Name] = c
	}
	osc := comps["debian"]
	if osc.Type != cdx.ComponentTypeOS || osc.Version != "12" {
		t.Errorf("OS component %+v", osc)
	}
	login := comps["login"]
	if login.BOMRef != login.PackageURL || !strings.Contains(login.PackageURL, "pkg:deb/debian/login@1:4.13%2Bdfsg1-1%2Bb1?") {
		t.Errorf("login ref %q purl %q", login.BOMRef, login.PackageURL)
	}
	if got := (*login.Licenses)[0].Expression; got != "GPL-2.0-or-later AND BSD-3-Clause" {
		t.Errorf("login licence expression %q", got)
	}
	libc := comps["libc6"]
	if libc.Supplier == nil || libc.Supplier.Name != "GNU Libc Maintainers" || (*libc.Supplier.Contact)[0].Email != "debian-glibc@lists.debian.org" {
		t.Errorf("libc6 supplier %+v", libc.Supplier)
	}
	if libc.Publisher != "GNU Libc Maintainers <debian-glibc@lists.debian.org>" {
		t.Errorf("libc6 publisher %q", libc.Publisher)
	}
	if comps["bash"].Supplier != nil {
		t.Errorf("a person maintainer became the supplier: %+v", comps["bash"].Supplier)
	}
	props := map[string]string{}
	for _, p := range *comps["curl"].Properties {
		props[p.Name] = p.Value
	}
	want := map[string]string{
		"bulkhead:package:type":            "deb",
		"bulkhead:package:foundBy":         "dpkg",
		"bulkhead:location:0:path":         "/var/lib/dpkg/status",
		"bulkhead:location:0:layer:index":  "1",
		"bulkhead:location:0:layer:digest": "sha256:7c1d38bc1d7dbf2b4b3b69b4a89a0c52c4ff1a0b3e1ffe5d0f9f1d1b6c2ef5a1",
		"bulkhead:location:0:layer:diffID": "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
		"bulkhead:package:arch":            "amd64",
		"bulkhead:package:sourceName":      "",
		"bulkhead:package:modularityLabel": "",
		"bulkhead:location:1:path":         "", // one location only
	}
	for k, v := range want {
		if props[k] != v {
			t.Errorf("curl property %s = %q, want %q", k, props[k], v)
		}
	}
}

func TestLicenses(t *testing.T) {
	id := func(s string) cdx.LicenseChoice { return cdx.LicenseChoice{License: &cdx.License{ID: s}} }
	name := func(s string) cdx.LicenseChoice { return cdx.LicenseChoice{License: &cdx.License{Name: s}} }
	expr := func(s string) cdx.LicenseChoice { return cdx.LicenseChoice{Expression: s} }
	for _, tc := range []struct {
		in   []string
		want cdx.Licenses
	}{
		{nil, nil},
		{[]string{"", "NOASSERTION", " "}, nil},
		{[]string{"MIT"}, cdx.Licenses{id("MIT")}},
		{[]string{"mit", "apache-2.0"}, cdx.Licenses{id("MIT"), id("Apache-2.0")}},
		{[]string{"GPL-2.0"}, cdx.Licenses{id("GPL-2.0")}}, // deprecated but listed
		{[]string{"GPLv2+"}, cdx.Licenses{name("GPLv2+")}},
		{[]string{"MIT/X11", "Zlib"}, cdx.Licenses{name("MIT/X11"), id("Zlib")}},
		{[]string{"GPL-2.0-or-later AND BSD-3-Clause"}, cdx.Licenses{expr("GPL-2.0-or-later AND BSD-3-Clause")}},
		{[]string{"MPL-2.0 AND MIT", "Apache-2.0"}, cdx.Licenses{expr("(MPL-2.0 AND MIT) AND Apache-2.0")}},
		{[]string{"GPL-3.0-or-later WITH GCC-exception-3.1"}, cdx.Licenses{expr("GPL-3.0-or-later WITH GCC-exception-3.1")}},
		{[]string{"LicenseRef-scancode-public-domain"}, cdx.Licenses{expr("LicenseRef-scancode-public-domain")}},
		// A valid expression beside free text cannot be an expression
		// (CycloneDX forbids mixing): it is kept as a name.
		{[]string{"GPL-2.0-or-later AND BSD-3-Clause", "GPLv2+"}, cdx.Licenses{name("GPL-2.0-or-later AND BSD-3-Clause"), name("GPLv2+")}},
		// On the SPDX list but newer than the CycloneDX 1.6 enum.
		{[]string{"Informatica"}, cdx.Licenses{expr("Informatica")}},
		{[]string{"MIT BSD GPL2+"}, cdx.Licenses{name("MIT BSD GPL2+")}},
	} {
		got := licenses(tc.in, sbom.LicenseCache{})
		var gotv cdx.Licenses
		if got != nil {
			gotv = *got
		}
		if !reflect.DeepEqual(gotv, tc.want) {
			t.Errorf("licenses(%q) = %s, want %s", tc.in, js(gotv), js(tc.want))
		}
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestLicenseIDs keeps the generated table of ids the CycloneDX 1.6 schema
// accepts in license.id in step with the schema.
func TestLicenseIDs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(schemaDir, "spdx.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Enum []string `json:"enum"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	var src bytes.Buffer
	src.WriteString("// Code generated by TestLicenseIDs -update from testdata/schemas/cyclonedx/spdx.schema.json; DO NOT EDIT.\n\npackage cyclonedx\n\n")
	src.WriteString("// cdxLicenseIDs are the SPDX licence and exception ids the CycloneDX 1.6\n// schema accepts in license.id (its spdx.schema.json enum).\nvar cdxLicenseIDs = map[string]bool{\n")
	for _, id := range s.Enum {
		q, _ := json.Marshal(id)
		src.WriteString("\t" + string(q) + ": true,\n")
	}
	src.WriteString("}\n")
	want, err := format.Source(src.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("licenseids.go", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("licenseids.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("licenseids.go is stale: run go test -run TestLicenseIDs -update")
	}
	if len(cdxLicenseIDs) != len(s.Enum) || !cdxLicenseIDs["GPL-2.0-or-later"] {
		t.Errorf("table has %d ids, schema %d", len(cdxLicenseIDs), len(s.Enum))
	}
}

// comparable drops what CycloneDX does not carry back (a layer's
// CreatedBy) and what Decode normalises (licences), so a round trip can be
// compared whole.
func comparable(p inventory.Package) inventory.Package {
	p.Licenses = nil
	locs := make([]inventory.Location, len(p.Locations))
	for i, l := range p.Locations {
		locs[i] = inventory.Location{Path: l.Path}
		if l.Layer != nil {
			locs[i].Layer = &inventory.Layer{Index: l.Layer.Index, Digest: l.Layer.Digest, DiffID: l.Layer.DiffID}
		}
	}
	p.Locations = locs
	return p
}

func TestRoundTrip(t *testing.T) {
	for name, inv := range sbomtest.All() {
		t.Run(name, func(t *testing.T) {
			got, err := Decode(bytes.NewReader(encode(t, inv, fixed())))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Packages) != len(inv.Packages) {
				t.Fatalf("decoded %d packages, encoded %d", len(got.Packages), len(inv.Packages))
			}
			for i := range inv.Packages {
				w, g := comparable(inv.Packages[i]), comparable(got.Packages[i])
				if !reflect.DeepEqual(g, w) {
					t.Errorf("package %d:\n got %s\nwant %s", i, js(g), js(w))
				}
				if meaningful(inv.Packages[i].Licenses) && len(got.Packages[i].Licenses) == 0 {
					t.Errorf("%s: licences %q lost", w.Name, inv.Packages[i].Licenses)
				}
			}
			wantOS := inv.OS
			if !reflect.DeepEqual(got.OS, wantOS) {
				t.Errorf("OS: got %s want %s", js(got.OS), js(wantOS))
			}
			wt := inv.Target
			wt.Labels = nil
			wt.Layers = nil
			for _, l := range inv.Target.Layers {
				wt.Layers = append(wt.Layers, inventory.Layer{Index: l.Index, Digest: l.Digest, DiffID: l.DiffID})
			}
			if !reflect.DeepEqual(got.Target, wt) {
				t.Errorf("target:\n got %s\nwant %s", js(got.Target), js(wt))
			}
			if !reflect.DeepEqual(got.Warnings, inv.Warnings) {
				t.Errorf("warnings %q, want %q", got.Warnings, inv.Warnings)
			}
		})
	}
}

func meaningful(ls []string) bool {
	for _, l := range ls {
		if sbom.ParseLicense(l).Kind != sbom.LicenseNone {
			return true
		}
	}
	return false
}

func TestRoundTripLicenses(t *testing.T) {
	inv := sbomtest.Edge()
	got, err := Decode(bytes.NewReader(encode(t, inv, fixed())))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{
		{"GPL-2.0-or-later"}, {"GPL-2.0-or-later"},
		{"GPLv2+", "MIT/X11", "GPL-2.0-or-later AND BSD-3-Clause"},
		nil,
		{"MIT"},
	} {
		if !reflect.DeepEqual(got.Packages[i].Licenses, want) {
			t.Errorf("%s: licences %q, want %q", got.Packages[i].Name, got.Packages[i].Licenses, want)
		}
	}
	deb, err := Decode(bytes.NewReader(encode(t, sbomtest.Debian(), fixed())))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range deb.Packages {
		if p.Name == "login" && !reflect.DeepEqual(p.Licenses, []string{"GPL-2.0-or-later", "BSD-3-Clause"}) {
			t.Errorf("login licences %q", p.Licenses)
		}
		if p.Name == "ca-certificates" && !reflect.DeepEqual(p.Licenses, []string{"GPL-2.0-or-later", "MPL-2.0"}) {
			t.Errorf("ca-certificates licences %q", p.Licenses)
		}
	}
}

func decodeFile(t *testing.T, path string) *inventory.Inventory {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inv, err := Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return inv
}

func TestDecodeTrivy(t *testing.T) {
	inv := decodeFile(t, "testdata/thirdparty/trivy-centos-7.cdx.json")
	if inv.OS == nil || inv.OS.ID != "centos" || inv.OS.VersionID != "7.6.1810" {
		t.Errorf("OS %+v", inv.OS)
	}
	if inv.Target.Name != "integration/testdata/fixtures/images/centos-7.tar.gz" ||
		inv.Target.ID != "sha256:f1cb7c7d58b73eac859c395882eec49d50651244e342cd6c68a5c7809785f427" {
		t.Errorf("target %+v", inv.Target)
	}
	one := 1
	want := []inventory.Package{
		{
			Name: "bash", Version: "4.2.46-31.el7", Type: "rpm", Arch: "x86_64",
			PURL:       "pkg:rpm/centos/bash@4.2.46-31.el7?arch=x86_64&distro=centos-7.6.1810",
			SourceName: "bash", SourceVersion: "4.2.46-31.el7", Licenses: []string{"GPLv3+"}, FoundBy: FoundBy,
			Locations: []inventory.Location{{Layer: &inventory.Layer{Index: -1,
				Digest: "sha256:ac9208207adaac3a48e54a4dc6b49c69e78c3072d2b3add7efdabf814db2133b",
				DiffID: "sha256:89169d87dbe2b72ba42bfbb3579c957322baca28e03a1e558076542a1c1b2b4a"}}},
		},
		{
			// trivy writes the epoch as a purl qualifier; inventory
			// versions carry it as rpm prints it.
			Name: "openssl-libs", Version: "1:1.0.2k-16.el7", Type: "rpm", Arch: "x86_64", Epoch: &one,
			PURL:       "pkg:rpm/centos/openssl-libs@1.0.2k-16.el7?arch=x86_64&epoch=1&distro=centos-7.6.1810",
			SourceName: "openssl", SourceVersion: "1:1.0.2k-16.el7", Licenses: []string{"OpenSSL"}, FoundBy: FoundBy,
			Locations: []inventory.Location{{Layer: &inventory.Layer{Index: -1,
				Digest: "sha256:ac9208207adaac3a48e54a4dc6b49c69e78c3072d2b3add7efdabf814db2133b",
				DiffID: "sha256:89169d87dbe2b72ba42bfbb3579c957322baca28e03a1e558076542a1c1b2b4a"}}},
		},
	}
	if !reflect.DeepEqual(inv.Packages, want) {
		t.Errorf("packages:\n got %s\nwant %s", js(inv.Packages), js(want))
	}
}

func TestDecodeSyft(t *testing.T) {
	inv := decodeFile(t, "testdata/thirdparty/syft-image.cdx.json")
	if inv.OS == nil || inv.OS.ID != "debian" || inv.OS.VersionID != "1.2.3" || inv.OS.PrettyName != "debian" {
		t.Errorf("OS %+v", inv.OS)
	}
	if len(inv.Packages) != 2 {
		t.Fatalf("got %d packages", len(inv.Packages))
	}
	p1, p2 := inv.Packages[0], inv.Packages[1]
	// "a-purl-1" is not a purl: the package is kept, typed from syft's
	// property, and the problem reported.
	if p1.Name != "package-1" || p1.Version != "1.0.1" || p1.Type != "python" || p1.PURL != "" ||
		p1.FoundBy != "the-cataloger-1" || !reflect.DeepEqual(p1.Licenses, []string{"MIT"}) {
		t.Errorf("package-1 %s", js(p1))
	}
	if len(p1.Locations) != 1 || p1.Locations[0].Path != "/somefile-1.txt" || p1.Locations[0].Layer.DiffID != "sha256:redacted" {
		t.Errorf("package-1 locations %s", js(p1.Locations))
	}
	if p2.Type != inventory.TypeDeb || p2.PURL != "pkg:deb/debian/package-2@2.0.1" || p2.FoundBy != "the-cataloger-2" {
		t.Errorf("package-2 %s", js(p2))
	}
	if len(inv.Warnings) != 1 || !strings.Contains(inv.Warnings[0], "a-purl-1") {
		t.Errorf("warnings %q", inv.Warnings)
	}
}

func TestDecodeThirdParty(t *testing.T) {
	for _, tc := range []struct {
		file     string
		packages int
		check    string // "name version type purl" of one package
	}{
		{"bom-examples-cern-lhc-vdm-editor.json", 43, "puppeteer 1.19.0 npm pkg:npm/puppeteer@1.19.0"},
		{"bom-examples-laravel-7.12.0.bom.1.2.json", 62, "math 0.9.3 composer pkg:composer/brick/math@0.9.3"},
		{"bom-examples-vex-bom.json", 3, ""},
		{"spec-valid-assembly-1.6.json", 2, "acme-library-b 2.0.0  "},
		{"spec-valid-license-expression-1.6.json", 1, "tomcat-catalina 9.0.14 maven pkg:maven/com.acme/tomcat-catalina@9.0.14?packaging=jar"},
		{"spec-valid-component-types-1.6.json", 3, ""},
		{"spec-valid-metadata-tool-1.6.json", 0, ""},
		{"spec-valid-properties-1.6.json", 1, ""},
		{"spec-valid-license-name-1.6.json", 1, ""},
		{"spec-valid-component-identifiers-1.6.json", 1, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			inv := decodeFile(t, filepath.Join("testdata", "thirdparty", tc.file))
			if len(inv.Packages) != tc.packages {
				t.Errorf("got %d packages, want %d", len(inv.Packages), tc.packages)
			}
			if tc.check == "" {
				return
			}
			for _, p := range inv.Packages {
				if strings.Join([]string{p.Name, p.Version, p.Type, p.PURL}, " ") == tc.check {
					return
				}
			}
			t.Errorf("no package %q in %s", tc.check, js(inv.Packages))
		})
	}
	inv := decodeFile(t, "testdata/thirdparty/spec-valid-license-expression-1.6.json")
	if got := inv.Packages[0].Licenses; !reflect.DeepEqual(got, []string{"EPL-2.0 OR GPL-2.0 WITH Classpath-exception-2.0"}) {
		t.Errorf("licences %q", got)
	}
	if got := inv.Packages[0].Maintainer; got != "Acme Inc" {
		t.Errorf("maintainer from publisher %q", got)
	}
}

// TestDecodeCorpus reads every CycloneDX JSON document in the shared corpus
// (bom-examples and the specification's conformance cases) when it is
// present, and checks that no library, application or framework component
// is dropped.
func TestDecodeCorpus(t *testing.T) {
	corpus := sbomtest.CorpusDir()
	if corpus == "" {
		t.Skip("shared corpus not present")
	}
	var files []string
	for _, dir := range []string{"sbom/cyclonedx-bom-examples", "sbom/cyclonedx-spec-testdata"} {
		filepath.WalkDir(filepath.Join(corpus, dir), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") && !strings.Contains(filepath.Base(p), "invalid-") {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) < 100 {
		t.Fatalf("found only %d documents", len(files))
	}
	decoded := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inv, err := Decode(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		decoded++
		if want := countPackages(t, b); len(inv.Packages) != want {
			t.Errorf("%s: decoded %d packages, document has %d package components", f, len(inv.Packages), want)
		}
	}
	t.Logf("decoded %d of %d documents", decoded, len(files))
}

// countPackages counts named library/application/framework components
// independently of the cyclonedx-go types.
func countPackages(t *testing.T, b []byte) int {
	var doc struct {
		Metadata struct {
			Component *struct {
				Components []any `json:"components"`
			} `json:"component"`
		} `json:"metadata"`
		Components []any `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func([]any) int
	walk = func(cs []any) int {
		n := 0
		for _, c := range cs {
			m, _ := c.(map[string]any)
			typ, _ := m["type"].(string)
			name, _ := m["name"].(string)
			switch typ {
			case "library", "application", "framework", "":
				if name != "" {
					n++
				}
			}
			sub, _ := m["components"].([]any)
			n += walk(sub)
		}
		return n
	}
	n := walk(doc.Components)
	if doc.Metadata.Component != nil {
		n += walk(doc.Metadata.Component.Components)
	}
	return n
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "not a JSON document"},
		{"xml", `<?xml version="1.0"?><bom xmlns="http://cyclonedx.org/schema/bom/1.6"/>`, "this is XML"},
		{"spdx", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT"}`, `bomFormat is ""`},
		{"array", `[1,2]`, "not a JSON document"},
		{"bad spec version", `{"bomFormat":"CycloneDX","specVersion":"9.9"}`, "specVersion 9.9 is not supported"},
		{"numeric spec version", `{"bomFormat":"CycloneDX","specVersion":1.6}`, "specVersion 1.6 is not supported"},
		{"bad components", `{"bomFormat":"CycloneDX","specVersion":"1.6","components":{"a":1}}`, "read CycloneDX 1.6 document"},
		{"truncated", `{"bomFormat":"CycloneDX","specVersion":"1.6","components":[`, "not a JSON document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeInfersOSFromPURLs(t *testing.T) {
	doc := `{"bomFormat":"CycloneDX","specVersion":"1.4","components":[
	 {"type":"library","name":"zlib","version":"1.2.11-r3","purl":"pkg:apk/alpine/zlib@1.2.11-r3?arch=x86_64&distro=3.15.0"},
	 {"type":"library","name":"libgcc1","version":"1:8.3.0-6","purl":"pkg:deb/debian/libgcc1@1:8.3.0-6?arch=amd64&upstream=gcc-8&distro=debian-10"}]}`
	inv, err := Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if inv.OS == nil || inv.OS.ID != "alpine" || inv.OS.VersionID != "3.15.0" {
		t.Errorf("OS %+v", inv.OS)
	}
	p := inv.Packages[1]
	if p.Version != "1:8.3.0-6" || p.Epoch == nil || *p.Epoch != 1 || p.SourceName != "gcc-8" || p.Arch != "amd64" {
		t.Errorf("libgcc1 %s", js(p))
	}
}

func TestEncodeNilInventory(t *testing.T) {
	if err := Encode(&bytes.Buffer{}, nil, Options{}); err == nil {
		t.Error("no error for a nil inventory")
	}
}

func TestEncodeUniqueSerial(t *testing.T) {
	a, b := encode(t, sbomtest.Alpine(), Options{}), encode(t, sbomtest.Alpine(), Options{})
	var x, y cdx.BOM
	json.Unmarshal(a, &x)
	json.Unmarshal(b, &y)
	if x.SerialNumber == y.SerialNumber {
		t.Errorf("two documents share serial number %s", x.SerialNumber)
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/thirdparty/*.json")
	golden, _ := filepath.Glob("testdata/golden/*.json")
	for _, p := range append(files, golden...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 64<<10 {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","components":[{"type":"library","name":"a","purl":"pkg:rpm/x/a@1?epoch=2"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever decodes must encode to a schema-shaped document again.
		var out bytes.Buffer
		if err := Encode(&out, inv, Options{}); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := Decode(&out); err != nil {
			t.Fatalf("decode of re-encoded document: %v", err)
		}
	})
}

func BenchmarkEncode10k(b *testing.B) {
	inv := sbomtest.Big(10_000)
	var out bytes.Buffer
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		out.Reset()
		if err := Encode(&out, inv, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(out.Len())/1e6, "MB/doc")
}

func BenchmarkDecode10k(b *testing.B) {
	var doc bytes.Buffer
	if err := Encode(&doc, sbomtest.Big(10_000), Options{}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(doc.Len()))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := Decode(bytes.NewReader(doc.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
