package apk

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

func parseFile(t testing.TB, path string) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := Parse(context.Background(), f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return pkgs
}

func find(pkgs []inventory.Package, name string) *inventory.Package {
	for i := range pkgs {
		if pkgs[i].Name == name {
			return &pkgs[i]
		}
	}
	return nil
}

func nameVersions(pkgs []inventory.Package) []string {
	inv := inventory.Inventory{Packages: pkgs}
	return inv.NameVersions(inventory.TypeAPK)
}

// The expectations below were read off the fixture files with grep and awk,
// not taken from the parser.
func TestParseFixtures(t *testing.T) {
	tests := []struct {
		file  string
		count int
		spot  []inventory.Package
	}{
		{"alpine-minirootfs-20240923_installed", 14, []inventory.Package{
			{Name: "ca-certificates-bundle", Version: "20240705-r0", Arch: "x86_64", SourceName: "ca-certificates", Licenses: []string{"MPL-2.0", "MIT"}},
		}},
		{"alpine-minirootfs-3.12.12_installed", 14, []inventory.Package{
			{Name: "ssl_client", Version: "1.31.1-r22", Arch: "x86_64", SourceName: "busybox", Licenses: []string{"GPL-2.0-only"}, Maintainer: "Natanael Copa <ncopa@alpinelinux.org>"},
			{Name: "ca-certificates-bundle", Version: "20211220-r0", Arch: "x86_64", SourceName: "ca-certificates", Licenses: []string{"MPL-2.0", "GPL-2.0-or-later"}},
			{Name: "musl-utils", Version: "1.1.24-r10", Arch: "x86_64", SourceName: "musl", Licenses: []string{"MIT", "BSD", "GPL2+"}},
			{Name: "libc-utils", Version: "0.7.2-r3", Arch: "x86_64", SourceName: "libc-dev", Licenses: []string{"BSD-2-Clause", "BSD-3-Clause"}},
		}},
		{"alpine-minirootfs-3.14.10_installed", 14, []inventory.Package{
			{Name: "libretls", Version: "3.3.3p1-r3", Arch: "x86_64", SourceName: "libretls", Licenses: []string{"ISC AND (BSD-3-Clause OR MIT)"}},
		}},
		{"alpine-minirootfs-3.16.9_installed", 14, nil},
		{"alpine-minirootfs-3.18.9_installed", 15, []inventory.Package{
			{Name: "ca-certificates-bundle", Version: "20240226-r0", Arch: "x86_64", SourceName: "ca-certificates", Licenses: []string{"MPL-2.0", "MIT"}},
		}},
		{"alpine-minirootfs-3.20.3_installed", 14, []inventory.Package{
			{Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", SourceName: "musl", Licenses: []string{"MIT"}, Maintainer: "Natanael Copa <ncopa@alpinelinux.org>"},
			{Name: "libcrypto3", Version: "3.3.2-r0", Arch: "x86_64", SourceName: "openssl", Licenses: []string{"Apache-2.0"}, Maintainer: "Natanael Copa <ncopa@alpinelinux.org>"},
		}},
		{"scalibr_installed", 15, []inventory.Package{
			{Name: "alpine-keys", Version: "2.4-r1", Arch: "x86_64", SourceName: "alpine-keys", Licenses: []string{"MIT"}, Maintainer: "Natanael Copa <ncopa@alpinelinux.org>"},
		}},
		{"syft_multiple-2_installed", 14, []inventory.Package{
			{Name: "libc-utils", Version: "", SourceName: "libc-dev"}, // version checked below
		}},
		// 16 P: lines, one of them (invalidPackageWithoutAVersion) without V:.
		{"trivy_installed", 15, []inventory.Package{
			{Name: "musl", Version: "1.1.14-r10", Arch: "x86_64", SourceName: "musl", Licenses: []string{"MIT"}, Maintainer: "Timo Teräs <timo.teras@iki.fi>"},
			{Name: "ada-libs", Version: "2.7.4-r0", Arch: "x86_64", SourceName: "ada", Licenses: []string{"(Apache-2.0 OR MIT) AND MPL-2.0"}, Maintainer: "Jakub Jirutka <jakub@jirutka.cz>"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := parseFile(t, filepath.Join("testdata", tt.file))
			if len(pkgs) != tt.count {
				t.Errorf("got %d packages, want %d", len(pkgs), tt.count)
			}
			for _, p := range pkgs {
				if p.Type != inventory.TypeAPK || p.Name == "" || p.Version == "" || p.SourceVersion != p.Version {
					t.Errorf("bad package %+v", p)
				}
			}
			if find(pkgs, "invalidPackageWithoutAVersion") != nil {
				t.Error("a record without a version became a package")
			}
			for _, want := range tt.spot {
				got := find(pkgs, want.Name)
				if got == nil {
					t.Errorf("%s not found", want.Name)
					continue
				}
				if want.Version == "" {
					want.Version = got.Version
				}
				want.Type, want.SourceVersion = inventory.TypeAPK, want.Version
				if want.Arch == "" {
					want.Arch = got.Arch
				}
				if want.Licenses == nil {
					want.Licenses = got.Licenses
				}
				if want.Maintainer == "" {
					want.Maintainer = got.Maintainer
				}
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("got  %+v\nwant %+v", *got, want)
				}
			}
		})
	}
}

// awkNameVersions lists "name version" of every record with both P: and V:,
// using awk's paragraph mode: an implementation that shares nothing with
// Parse.
func awkNameVersions(t *testing.T, path string) []string {
	t.Helper()
	awk, err := exec.LookPath("awk")
	if err != nil {
		t.Skip("awk not installed")
	}
	prog := `BEGIN { RS = ""; FS = "\n" }
{ p = ""; v = ""
  for (i = 1; i <= NF; i++) { sub(/\r$/, "", $i); if ($i ~ /^P:/) p = substr($i, 3); if ($i ~ /^V:/) v = substr($i, 3) }
  if (p != "" && v != "") print p " " v }`
	out, err := exec.Command(awk, prog, path).Output()
	if err != nil {
		t.Fatalf("awk: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return lines
}

func TestParseMatchesAwk(t *testing.T) {
	files, _ := filepath.Glob("testdata/*_installed")
	if dir := testcorpus.Dir(); dir != "" {
		more, _ := filepath.Glob(filepath.Join(dir, "pkgdb", "apk", "*_installed"))
		files = append(files, more...)
	}
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			want := awkNameVersions(t, f)
			got := nameVersions(parseFile(t, f))
			if !slices.Equal(got, want) {
				t.Errorf("parser and awk disagree:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestParseOddInput(t *testing.T) {
	base, err := os.ReadFile("testdata/alpine-minirootfs-3.20.3_installed")
	if err != nil {
		t.Fatal(err)
	}
	want := nameVersions(parseBytes(t, base))
	crlf := bytes.ReplaceAll(base, []byte("\n"), []byte("\r\n"))
	noTrailing := bytes.TrimRight(base, "\n")
	// Every blank line lost: records must still split at each P:.
	noBlank := bytes.ReplaceAll(base, []byte("\n\n"), []byte("\n"))
	long := append([]byte("F:"+strings.Repeat("x", MaxLine+10)+"\n"), base...)
	longLast := append(append([]byte{}, base...), []byte("\nP:huge\nV:"+strings.Repeat("9", MaxLine+10))...)
	for name, in := range map[string][]byte{
		"crlf": crlf, "no trailing newline": noTrailing, "no blank lines": noBlank,
		"over-long line skipped": long, "over-long last line": longLast,
	} {
		t.Run(name, func(t *testing.T) {
			pkgs, err := Parse(context.Background(), bytes.NewReader(in))
			var pe *catalog.PartialError
			if strings.Contains(name, "over-long") {
				// Skipped, and said to be.
				if !errors.As(err, &pe) || !strings.Contains(err.Error(), "1 lines longer than") {
					t.Errorf("got %v, want a PartialError about the long line", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := nameVersions(pkgs); !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}

	for name, tc := range map[string]struct {
		in   string
		want []string
	}{
		"empty":           {"", nil},
		"blank lines":     {"\n\n\r\n  \n", nil},
		"no P":            {"V:1.0-r0\nA:x86_64\n\n", nil},
		"no V":            {"P:foo\nA:x86_64\n\nP:bar\nV:2-r0\n", []string{"bar 2-r0"}},
		"garbage":         {"\x00\x01\xff:\n::::\nPV\nP\n", nil},
		"empty P":         {"P:\nV:1\n", nil},
		"spaces trimmed":  {"P: foo \nV: 1.0-r1 \r\n", []string{"foo 1.0-r1"}},
		"key not 1 char":  {"PP:foo\nP:bar\nV:1\n", []string{"bar 1"}},
		"repeated fields": {"P:a\nV:1\nV:2\n", []string{"a 2"}},
	} {
		t.Run(name, func(t *testing.T) {
			got := nameVersions(parseBytes(t, []byte(tc.in)))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func parseBytes(t testing.TB, b []byte) []inventory.Package {
	t.Helper()
	pkgs, err := Parse(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return pkgs
}

// tinyDB is an apk database of n one-line packages, the shape of the hostile
// database (a million of these is 15 MB and compresses to 2.5 MB).
func tinyDB(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "P:p%d\nV:1\n\n", i)
	}
	return b.Bytes()
}

// TestParseTooManyPackages: a database over the limit is rejected whole with
// a TooManyPackagesError, reading stops there, and through the Collector the
// rejection is a warning naming the file, with no package kept.
func TestParseTooManyPackages(t *testing.T) {
	const limit = 1000
	db := tinyDB(limit)
	pkgs, err := ParseLimit(context.Background(), bytes.NewReader(db), limit)
	if err != nil || len(pkgs) != limit {
		t.Fatalf("at the limit: %d packages, %v", len(pkgs), err)
	}
	over := append(bytes.Clone(db), tinyDB(2)...)
	r := bytes.NewReader(over)
	_, err = ParseLimit(context.Background(), r, limit)
	var tm *catalog.TooManyPackagesError
	if !errors.As(err, &tm) || tm.Limit != limit {
		t.Fatalf("over the limit: got %v, want a TooManyPackagesError at %d", err, limit)
	}
	// Reading stopped at the first package past the limit (one 64 KiB
	// buffer of read-ahead at most).
	if r.Len() == 0 && len(over) > 70<<10 {
		t.Errorf("read the whole input after the limit was reached")
	}
	if _, err := Parse(context.Background(), bytes.NewReader(over)); err != nil {
		t.Errorf("default limit (%d) on %d packages: %v", catalog.DefaultMaxPackages, limit+2, err)
	}

	layer := layerOf(t, map[string][]byte{"lib/apk/db/installed": over})
	col := catalog.NewCollector(context.Background(), []catalog.Cataloger{&Cataloger{MaxPackages: limit}}, []inventory.Layer{{Index: 0}}, t.TempDir())
	if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if n := len(col.Packages()); n != 0 {
		t.Errorf("%d packages kept from a rejected database", n)
	}
	w := col.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "/lib/apk/db/installed") || !strings.Contains(w[0], "more than 1000 packages") {
		t.Errorf("warnings %q, want one naming the file and the limit", w)
	}
}

// layerOf is a one-layer tar of regular files.
func layerOf(t testing.TB, files map[string][]byte) walk.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	tw.Close()
	data := buf.Bytes()
	return walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// TestMemoryPerPackage measures what the Collector keeps per package of a
// large apk database once Finish is done: the package list and nothing else
// (the parsed instances, a Location slice and a Layer copy per package were
// kept before, about 900 bytes a package, on top of the 240-byte Package).
func TestMemoryPerPackage(t *testing.T) {
	const n = 50_000
	db := tinyDB(n)
	layer := layerOf(t, map[string][]byte{"lib/apk/db/installed": db})
	ctx := context.Background()
	tmp := t.TempDir()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	col := catalog.NewCollector(ctx, []catalog.Cataloger{New()}, []inventory.Layer{{Index: 0, Digest: "sha256:" + strings.Repeat("a", 64)}}, tmp)
	if _, err := walk.Walk(ctx, []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: tmp, Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	pkgs := col.Packages()
	if len(pkgs) != n || len(col.Warnings()) != 0 {
		t.Fatalf("%d packages, warnings %q", len(pkgs), col.Warnings())
	}
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	size := int64(unsafe.Sizeof(inventory.Package{}))
	t.Logf("%d bytes retained per package (inventory.Package is %d bytes)", per, size)
	// The Package, its name, its one Location: 240 + 8 + 24 on amd64.
	if bound := size + 64; per > bound {
		t.Errorf("%d bytes retained per package, want at most %d", per, bound)
	}
	runtime.KeepAlive(col)
}

func TestParseCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := strings.Repeat("P:a\nV:1\n\n", 10000)
	if _, err := Parse(ctx, strings.NewReader(in)); err == nil {
		t.Fatal("no error from a cancelled context")
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseReadError(t *testing.T) {
	_, err := (&Cataloger{}).Parse(context.Background(), catalog.Input{Path: "/lib/apk/db/installed", Reader: failReader{}})
	if err == nil || !strings.Contains(err.Error(), "/lib/apk/db/installed") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
}

func TestSplitLicense(t *testing.T) {
	for in, want := range map[string][]string{
		"":                nil,
		"MIT":             {"MIT"},
		"MPL-2.0 AND MIT": {"MPL-2.0", "MIT"},
		"MIT AND BSD-2-Clause AND GPL-2.0-or-later":     {"MIT", "BSD-2-Clause", "GPL-2.0-or-later"},
		"ISC AND (BSD-3-Clause OR MIT)":                 {"ISC AND (BSD-3-Clause OR MIT)"},
		"( Apache-2.0 OR MIT ) AND MPL-2.0":             {"(Apache-2.0 OR MIT) AND MPL-2.0"},
		"GPL-2.0-or-later WITH Classpath-exception-2.0": {"GPL-2.0-or-later WITH Classpath-exception-2.0"},
		"MIT BSD GPL2+":            {"MIT", "BSD", "GPL2+"},
		"MPL-2.0 GPL-2.0-or-later": {"MPL-2.0", "GPL-2.0-or-later"},
		"GPL2":                     {"GPL2"},
		"Public-Domain":            {"Public-Domain"},
		"custom AND":               {"custom"},
	} {
		if got := SplitLicense(in); !slices.Equal(got, want) {
			t.Errorf("SplitLicense(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSplitLicenseLong guards the bound on SPDX validation, whose cost
// grows with the square of the expression: an 800 kB field took minutes
// before it.
func TestSplitLicenseLong(t *testing.T) {
	start := time.Now()
	got := SplitLicense(strings.Repeat("MIT AND ", 100000) + "MIT")
	if len(got) != 100001 {
		t.Errorf("got %d licences, want 100001", len(got))
	}
	in := strings.Repeat("P:a\nV:1\nL:"+strings.Repeat("Apache-2.0 AND ", 30)+"MIT\n\n", 2)
	for i := range 5000 {
		in += "P:p\nV:1\nL:MIT AND BSD-" + strconv.Itoa(i) + "\n\n"
	}
	pkgs := parseBytes(t, []byte(in))
	if len(pkgs) != 5002 || !slices.Equal(pkgs[5001].Licenses, []string{"MIT", "BSD-4999"}) {
		t.Errorf("got %d packages, last %+v", len(pkgs), pkgs[len(pkgs)-1])
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestPURL(t *testing.T) {
	libcrypto := &inventory.Package{Name: "libcrypto3", Version: "3.3.2-r0", Arch: "x86_64", SourceName: "openssl", SourceVersion: "3.3.2-r0"}
	musl := &inventory.Package{Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", SourceName: "musl", SourceVersion: "1.2.5-r0"}
	tests := []struct {
		p    *inventory.Package
		os   *inventory.OS
		want string
	}{
		{libcrypto, &inventory.OS{ID: "alpine", VersionID: "3.20.3"}, "pkg:apk/alpine/libcrypto3@3.3.2-r0?arch=x86_64&distro=alpine-3.20.3&upstream=openssl"},
		{musl, &inventory.OS{ID: "alpine", VersionID: "3.20.3"}, "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"},
		{musl, &inventory.OS{ID: "wolfi", VersionID: "20230201"}, "pkg:apk/wolfi/musl@1.2.5-r0?arch=x86_64&distro=wolfi-20230201"},
		{musl, &inventory.OS{ID: "chainguard"}, "pkg:apk/chainguard/musl@1.2.5-r0?arch=x86_64&distro=chainguard"},
		{musl, nil, "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64"},
		{&inventory.Package{Name: "py3-foo", Version: "1.0+git-r0"}, nil, "pkg:apk/alpine/py3-foo@1.0%2Bgit-r0"},
	}
	for _, tt := range tests {
		if got := (&Cataloger{}).PURL(tt.p, tt.os); got != tt.want {
			t.Errorf("PURL(%s, %+v) = %s, want %s", tt.p.Name, tt.os, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	c := New()
	for p, want := range map[string]bool{
		"lib/apk/db/installed":      true,
		"usr/lib/apk/db/installed":  true,
		"lib/apk/db/installed.bak":  false,
		"lib/apk/db/lock":           false,
		"x/lib/apk/db/installed":    false,
		"/lib/apk/db/installed":     false, // paths come cleaned, without a slash
		"var/lib/apk/db/installedx": false,
	} {
		if got := c.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestCollectorOverRootfs runs the cataloger in the streaming walk over the
// real Alpine minirootfs tarballs of the corpus, and checks the packages
// against awk's reading of the database extracted from the same tarball.
func TestCollectorOverRootfs(t *testing.T) {
	dir := testcorpus.Dir()
	if dir == "" {
		t.Skip("shared corpus not found")
	}
	tarballs, _ := filepath.Glob(filepath.Join(dir, "rootfs", "alpine", "*.tar.gz"))
	if len(tarballs) == 0 {
		t.Skip("no Alpine rootfs in the corpus")
	}
	for _, tb := range tarballs {
		t.Run(filepath.Base(tb), func(t *testing.T) {
			want := awkNameVersions(t, extract(t, tb, "lib/apk/db/installed"))
			layer := walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
				f, err := os.Open(tb)
				if err != nil {
					return nil, err
				}
				zr, err := gzip.NewReader(f)
				if err != nil {
					f.Close()
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{zr, f}, nil
			}}
			col := catalog.NewCollector(context.Background(), []catalog.Cataloger{New()}, []inventory.Layer{{Index: 0}}, t.TempDir())
			if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			if w := col.Warnings(); len(w) > 0 {
				t.Errorf("warnings: %q", w)
			}
			got := nameVersions(col.Packages())
			if !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
			for _, p := range col.Packages() {
				if p.FoundBy != "apk" || len(p.Locations) == 0 || p.Locations[0].Path != "/lib/apk/db/installed" {
					t.Errorf("bad provenance: %+v", p)
				}
			}
		})
	}
}

// extract copies one file out of a gzip tarball into a temp file, with the
// standard library only.
func extract(t *testing.T, tarball, name string) string {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s: %v", name, tarball, err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			out := filepath.Join(t.TempDir(), "installed")
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return out
		}
	}
}

// BenchmarkParseScale parses databases of tiny packages at the scale of the
// limit, through the Collector as a scan does; bytes/op is the allocation
// per database.
func BenchmarkParseScale(b *testing.B) {
	for _, n := range []int{10_000, catalog.DefaultMaxPackages} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			db := tinyDB(n)
			layer := layerOf(b, map[string][]byte{"lib/apk/db/installed": db})
			tmp := b.TempDir()
			b.SetBytes(int64(len(db)))
			b.ReportAllocs()
			for b.Loop() {
				col := catalog.NewCollector(context.Background(), []catalog.Cataloger{New()}, []inventory.Layer{{Index: 0}}, tmp)
				if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: tmp, Jobs: 1}); err != nil {
					b.Fatal(err)
				}
				if len(col.Packages()) != n {
					b.Fatalf("%d packages", len(col.Packages()))
				}
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/alpine-minirootfs-3.18.9_installed")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(context.Background(), bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
