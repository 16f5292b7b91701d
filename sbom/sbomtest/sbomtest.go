// Package sbomtest builds realistic inventories and validates documents
// against the official JSON schemas, for the tests of the SBOM formats and
// the reports.
//
// The package data is taken from real package databases in the shared
// corpus (Debian 12 and Ubuntu dpkg status files, the Alpine 3.20.3
// minirootfs apk database, the Rocky Linux 9 and CentOS 8 rpmdbs), with the
// purls bulkhead's catalogers write.
package sbomtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/package-url/packageurl-go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func intp(n int) *int { return &n }

// purl builds a package URL the way the OS catalogers do.
func purl(typ, ns string, p *inventory.Package, distro, upstream string) string {
	q := map[string]string{}
	if p.Arch != "" {
		q["arch"] = p.Arch
	}
	if distro != "" {
		q["distro"] = distro
	}
	if upstream != "" {
		q["upstream"] = upstream
	}
	v := p.Version
	if typ == inventory.TypeRPM && p.Epoch != nil {
		q["epoch"] = fmt.Sprint(*p.Epoch)
		v = strings.TrimPrefix(v, fmt.Sprint(*p.Epoch)+":")
	}
	return packageurl.NewPackageURL(typ, ns, p.Name, v, packageurl.QualifiersFromMap(q), "").ToString()
}

var debLayers = []inventory.Layer{
	{Index: 0, Digest: "sha256:a2318d6c47ec9cac5acc500c47c79602bcf953cec711a18bc898911a0984365b", DiffID: "sha256:8d853c8add5d1e7b0aafc4b68a3d9fb8e7a0da27970c2acf831fe63be4a0cd2c", CreatedBy: "# debian.sh --arch 'amd64' out/ 'bookworm' '@1729468800'"},
	{Index: 1, Digest: "sha256:7c1d38bc1d7dbf2b4b3b69b4a89a0c52c4ff1a0b3e1ffe5d0f9f1d1b6c2ef5a1", DiffID: "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef", CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends curl ca-certificates # buildkit"},
}

func deb(name, version, arch, src, srcVersion, maint string, layer int, lic ...string) inventory.Package {
	p := inventory.Package{
		Name: name, Version: version, Type: inventory.TypeDeb, Arch: arch,
		SourceName: src, SourceVersion: srcVersion, Licenses: lic, Maintainer: maint,
		FoundBy:   "dpkg",
		Locations: []inventory.Location{{Path: "/var/lib/dpkg/status", Layer: &debLayers[layer]}},
	}
	if i := strings.IndexByte(version, ':'); i > 0 {
		var e int
		fmt.Sscan(version[:i], &e)
		p.Epoch = intp(e)
	}
	up := ""
	if src != "" && src != name {
		up = src
	}
	p.PURL = purl(inventory.TypeDeb, "debian", &p, "debian-12", up)
	return p
}

// Debian is a Debian 12 image pulled from a registry, two layers, with
// licences as dpkg copyright files give them (valid SPDX ids and
// expressions, and Debian's own short names).
func Debian() *inventory.Inventory {
	inv := &inventory.Inventory{
		Target: inventory.Target{
			Name: "docker.io/library/debian:12", Source: "registry",
			Digest:      "sha256:e831d9a884d63734fe3dd9c491ed9a5a3d4c6a6d32c5b14f2067357c49b0b7e1",
			ID:          "sha256:6d2a3e5b8a7d3c5f4cde0b14f94d5a0e44a2f8b07a1f7f5d8b16c1e7d6f1e2a3",
			Arch:        "amd64",
			OSName:      "linux",
			Layers:      debLayers,
			Size:        49_557_601,
			RepoTags:    []string{"debian:12"},
			RepoDigests: []string{"debian@sha256:e831d9a884d63734fe3dd9c491ed9a5a3d4c6a6d32c5b14f2067357c49b0b7e1"},
		},
		OS: &inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm", Name: "Debian GNU/Linux",
			PrettyName: "Debian GNU/Linux 12 (bookworm)", Source: "/etc/os-release"},
		Packages: []inventory.Package{
			deb("base-files", "12.4+deb12u7", "amd64", "", "", "Santiago Vila <sanvila@debian.org>", 0, "GPL-2.0-or-later"),
			deb("bash", "5.2.15-2+b7", "amd64", "bash", "5.2.15-2", "Matthias Klose <doko@debian.org>", 0, "GPL-3.0-or-later"),
			deb("ca-certificates", "20230311", "all", "", "", "Julien Cristau <jcristau@debian.org>", 1, "GPL-2.0-or-later", "MPL-2.0"),
			deb("curl", "7.88.1-10+deb12u7", "amd64", "", "", "Alessandro Ghedini <ghedo@debian.org>", 1, "curl"),
			deb("libc6", "2.36-9+deb12u8", "amd64", "glibc", "2.36-9+deb12u8", "GNU Libc Maintainers <debian-glibc@lists.debian.org>", 0, "LGPL-2.1-or-later", "GPL-2.0-or-later"),
			deb("libgcc-s1", "12.2.0-14", "amd64", "gcc-12", "12.2.0-14", "Debian GCC Maintainers <debian-gcc@lists.debian.org>", 0, "GPL-3.0-or-later WITH GCC-exception-3.1"),
			deb("login", "1:4.13+dfsg1-1+b1", "amd64", "shadow", "1:4.13+dfsg1-1", "Shadow package maintainers <pkg-shadow-devel@lists.alioth.debian.org>", 0, "GPL-2.0-or-later AND BSD-3-Clause"),
			deb("libxext6", "2:1.3.4-1+b1", "amd64", "libxext", "2:1.3.4-1", "Debian X Strike Force <debian-x@lists.debian.org>", 1, "MIT/X11"),
			deb("tzdata", "2024a-0+deb12u1", "all", "", "", "GNU Libc Maintainers <debian-glibc@lists.debian.org>", 0, "public-domain"),
			deb("zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib", "1:1.2.13.dfsg-1", "Mark Brown <broonie@debian.org>", 0, "Zlib"),
		},
	}
	return inv
}

var alpineLayer = inventory.Layer{Index: 0, Digest: "sha256:43c4264eed91be63b206e17d93e75256a6097070ce643c5e8f0379998b44f170", DiffID: "sha256:63ca1fbb43ae5034640e5e6cb3e083e05c290072c5366fcaa9d62435a4cced85", CreatedBy: "ADD alpine-minirootfs-3.20.3-x86_64.tar.gz / # buildkit"}

func apk(name, version, origin, maint string, lic ...string) inventory.Package {
	p := inventory.Package{
		Name: name, Version: version, Type: inventory.TypeAPK, Arch: "x86_64",
		SourceName: origin, Licenses: lic, Maintainer: maint, FoundBy: "apk",
		Locations: []inventory.Location{{Path: "/lib/apk/db/installed", Layer: &alpineLayer}},
	}
	up := ""
	if origin != name {
		up = origin
	}
	p.PURL = purl(inventory.TypeAPK, "alpine", &p, "alpine-3.20.3", up)
	return p
}

// Alpine is the Alpine 3.20.3 minirootfs as a docker-archive, from the real
// apk database (including a maintainer with a non-ASCII name and apk's
// space-separated licence lists).
func Alpine() *inventory.Inventory {
	return &inventory.Inventory{
		Target: inventory.Target{
			Name: "testdata/alpine-3.20.3.tar", Source: "docker-archive",
			Digest:   "sha256:1e42bbe2508154c9126d48c2b8a75420c3544343bf86fd041fb7527e017a4b4a",
			ID:       "sha256:91ef0af61f39ece4d6710e465df5ed6ca12112358344fd51ae6a3b886634148b",
			Arch:     "amd64",
			OSName:   "linux",
			Layers:   []inventory.Layer{alpineLayer},
			RepoTags: []string{"alpine:3.20.3"},
		},
		OS: &inventory.OS{ID: "alpine", VersionID: "3.20.3", Name: "Alpine Linux", PrettyName: "Alpine Linux v3.20", Source: "/etc/os-release"},
		Packages: []inventory.Package{
			apk("alpine-baselayout", "3.6.5-r0", "alpine-baselayout", "Natanael Copa <ncopa@alpinelinux.org>", "GPL-2.0-only"),
			apk("busybox", "1.36.1-r29", "busybox", "Sören Tempel <soeren+alpine@soeren-tempel.net>", "GPL-2.0-only"),
			apk("ca-certificates-bundle", "20240705-r0", "ca-certificates", "Natanael Copa <ncopa@alpinelinux.org>", "MPL-2.0 AND MIT"),
			apk("libcrypto3", "3.3.2-r0", "openssl", "Natanael Copa <ncopa@alpinelinux.org>", "Apache-2.0"),
			apk("musl", "1.2.5-r0", "musl", "Timo Teräs <timo.teras@iki.fi>", "MIT"),
			apk("musl-utils", "1.2.5-r0", "musl", "Timo Teräs <timo.teras@iki.fi>", "MIT BSD GPL2+"),
			apk("scanelf", "1.3.7-r2", "pax-utils", "Natanael Copa <ncopa@alpinelinux.org>", "GPL-2.0-only"),
			apk("ssl_client", "1.36.1-r29", "busybox", "Sören Tempel <soeren+alpine@soeren-tempel.net>", "GPL-2.0-only"),
			apk("zlib", "1.3.1-r1", "zlib", "Natanael Copa <ncopa@alpinelinux.org>", "Zlib"),
		},
	}
}

var rockyLayer = inventory.Layer{Index: 0, Digest: "sha256:4f7d4f6b1e0f4c2f7f7b0f0a1d9f4b7e1e2a9b6c8d7e6f5a4b3c2d1e0f9a8b7c", DiffID: "sha256:9e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e5d6c7b8a9f0e1d"}

func rpm(name string, epoch *int, ver, rel, arch, srpm, lic, modularity string) inventory.Package {
	v := ver + "-" + rel
	if epoch != nil {
		v = fmt.Sprintf("%d:%s", *epoch, v)
	}
	p := inventory.Package{
		Name: name, Version: v, Type: inventory.TypeRPM, Arch: arch, Epoch: epoch, Release: rel,
		Licenses: []string{lic}, Maintainer: "Rocky Enterprise Software Foundation", Modularity: modularity,
		FoundBy:   "rpm",
		Locations: []inventory.Location{{Path: "/var/lib/rpm/rpmdb.sqlite", Layer: &rockyLayer}},
	}
	if srpm != "" {
		nvr := strings.TrimSuffix(srpm, ".src.rpm")
		r := strings.LastIndexByte(nvr, '-')
		vi := strings.LastIndexByte(nvr[:r], '-')
		p.SourceName, p.SourceVersion = nvr[:vi], nvr[vi+1:]
	}
	p.PURL = purl(inventory.TypeRPM, "rocky", &p, "rocky-9.3", srpm)
	return p
}

// Rocky is a Rocky Linux 9 image from an OCI layout, with rpm's
// Fedora-style licence strings ("GPLv3+", "ASL 2.0") that are no SPDX
// expressions, an epoch and a modularity label.
func Rocky() *inventory.Inventory {
	return &inventory.Inventory{
		Target: inventory.Target{
			Name: "oci-layout:/tmp/rocky9", Source: "oci-layout",
			Digest: "sha256:0f3b047f2789547c58634ce88d71c7856999b2afc8b859b7adb5657043984b26",
			Arch:   "arm64", OSName: "linux",
			Layers: []inventory.Layer{rockyLayer},
		},
		OS: &inventory.OS{ID: "rocky", VersionID: "9.3", Name: "Rocky Linux", PrettyName: "Rocky Linux 9.3 (Blue Onyx)",
			IDLike: []string{"rhel", "centos", "fedora"}, Source: "/etc/os-release"},
		Packages: []inventory.Package{
			rpm("bash", nil, "5.1.8", "6.el9_1", "aarch64", "bash-5.1.8-6.el9_1.src.rpm", "GPLv3+", ""),
			rpm("glibc", nil, "2.34", "83.el9.7", "aarch64", "glibc-2.34-83.el9.7.src.rpm", "LGPLv2+ and LGPLv2+ with exceptions and GPLv2+ and GPLv2+ with exceptions and BSD and Inner-Net and ISC and Public Domain and GFDL", ""),
			rpm("ncurses-base", nil, "6.2", "10.20210508.el9", "noarch", "ncurses-6.2-10.20210508.el9.src.rpm", "MIT", ""),
			rpm("openssl-libs", intp(1), "3.0.7", "24.el9", "aarch64", "openssl-3.0.7-24.el9.src.rpm", "ASL 2.0", ""),
			rpm("conmon", intp(2), "2.0.6", "1.module_el8.2.0+305+5e198a41", "x86_64", "conmon-2.0.6-1.module_el8.2.0+305+5e198a41.src.rpm", "ASL 2.0", "container-tools:rhel8:8020020200507003530:0d58ad57"),
			rpm("tzdata", nil, "2023c", "1.el9", "noarch", "tzdata-2023c-1.el9.src.rpm", "Public Domain", ""),
		},
	}
}

// Edge is a directory scan with the awkward cases: no OS, no digest, no
// layers, the same package found twice (one purl, two locations), a package
// with no purl, unicode names, empty and odd licences and maintainers.
func Edge() *inventory.Inventory {
	twin := func(path string) inventory.Package {
		return inventory.Package{
			Name: "base-files", Version: "12.4+deb12u7", Type: inventory.TypeDeb, Arch: "amd64",
			PURL:     "pkg:deb/debian/base-files@12.4%2Bdeb12u7?arch=amd64",
			Licenses: []string{"GPL-2.0-or-later"}, FoundBy: "dpkg-distroless",
			Maintainer: "Santiago Vila <sanvila@debian.org>",
			Locations:  []inventory.Location{{Path: path}},
		}
	}
	return &inventory.Inventory{
		Target: inventory.Target{Name: "/srv/rootfs", Source: "rootfs"},
		Packages: []inventory.Package{
			twin("/var/lib/dpkg/status.d/base"),
			twin("/var/lib/dpkg/status.d/base-files"),
			{
				Name: "naïve-ünïcode-工具", Version: "1.0~rc1-1", Type: inventory.TypeDeb, Arch: "amd64",
				PURL:       "pkg:deb/debian/na%C3%AFve-%C3%BCn%C3%AFcode-%E5%B7%A5%E5%85%B7@1.0~rc1-1?arch=amd64",
				Licenses:   []string{"", "GPLv2+", "MIT/X11", "GPL-2.0-or-later AND BSD-3-Clause"},
				Maintainer: "José Müller (upstream) <jose@example.org>",
				FoundBy:    "dpkg",
				Locations:  []inventory.Location{{Path: "/var/lib/dpkg/status"}},
			},
			{
				Name: "local-tool", Version: "0.1", Type: inventory.TypeRPM,
				Licenses:   []string{"NOASSERTION"},
				Maintainer: "<nobody@example.org>",
				FoundBy:    "rpm",
				Locations:  []inventory.Location{{Path: "/var/lib/rpm/rpmdb.sqlite"}},
			},
			{
				Name: "musl", Version: "1.2.5-r0", Type: inventory.TypeAPK, Arch: "x86_64",
				PURL:      "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64",
				Licenses:  []string{"mit"},
				FoundBy:   "apk",
				Locations: []inventory.Location{{Path: "/lib/apk/db/installed"}},
			},
		},
		Warnings: []string{"rpm: /var/lib/rpm/Packages: unsupported rpmdb format, skipped"},
	}
}

// All returns every fixture inventory by name.
func All() map[string]*inventory.Inventory {
	return map[string]*inventory.Inventory{
		"debian": Debian(),
		"alpine": Alpine(),
		"rocky":  Rocky(),
		"edge":   Edge(),
	}
}

// Big returns an inventory of n packages shaped like a large Debian image,
// for benchmarks.
func Big(n int) *inventory.Inventory {
	inv := Debian()
	base := inv.Packages
	inv.Packages = make([]inventory.Package, 0, n)
	for i := 0; i < n; i++ {
		p := base[i%len(base)]
		p.Name = fmt.Sprintf("%s-%d", p.Name, i)
		up := ""
		if p.SourceName != "" {
			up = p.SourceName
		}
		p.PURL = purl(inventory.TypeDeb, "debian", &p, "debian-12", up)
		inv.Packages = append(inv.Packages, p)
	}
	return inv
}

// Schema compiles a JSON schema from dir (the schema file and the files it
// references by relative $ref). Format assertions are on, so "date-time",
// "iri-reference" and "idn-email" are checked too.
func Schema(t testing.TB, dir, main string, others ...string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	var mainURL string
	for i, f := range append([]string{main}, others...) {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// Register each schema under its $id so relative $refs resolve
		// without network access.
		id, _ := doc.(map[string]any)["$id"].(string)
		if id == "" {
			id = "file:///" + f
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			mainURL = id
		}
	}
	s, err := c.Compile(mainURL)
	if err != nil {
		t.Fatalf("compile %s: %v", main, err)
	}
	return s
}

// Validate checks a JSON document against a compiled schema.
func Validate(s *jsonschema.Schema, doc []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// CorpusDir returns the shared corpus directory (../shared/corpus beside the
// repository) when it exists, walking up from the working directory, or "".
func CorpusDir() string { return testcorpus.Dir() }

// Indent re-indents JSON for readable diffs.
func Indent(b []byte) string {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}
