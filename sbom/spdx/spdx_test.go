package spdx

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

var update = flag.Bool("update", false, "rewrite golden files")

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

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The SPDX 2.3 JSON schema leaves most of the grammar to the spec; these
// check it.
var (
	spdxID   = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	agent    = regexp.MustCompile(`^(Person|Organization): [^()]+( \([^()]+\))?$`)
	creator  = regexp.MustCompile(`^(Person|Organization|Tool): \S.*$`)
	licRef   = regexp.MustCompile(`LicenseRef-[A-Za-z0-9.-]+`)
	rfc3339Z = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
)

type document struct {
	SPDXID            string `json:"SPDXID"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Creators []string `json:"creators"`
		Created  string   `json:"created"`
	} `json:"creationInfo"`
	Packages []struct {
		SPDXID           string `json:"SPDXID"`
		Name             string `json:"name"`
		VersionInfo      string `json:"versionInfo"`
		Supplier         string `json:"supplier"`
		LicenseDeclared  string `json:"licenseDeclared"`
		LicenseConcluded string `json:"licenseConcluded"`
		DownloadLocation string `json:"downloadLocation"`
		Purpose          string `json:"primaryPackagePurpose"`
		ExternalRefs     []struct {
			Category string `json:"referenceCategory"`
			Type     string `json:"referenceType"`
			Locator  string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
	Extracted []struct {
		LicenseID     string `json:"licenseId"`
		ExtractedText string `json:"extractedText"`
	} `json:"hasExtractedLicensingInfos"`
	Relationships []struct {
		A    string `json:"spdxElementId"`
		B    string `json:"relatedSpdxElement"`
		Type string `json:"relationshipType"`
	} `json:"relationships"`
}

func TestEncodeValid(t *testing.T) {
	schema := sbomtest.Schema(t, "../testdata/schemas/spdx", "spdx-2.3.schema.json")
	for name, inv := range sbomtest.All() {
		t.Run(name, func(t *testing.T) {
			out := encode(t, inv, Options{ToolVersion: "1.0.0"})
			if err := sbomtest.Validate(schema, out); err != nil {
				t.Fatalf("SPDX 2.3 schema: %v", err)
			}
			checkGrammar(t, out, len(inv.Packages))
			doc, err := spdxjson.Read(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			if err := spdxlib.ValidateDocument(doc); err != nil {
				t.Errorf("spdxlib: %v", err)
			}
		})
	}
}

func checkGrammar(t *testing.T, out []byte, packages int) {
	t.Helper()
	var d document
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(d.DocumentNamespace)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.Contains(d.DocumentNamespace, "#") {
		t.Errorf("documentNamespace %q is not an absolute URI without fragment", d.DocumentNamespace)
	}
	if !rfc3339Z.MatchString(d.CreationInfo.Created) {
		t.Errorf("created %q", d.CreationInfo.Created)
	}
	tool := false
	for _, c := range d.CreationInfo.Creators {
		if !creator.MatchString(c) {
			t.Errorf("creator %q", c)
		}
		tool = tool || c == "Tool: bulkhead-1.0.0"
	}
	if !tool {
		t.Errorf("no bulkhead tool creator in %q", d.CreationInfo.Creators)
	}
	ids := map[string]bool{d.SPDXID: true}
	for _, p := range d.Packages {
		if !spdxID.MatchString(p.SPDXID) || ids[p.SPDXID] {
			t.Errorf("SPDXID %q invalid or not unique", p.SPDXID)
		}
		ids[p.SPDXID] = true
		if p.DownloadLocation != "NOASSERTION" {
			t.Errorf("%s downloadLocation %q", p.Name, p.DownloadLocation)
		}
		if p.Supplier != "" && !agent.MatchString(p.Supplier) {
			t.Errorf("%s supplier %q does not fit the agent grammar", p.Name, p.Supplier)
		}
	}
	defined := map[string]bool{}
	for _, e := range d.Extracted {
		defined[e.LicenseID] = true
		if e.ExtractedText == "" {
			t.Errorf("%s has no extracted text", e.LicenseID)
		}
	}
	used := map[string]bool{}
	for _, p := range d.Packages[1:] {
		if p.Purpose == "OPERATING_SYSTEM" {
			continue
		}
		if p.LicenseConcluded != "NOASSERTION" {
			t.Errorf("%s licenseConcluded %q", p.Name, p.LicenseConcluded)
		}
		if p.LicenseDeclared == "NOASSERTION" {
			continue
		}
		if ok, bad := spdxexp.ValidateLicenses([]string{p.LicenseDeclared}); !ok {
			t.Errorf("%s licenseDeclared %q is not an SPDX expression: %q", p.Name, p.LicenseDeclared, bad)
		}
		for _, r := range licRef.FindAllString(p.LicenseDeclared, -1) {
			used[r] = true
			if !defined[r] {
				t.Errorf("%s uses %s, which hasExtractedLicensingInfos does not define", p.Name, r)
			}
		}
	}
	for r := range defined {
		if !used[r] {
			t.Errorf("%s defined but not used", r)
		}
	}
	describes, contains := 0, 0
	for _, r := range d.Relationships {
		if !ids[r.A] || !ids[r.B] {
			t.Errorf("relationship %s %s %s names a missing element", r.A, r.Type, r.B)
		}
		switch r.Type {
		case "DESCRIBES":
			describes++
			if r.A != "SPDXRef-DOCUMENT" || r.B != d.Packages[0].SPDXID {
				t.Errorf("DESCRIBES %s -> %s", r.A, r.B)
			}
		case "CONTAINS":
			contains++
		}
	}
	if describes != 1 || contains != len(d.Packages)-1 || len(d.Packages) < packages+1 {
		t.Errorf("%d DESCRIBES, %d CONTAINS for %d packages", describes, contains, len(d.Packages))
	}
}

func TestEncodeGolden(t *testing.T) {
	for name, inv := range sbomtest.All() {
		t.Run(name, func(t *testing.T) {
			got := encode(t, inv, fixed())
			path := filepath.Join("testdata", "golden", name+".spdx.json")
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

func TestEncodeDetails(t *testing.T) {
	var d document
	if err := json.Unmarshal(encode(t, sbomtest.Rocky(), fixed()), &d); err != nil {
		t.Fatal(err)
	}
	if want := "https://bulkhead-sec.github.io/spdx/oci-layout/oci-layout-tmp-rocky9-0f3b047f2789-"; !strings.HasPrefix(d.DocumentNamespace, want) {
		t.Errorf("namespace %q, want prefix %q", d.DocumentNamespace, want)
	}
	byName := map[string]int{}
	for i, p := range d.Packages {
		byName[p.Name] = i
	}
	root := d.Packages[0]
	if root.Purpose != "CONTAINER" || root.VersionInfo != "sha256:0f3b047f2789547c58634ce88d71c7856999b2afc8b859b7adb5657043984b26" {
		t.Errorf("root %s", js(root))
	}
	if os := d.Packages[1]; os.Purpose != "OPERATING_SYSTEM" || os.Name != "rocky" || os.VersionInfo != "9.3" {
		t.Errorf("OS package %s", js(os))
	}
	ssl := d.Packages[byName["openssl-libs"]]
	if ssl.VersionInfo != "1:3.0.7-24.el9" || ssl.Supplier != "Organization: Rocky Enterprise Software Foundation" ||
		ssl.LicenseDeclared != "LicenseRef-ASL-2.0" || len(ssl.ExternalRefs) != 1 ||
		ssl.ExternalRefs[0].Locator != "pkg:rpm/rocky/openssl-libs@3.0.7-24.el9?arch=aarch64&distro=rocky-9.3&epoch=1&upstream=openssl-3.0.7-24.el9.src.rpm" ||
		ssl.ExternalRefs[0].Category != "PACKAGE-MANAGER" || ssl.ExternalRefs[0].Type != "purl" {
		t.Errorf("openssl-libs %s", js(ssl))
	}
	if n := len(d.Extracted); n != 4 { // GPLv3+, the glibc list, ASL 2.0, Public Domain
		t.Errorf("%d extracted licences: %s", n, js(d.Extracted))
	}

	if err := json.Unmarshal(encode(t, sbomtest.Debian(), fixed()), &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Packages {
		want := map[string][2]string{
			"login":     {"GPL-2.0-or-later AND BSD-3-Clause", "Organization: Shadow package maintainers (pkg-shadow-devel@lists.alioth.debian.org)"},
			"bash":      {"GPL-3.0-or-later", "Person: Matthias Klose (doko@debian.org)"},
			"libc6":     {"LGPL-2.1-or-later AND GPL-2.0-or-later", "Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"},
			"libgcc-s1": {"GPL-3.0-or-later WITH GCC-exception-3.1", "Organization: Debian GCC Maintainers (debian-gcc@lists.debian.org)"},
			"libxext6":  {"LicenseRef-MIT-X11", "Organization: Debian X Strike Force (debian-x@lists.debian.org)"},
			"tzdata":    {"LicenseRef-public-domain", "Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"},
		}[p.Name]
		if want[0] != "" && (p.LicenseDeclared != want[0] || p.Supplier != want[1]) {
			t.Errorf("%s: licence %q supplier %q, want %q %q", p.Name, p.LicenseDeclared, p.Supplier, want[0], want[1])
		}
	}
}

func TestLicenseRefsUnique(t *testing.T) {
	l := newLicenses()
	a, b, c := l.ref("GPLv2+"), l.ref("GPLv2 +"), l.ref("GPLv2+")
	if a != "LicenseRef-GPLv2-plus" || b != "LicenseRef-GPLv2-plus-2" || c != a || len(l.others) != 2 {
		t.Errorf("refs %q %q %q, %d defined", a, b, c, len(l.others))
	}
	if got := l.declared([]string{"", "NONE"}); got != "NOASSERTION" {
		t.Errorf("declared of nothing = %q", got)
	}
	if got := l.declared([]string{"MIT OR Apache-2.0", "工具许可"}); got != "(MIT OR Apache-2.0) AND LicenseRef-x" {
		t.Errorf("declared = %q", got)
	}
}

// expected is what an SPDX round trip can give back: the identity the purl
// carries, licences as the expression's AND terms, the maintainer when it
// fits the agent grammar. Locations, FoundBy and the rpm release have no
// place in SPDX.
func expected(t *testing.T, p inventory.Package) inventory.Package {
	want := inventory.Package{Name: p.Name, Version: p.Version, Type: p.Type, FoundBy: FoundBy}
	if p.PURL != "" {
		fp, err := sbom.FromPURL(p.PURL)
		if err != nil {
			t.Fatal(err)
		}
		want.PURL, want.Arch, want.Epoch, want.SourceName, want.SourceVersion = p.PURL, fp.Arch, fp.Epoch, fp.SourceName, fp.SourceVersion
	} else {
		want.Type = ""
	}
	for _, l := range p.Licenses {
		pl := sbom.ParseLicense(l)
		switch pl.Kind {
		case sbom.LicenseName:
			want.Licenses = append(want.Licenses, pl.Text)
		case sbom.LicenseID, sbom.LicenseExpression:
			want.Licenses = append(want.Licenses, sbom.SplitAnd(pl.Text)...)
		}
	}
	if ct, ok := sbom.ParseMaintainer(&p); ok {
		if _, _, ok := ct.SPDX(); ok {
			want.Maintainer = strings.TrimSpace(p.Maintainer)
		}
	}
	return want
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
			for i, p := range inv.Packages {
				if want := expected(t, p); !reflect.DeepEqual(got.Packages[i], want) {
					t.Errorf("package %d:\n got %s\nwant %s", i, js(got.Packages[i]), js(want))
				}
				if got.Packages[i].Version != p.Version {
					t.Errorf("%s: version %q, want %q", p.Name, got.Packages[i].Version, p.Version)
				}
			}
			if inv.OS != nil {
				want := &inventory.OS{ID: inv.OS.ID, VersionID: inv.OS.VersionID, PrettyName: inv.OS.PrettyName}
				if !reflect.DeepEqual(got.OS, want) {
					t.Errorf("OS %s, want %s", js(got.OS), js(want))
				}
			} else if got.OS != nil {
				t.Errorf("OS %s from an inventory without one", js(got.OS))
			}
			if got.Target.Name != inv.Target.Name || got.Target.Digest != inv.Target.Digest {
				t.Errorf("target %s", js(got.Target))
			}
		})
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
	// trivy 0.3x: SPDX-2.2, "DESCRIBE", no downloadLocation, versionInfo
	// without the release, the epoch inside the purl version.
	inv := decodeFile(t, "testdata/thirdparty/trivy-centos-7.spdx.json")
	if inv.Target.Name != "integration/testdata/fixtures/images/centos-7.tar.gz" {
		t.Errorf("target %s", js(inv.Target))
	}
	if inv.OS == nil || inv.OS.ID != "centos" || inv.OS.VersionID != "7.6.1810" {
		t.Errorf("OS %s", js(inv.OS))
	}
	one := 1
	want := []inventory.Package{
		{Name: "bash", Version: "4.2.46-31.el7", Type: "rpm", Arch: "x86_64", FoundBy: FoundBy,
			PURL: "pkg:rpm/centos/bash@4.2.46-31.el7?arch=x86_64&distro=centos-7.6.1810", Licenses: []string{"GPLv3+"}},
		{Name: "openssl-libs", Version: "1:1.0.2k-16.el7", Type: "rpm", Arch: "x86_64", Epoch: &one, FoundBy: FoundBy,
			PURL: "pkg:rpm/centos/openssl-libs@1:1.0.2k-16.el7?arch=x86_64&distro=centos-7.6.1810", Licenses: []string{"OpenSSL"}},
	}
	if !reflect.DeepEqual(inv.Packages, want) {
		t.Errorf("packages:\n got %s\nwant %s", js(inv.Packages), js(want))
	}
}

func TestDecodeSyft(t *testing.T) {
	inv := decodeFile(t, "testdata/thirdparty/syft-alpine-3.10.spdx.json")
	if inv.OS == nil || inv.OS.ID != "alpine" || inv.OS.VersionID != "3.10.9" {
		t.Errorf("OS from purl distro qualifiers: %s", js(inv.OS))
	}
	want := []string{
		"busybox 1.30.1-r5 apk x86_64  [GPL-2.0] Natanael Copa <ncopa@alpinelinux.org>",
		"libssl1.1 1.1.1k-r0 apk x86_64  [OpenSSL] Timo Teras <timo.teras@iki.fi>",
		"ssl_client 1.30.1-r5 apk x86_64 busybox [GPL-2.0] Natanael Copa <ncopa@alpinelinux.org>",
	}
	var got []string
	for _, p := range inv.Packages {
		got = append(got, strings.Join([]string{p.Name, p.Version, p.Type, p.Arch, p.SourceName, "[" + strings.Join(p.Licenses, ",") + "]", p.Maintainer}, " "))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeSpecExample(t *testing.T) {
	inv := decodeFile(t, "testdata/thirdparty/spdx-spec-example-v2.3.spdx.json")
	var got []string
	for _, p := range inv.Packages {
		got = append(got, p.Name+"|"+p.Version+"|"+p.Type+"|"+strings.Join(p.Licenses, ",")+"|"+p.Maintainer)
	}
	want := []string{
		// The described package is a real package here, not an image; its
		// LicenseRef-3 resolves to the extracted licence's name.
		"glibc|2.11.1||LGPL-2.0-only,CyberNeko License|Jane Doe <jane.doe@example.com>",
		"Apache Commons Lang||||",
		"Jena|3.12.0|maven||",
		"Saxon|8.8||MPL-1.0|",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDecodeCorpus(t *testing.T) {
	corpus := sbomtest.CorpusDir()
	if corpus == "" {
		t.Skip("shared corpus not present")
	}
	inv := decodeFile(t, filepath.Join(corpus, "sbom", "SPDXJSONExample-v2.3.spdx.json"))
	if len(inv.Packages) != 4 {
		t.Errorf("%d packages", len(inv.Packages))
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "not a JSON document"},
		{"tag-value", "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "convert tag-value"},
		{"cyclonedx", `{"bomFormat":"CycloneDX","specVersion":"1.6"}`, "no spdxVersion"},
		{"spdx3", `{"@context":"https://spdx.org/rdf/3.0.1/spdx-context.jsonld","@graph":[]}`, "SPDX 3"},
		{"unsupported version", `{"spdxVersion":"SPDX-9.9"}`, "unsupported"},
		{"bad id", `{"spdxVersion":"SPDX-2.3","SPDXID":"DOCUMENT"}`, "read SPDX document"},
		{"bad packages", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","packages":{}}`, "read SPDX document"},
		// tools-golang panics on null entries; Decode must return an error.
		{"null package 2.2", `{"spdxVersion":"SPDX-2.2","SPDXID":"SPDXRef-DOCUMENT","packages":[null]}`, "malformed document"},
		{"null package 2.3", `{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","packages":[null]}`, "malformed document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEncodeNilInventory(t *testing.T) {
	if err := Encode(&bytes.Buffer{}, nil, Options{}); err == nil {
		t.Error("no error for a nil inventory")
	}
}

func TestIDString(t *testing.T) {
	for in, want := range map[string]string{
		"deb-bash":             "deb-bash",
		"apk-ssl_client":       "apk-ssl-client",
		"naïve  工具":            "na-ve",
		"":                     "x",
		"docker.io/library:12": "docker.io-library-12",
	} {
		if got := idString(in); got != want {
			t.Errorf("idString(%q) = %q, want %q", in, got, want)
		}
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
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := Encode(&out, inv, Options{}); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := Decode(&out); err != nil {
			t.Fatalf("decode of re-encoded document: %v\n%s", err, out.Bytes())
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
