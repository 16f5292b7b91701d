package sbom

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/sbomtest"
)

func TestParseLicense(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind LicenseKind
		text string
	}{
		{"", LicenseNone, ""},
		{"  ", LicenseNone, ""},
		{"NOASSERTION", LicenseNone, ""},
		{"NONE", LicenseNone, ""},
		{"MIT", LicenseID, "MIT"},
		{"mit", LicenseID, "MIT"},
		{"openssl", LicenseID, "OpenSSL"},
		{" Zlib ", LicenseID, "Zlib"},
		{"GPL-2.0", LicenseID, "GPL-2.0"}, // deprecated, still on the list
		{"GPL-2.0+", LicenseID, "GPL-2.0+"},
		{"GPL-2.0-or-later AND BSD-3-Clause", LicenseExpression, "GPL-2.0-or-later AND BSD-3-Clause"},
		{"ISC AND (BSD-3-Clause OR MIT)", LicenseExpression, "ISC AND (BSD-3-Clause OR MIT)"},
		{"GPL-3.0-or-later WITH GCC-exception-3.1", LicenseExpression, "GPL-3.0-or-later WITH GCC-exception-3.1"},
		{"LicenseRef-Proprietary", LicenseExpression, "LicenseRef-Proprietary"},
		{"GPLv2+", LicenseName, "GPLv2+"},
		{"MIT/X11", LicenseName, "MIT/X11"},
		{"MIT BSD GPL2+", LicenseName, "MIT BSD GPL2+"},
		{"ASL 2.0", LicenseName, "ASL 2.0"},
		{"GPLv2+ and LGPLv2+", LicenseName, "GPLv2+ and LGPLv2+"},
		{"Public-Domain", LicenseName, "Public-Domain"},
		{"MIT AND", LicenseName, "MIT AND"},
		{"(MIT", LicenseName, "(MIT"},
		{"許可", LicenseName, "許可"},
	} {
		got := ParseLicense(tc.in)
		if got.Kind != tc.kind || got.Text != tc.text {
			t.Errorf("ParseLicense(%q) = %+v, want {%v %q}", tc.in, got, tc.kind, tc.text)
		}
	}
}

func TestJoinSplitAnd(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		join string
		flat []string
	}{
		{[]string{"MIT"}, "MIT", []string{"MIT"}},
		{[]string{"MIT", "Zlib"}, "MIT AND Zlib", []string{"MIT", "Zlib"}},
		{[]string{"MIT OR Apache-2.0", "Zlib"}, "(MIT OR Apache-2.0) AND Zlib", []string{"MIT OR Apache-2.0", "Zlib"}},
		{[]string{"A AND B", "C"}, "(A AND B) AND C", []string{"A", "B", "C"}},
		{[]string{"(MIT OR X)", "Y"}, "(MIT OR X) AND Y", []string{"MIT OR X", "Y"}},
		{[]string{"GPL-2.0-only WITH Classpath-exception-2.0", "MIT"}, "GPL-2.0-only WITH Classpath-exception-2.0 AND MIT", []string{"GPL-2.0-only WITH Classpath-exception-2.0", "MIT"}},
		{[]string{"( Apache-2.0 OR MIT ) AND MPL-2.0"}, "( Apache-2.0 OR MIT ) AND MPL-2.0", []string{"Apache-2.0 OR MIT", "MPL-2.0"}},
	} {
		j := JoinAnd(tc.in)
		if j != tc.join {
			t.Errorf("JoinAnd(%q) = %q, want %q", tc.in, j, tc.join)
		}
		if got := SplitAnd(j); !reflect.DeepEqual(got, tc.flat) {
			t.Errorf("SplitAnd(%q) = %q, want %q", j, got, tc.flat)
		}
	}
	for in, want := range map[string][]string{
		"":                 nil,
		"(MIT) AND (Zlib)": {"MIT", "Zlib"},
		"((MIT))":          {"MIT"},
		"MIT AND ":         {"MIT AND"},
		"(MIT AND":         {"(MIT AND"},
		"MIT) AND (Zlib":   {"MIT) AND (Zlib"}, // unbalanced: left whole
		"A OR B AND C":     {"A OR B AND C"},   // AND binds tighter: A OR (B AND C)
		"x AND (y OR (z))": {"x", "y OR (z)"},
	} {
		if got := SplitAnd(in); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitAnd(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseMaintainer(t *testing.T) {
	for _, tc := range []struct {
		typ, in string
		ok      bool
		want    Contact
		spdx    string
	}{
		{"deb", "Matthias Klose <doko@debian.org>", true, Contact{"Matthias Klose", "doko@debian.org", false}, "Person: Matthias Klose (doko@debian.org)"},
		{"deb", "GNU Libc Maintainers <debian-glibc@lists.debian.org>", true, Contact{"GNU Libc Maintainers", "debian-glibc@lists.debian.org", true}, "Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)"},
		{"deb", "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>", true, Contact{"Ubuntu Developers", "ubuntu-devel-discuss@lists.ubuntu.com", true}, "Organization: Ubuntu Developers (ubuntu-devel-discuss@lists.ubuntu.com)"},
		{"apk", "Sören Tempel <soeren+alpine@soeren-tempel.net>", true, Contact{"Sören Tempel", "soeren+alpine@soeren-tempel.net", false}, "Person: Sören Tempel (soeren+alpine@soeren-tempel.net)"},
		{"rpm", "Red Hat, Inc.", true, Contact{"Red Hat, Inc.", "", true}, "Organization: Red Hat, Inc."},
		{"rpm", "CentOS", true, Contact{"CentOS", "", true}, "Organization: CentOS"},
		{"deb", `"Jane Q. Public" <jane@example.org>`, true, Contact{"Jane Q. Public", "jane@example.org", false}, "Person: Jane Q. Public (jane@example.org)"},
		{"deb", "José Müller (upstream) <jose@example.org>", true, Contact{"José Müller (upstream)", "jose@example.org", false}, ""},
		{"deb", "<nobody@example.org>", true, Contact{"", "nobody@example.org", false}, ""},
		{"deb", "", false, Contact{}, ""},
		{"deb", "Broken <not-an-email>", false, Contact{}, ""},
		{"deb", "a@b.c", false, Contact{}, ""},
		{"deb", "Two\nLines <a@b.c>", false, Contact{}, ""},
	} {
		c, ok := ParseMaintainer(&inventory.Package{Type: tc.typ, Maintainer: tc.in})
		if ok != tc.ok || c != tc.want {
			t.Errorf("ParseMaintainer(%q) = %+v %v, want %+v %v", tc.in, c, ok, tc.want, tc.ok)
			continue
		}
		typ, v, sok := c.SPDX()
		got := ""
		if sok {
			got = typ + ": " + v
		}
		if got != tc.spdx {
			t.Errorf("SPDX agent of %q = %q, want %q", tc.in, got, tc.spdx)
		}
	}
}

func TestFromPURL(t *testing.T) {
	one, two := 1, 2
	for _, tc := range []struct {
		in   string
		want inventory.Package
	}{
		{"pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
			inventory.Package{Name: "bash", Version: "5.2.15-2+b7", Type: "deb", Arch: "amd64"}},
		{"pkg:deb/debian/login@1:4.13%2Bdfsg1-1%2Bb1?arch=amd64&distro=debian-12&upstream=shadow",
			inventory.Package{Name: "login", Version: "1:4.13+dfsg1-1+b1", Type: "deb", Arch: "amd64", Epoch: &one, SourceName: "shadow"}},
		{"pkg:deb/debian/libgcc1@8.3.0-6?arch=amd64&epoch=1&upstream=gcc-8%408.3.0-6",
			inventory.Package{Name: "libgcc1", Version: "1:8.3.0-6", Type: "deb", Arch: "amd64", Epoch: &one, SourceName: "gcc-8", SourceVersion: "8.3.0-6"}},
		{"pkg:rpm/rocky/conmon@2.0.6-1.module_el8?arch=x86_64&epoch=2&upstream=conmon-2.0.6-1.module_el8.src.rpm",
			inventory.Package{Name: "conmon", Version: "2:2.0.6-1.module_el8", Type: "rpm", Arch: "x86_64", Epoch: &two, SourceName: "conmon", SourceVersion: "2.0.6-1.module_el8"}},
		{"pkg:rpm/fedora/python3-libs@3.10.0-1.fc35?upstream=python3.10-3.10.0-1.fc35.src.rpm",
			inventory.Package{Name: "python3-libs", Version: "3.10.0-1.fc35", Type: "rpm", SourceName: "python3.10", SourceVersion: "3.10.0-1.fc35"}},
		{"pkg:apk/alpine/ssl_client@1.36.1-r29?arch=x86_64&upstream=busybox&distro=alpine-3.20.3",
			inventory.Package{Name: "ssl_client", Version: "1.36.1-r29", Type: "apk", Arch: "x86_64", SourceName: "busybox"}},
		{"pkg:npm/%40angular/core@16.2.0",
			inventory.Package{Name: "core", Version: "16.2.0", Type: "npm"}},
		{"pkg:rpm/centos/x@1.0-1?epoch=notanumber",
			inventory.Package{Name: "x", Version: "1.0-1", Type: "rpm"}},
	} {
		got, err := FromPURL(tc.in)
		if err != nil {
			t.Errorf("FromPURL(%q): %v", tc.in, err)
			continue
		}
		tc.want.PURL = tc.in
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FromPURL(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a-purl-1", "pkg:", "pkg:deb", "http://example.org/x"} {
		if _, err := FromPURL(bad); err == nil {
			t.Errorf("FromPURL(%q): no error", bad)
		}
	}
}

func TestOSFromPURLs(t *testing.T) {
	pk := func(typ, purl string) inventory.Package { return inventory.Package{Type: typ, PURL: purl} }
	for _, tc := range []struct {
		pkgs []inventory.Package
		want *inventory.OS
	}{
		{nil, nil},
		{[]inventory.Package{pk("npm", "pkg:npm/a@1?distro=debian-12")}, nil},
		{[]inventory.Package{pk("deb", "pkg:deb/debian/a@1"), pk("deb", "pkg:deb/debian/bash@5?distro=debian-12")},
			&inventory.OS{ID: "debian", VersionID: "12", Source: "purl distro qualifier"}},
		{[]inventory.Package{pk("apk", "pkg:apk/alpine/zlib@1?distro=3.15.0")},
			&inventory.OS{ID: "alpine", VersionID: "3.15.0", Source: "purl distro qualifier"}},
		{[]inventory.Package{pk("rpm", "pkg:rpm/redhat/a@1?distro=rhel-9.4")}, nil},
	} {
		if got := OSFromPURLs(tc.pkgs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("OSFromPURLs(%v) = %+v, want %+v", tc.pkgs, got, tc.want)
		}
	}
}

func TestImagePURL(t *testing.T) {
	const d = "sha256:e831d9a884d63734fe3dd9c491ed9a5a3d4c6a6d32c5b14f2067357c49b0b7e1"
	for _, tc := range []struct {
		name string
		t    inventory.Target
		want string
	}{
		{"registry tag", inventory.Target{Name: "debian:12", Source: "registry", Digest: d, Arch: "amd64"},
			"pkg:oci/debian@" + d + "?arch=amd64&repository_url=docker.io%2Flibrary%2Fdebian&tag=12"},
		{"registry no tag", inventory.Target{Name: "ghcr.io/org/team/app", Source: "registry", Digest: d},
			"pkg:oci/app@" + d + "?repository_url=ghcr.io%2Forg%2Fteam%2Fapp"},
		{"archive with repo tag", inventory.Target{Name: "/tmp/alpine.tar", Source: "docker-archive", Digest: d, RepoTags: []string{"alpine:3.20.3"}},
			"pkg:oci/alpine@" + d + "?repository_url=docker.io%2Flibrary%2Falpine&tag=3.20.3"},
		{"repo digest", inventory.Target{Name: "x", Source: "daemon", Digest: d, RepoDigests: []string{"quay.io/prometheus/node-exporter@" + d}},
			"pkg:oci/node-exporter@" + d + "?repository_url=quay.io%2Fprometheus%2Fnode-exporter"},
		{"archive without tags", inventory.Target{Name: "/tmp/img.tar", Source: "docker-archive", Digest: d}, ""},
		{"no digest", inventory.Target{Name: "debian:12", Source: "registry"}, ""},
		{"directory", inventory.Target{Name: "/srv/rootfs", Source: "rootfs"}, ""},
	} {
		if got := ImagePURL(tc.t); got != tc.want {
			t.Errorf("%s: ImagePURL =\n %s\nwant\n %s", tc.name, got, tc.want)
		}
	}
}

func TestReadAllLimit(t *testing.T) {
	if _, err := readAll(strings.NewReader(strings.Repeat("x", 2<<20+1)), "CycloneDX", 2<<20); err == nil || !strings.Contains(err.Error(), "larger than 2 MiB") {
		t.Errorf("oversized document: %v", err)
	}
	if b, err := readAll(strings.NewReader("{}"), "SPDX", 2<<20); err != nil || string(b) != "{}" {
		t.Errorf("small document: %q %v", b, err)
	}
	boom := errors.New("boom")
	if _, err := ReadAll(iotest.ErrReader(boom), "SPDX"); !errors.Is(err, boom) {
		t.Errorf("read error not wrapped: %v", err)
	}
}

func TestOptions(t *testing.T) {
	var o Options
	if o.Version() != "dev" {
		t.Errorf("default version %q", o.Version())
	}
	a, _ := o.UUID()
	b, _ := o.UUID()
	if a == b || a.Version() != 4 {
		t.Errorf("UUIDs %s %s", a, b)
	}
	o.Now = func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 999, time.FixedZone("x", 3600)) }
	if got := o.Time().Format(time.RFC3339Nano); got != "2024-01-02T02:04:05Z" {
		t.Errorf("Time %s", got)
	}
	o.Rand = bytes.NewReader(nil)
	if _, err := o.UUID(); err == nil {
		t.Error("UUID from an empty reader")
	}
}

func TestPackageHashAndUnique(t *testing.T) {
	inv := sbomtest.Edge()
	a, b := PackageHash(&inv.Packages[0]), PackageHash(&inv.Packages[1])
	if a == b || len(a) != 16 || a != PackageHash(&sbomtest.Edge().Packages[0]) {
		t.Errorf("hashes %s %s", a, b)
	}
	seen := map[string]bool{}
	got := []string{Unique(seen, "x", "-"), Unique(seen, "x", "-"), Unique(seen, "x", "-"), Unique(seen, "x-2", "-")}
	if want := []string{"x", "x-2", "x-3", "x-2-2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Unique %q, want %q", got, want)
	}
}

func BenchmarkParseLicense(b *testing.B) {
	in := []string{"MIT", "GPL-2.0-or-later AND BSD-3-Clause", "GPLv2+", "ISC AND (BSD-3-Clause OR MIT)"}
	for i := 0; i < b.N; i++ {
		ParseLicense(in[i%len(in)])
	}
}

func FuzzLicense(f *testing.F) {
	for _, s := range []string{"MIT", "GPL-2.0-or-later AND BSD-3-Clause", "GPLv2+", "(MIT OR X) AND Y", "((A AND B)", "A OR B AND C", "MIT/X11"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := ParseLicense(s)
		if l.Kind != LicenseNone && l.Text == "" {
			t.Fatalf("ParseLicense(%q) = %+v", s, l)
		}
		for _, term := range SplitAnd(s) {
			if term == "" && strings.TrimSpace(s) != "" {
				t.Fatalf("SplitAnd(%q) has an empty term", s)
			}
		}
		if l.Kind == LicenseExpression || l.Kind == LicenseID {
			// Splitting a valid expression and joining it again stays valid.
			j := JoinAnd(SplitAnd(l.Text))
			if k := ParseLicense(j).Kind; k != LicenseExpression && k != LicenseID {
				t.Fatalf("JoinAnd(SplitAnd(%q)) = %q is no longer valid", l.Text, j)
			}
		}
	})
}

func FuzzFromPURL(f *testing.F) {
	for _, s := range []string{
		"pkg:deb/debian/login@1:4.13%2Bdfsg1-1%2Bb1?arch=amd64&distro=debian-12&upstream=shadow",
		"pkg:rpm/rocky/conmon@2.0.6-1?epoch=2&upstream=conmon-2.0.6-1.src.rpm",
		"pkg:apk/alpine/zlib@1.2.11-r3?distro=3.15.0",
		"pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=docker.io/library/debian",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := FromPURL(s)
		if err != nil {
			return
		}
		if p.PURL != s {
			t.Fatalf("PURL %q, want %q", p.PURL, s)
		}
		OSFromPURLs([]inventory.Package{p})
	})
}
