package dpkg

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

func parseFile(t testing.TB, path string, statusD bool) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parse := ParseStatus
	if statusD {
		parse = ParseStatusD
	}
	pkgs, err := parse(context.Background(), f)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
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

func intp(i int) *int { return &i }

// The expectations below were read off the fixture files with grep and awk
// (and agree with dpkg-query where it accepts the file), not taken from the
// parser.
func TestParseFixtures(t *testing.T) {
	ubuntuDevs := "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>"
	tests := []struct {
		file    string
		statusD bool
		count   int
		spot    []inventory.Package
		absent  []string
	}{
		{file: "claircore_debian-only.status", count: 1, spot: []inventory.Package{
			{Name: "debian-archive-keyring", Version: "2019.1", Arch: "all", SourceName: "debian-archive-keyring", SourceVersion: "2019.1", Maintainer: "Debian Release Team <packages@release.debian.org>"},
		}},
		{file: "claircore_postgresql.status", count: 3, spot: []inventory.Package{
			{Name: "postgresql-client", Version: "11+200+deb10u5", Arch: "all", SourceName: "postgresql-common", SourceVersion: "200+deb10u5", Maintainer: "Debian PostgreSQL Maintainers <team+postgresql@tracker.debian.org>"},
		}},
		{file: "claircore_texlive.status", count: 357, spot: []inventory.Package{
			{Name: "cpp", Version: "4:7.4.0-1ubuntu2.3", Epoch: intp(4), Arch: "amd64", SourceName: "gcc-defaults", SourceVersion: "1.176ubuntu2.3", Maintainer: ubuntuDevs},
			{Name: "bsdutils", Version: "1:2.31.1-0.4ubuntu3.6", Epoch: intp(1), Arch: "amd64", SourceName: "util-linux", SourceVersion: "2.31.1-0.4ubuntu3.6", Maintainer: ubuntuDevs},
			{Name: "zlib1g", Version: "1:1.2.11.dfsg-0ubuntu2", Epoch: intp(1), Arch: "amd64", SourceName: "zlib", SourceVersion: "1:1.2.11.dfsg-0ubuntu2", Maintainer: ubuntuDevs},
		}},
		// vcpkg's status file borrows dpkg's format; its "Feature:" stanzas
		// have no Version and are not packages. libffi is there for two
		// architectures.
		{file: "claircore_vcpkg.status", count: 15, spot: []inventory.Package{
			{Name: "zlib", Version: "1.2.11-6", Arch: "x64-windows", SourceName: "zlib", SourceVersion: "1.2.11-6"},
		}},
		{file: "scalibr_opkg_valid_status", count: 3, spot: []inventory.Package{
			{Name: "busybox", Version: "1.36.1-r2", Arch: "x86_64", SourceName: "busybox", SourceVersion: "1.36.1-r2"},
		}},
		{file: "scalibr_valid_status", count: 7, spot: []inventory.Package{
			{Name: "attr", Version: "1:2.5.1-4", Epoch: intp(1)},
			{Name: "util-linux-extra", Version: "2.38.1-5+b1", SourceName: "util-linux", SourceVersion: "2.38.1-5"},
		}},
		// 91 stanzas, git is "deinstall ok config-files".
		{file: "trivy_valid_status", count: 90, absent: []string{"git"}, spot: []inventory.Package{
			{Name: "libattr1", Version: "1:2.4.47-2build1", Epoch: intp(1), Arch: "amd64", SourceName: "attr", SourceVersion: "1:2.4.47-2build1", Maintainer: ubuntuDevs},
			{Name: "bsdutils", Version: "1:2.31.1-0.4ubuntu3.1", Epoch: intp(1), Arch: "amd64", SourceName: "util-linux", SourceVersion: "2.31.1-0.4ubuntu3.1", Maintainer: ubuntuDevs},
		}},
		{file: "syft_distroless_status.d/coreutils-relationships", statusD: true, count: 9, spot: []inventory.Package{
			{Name: "libgmp10", Version: "2:6.2.1+dfsg1-1.1", Epoch: intp(2)},
		}},
		{file: "syft_distroless_status.d/deinstall", statusD: true, count: 1, absent: []string{"linux-image-6.8.0-1029-aws"}, spot: []inventory.Package{
			{Name: "linux-image-6.14.0-1012-aws", Version: "6.14.0-1012.12~24.04.1"},
		}},
		// No Status anywhere (distroless style); stanzas without a Version
		// are references, not packages.
		{file: "syft_distroless_status.d/doc-examples", statusD: true, count: 5, absent: []string{"made-up-package-5", "foo", "libc6"}, spot: []inventory.Package{
			{Name: "made-up-package-1", Version: "1.0.0", SourceName: "glibc", SourceVersion: "1.0.0"},
			{Name: "mutt", Version: "1.3.17-1", SourceName: "mutt", SourceVersion: "1.3.17-1"},
		}},
		{file: "syft_distroless_status.d/installed-size-4KB", statusD: true, count: 1},
		{file: "syft_distroless_status.d/libpam-runtime", statusD: true, count: 1, spot: []inventory.Package{
			{Name: "libpam-runtime", Version: "1.5.2-6+deb12u1", Arch: "all", SourceName: "pam", SourceVersion: "1.5.2-6+deb12u1", Maintainer: "Sam Hartman <hartmans@debian.org>"},
		}},
		{file: "syft_distroless_status.d/libsqlite3-0", statusD: true, count: 1, spot: []inventory.Package{
			{Name: "libsqlite3-0", Version: "3.34.1-3", Arch: "arm64", SourceName: "sqlite3", SourceVersion: "3.34.1-3", Maintainer: "Laszlo Boszormenyi (GCS) <gcs@debian.org>"},
		}},
		{file: "syft_distroless_status.d/multiple", statusD: true, count: 2, absent: []string{"no-version"}, spot: []inventory.Package{
			{Name: "tzdata", Version: "2020a-0+deb10u1", Arch: "all", SourceName: "tzdata-dev", SourceVersion: "2020a-0+deb10u1"},
			{Name: "util-linux", Version: "2.33.1-0.1", Arch: "amd64", SourceName: "util-linux"},
		}},
		{file: "syft_distroless_status.d/single", statusD: true, count: 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := parseFile(t, filepath.Join("testdata", tt.file), tt.statusD)
			if len(pkgs) != tt.count {
				t.Errorf("got %d packages, want %d", len(pkgs), tt.count)
			}
			for _, p := range pkgs {
				if p.Type != inventory.TypeDeb || p.Name == "" || p.Version == "" || p.SourceName == "" || p.SourceVersion == "" {
					t.Errorf("bad package %+v", p)
				}
			}
			for _, name := range tt.absent {
				if find(pkgs, name) != nil {
					t.Errorf("%s should not be listed", name)
				}
			}
			for _, want := range tt.spot {
				got := find(pkgs, want.Name)
				if got == nil {
					t.Errorf("%s not found", want.Name)
					continue
				}
				// Fields left empty in the table are not checked.
				want.Type = inventory.TypeDeb
				fill := func(w *string, g string) {
					if *w == "" {
						*w = g
					}
				}
				fill(&want.Arch, got.Arch)
				fill(&want.SourceName, got.SourceName)
				fill(&want.SourceVersion, got.SourceVersion)
				fill(&want.Maintainer, got.Maintainer)
				if !reflect.DeepEqual(*got, want) {
					t.Errorf("got  %+v\nwant %+v", *got, want)
				}
			}
		})
	}
}

// dpkgQuery runs the real dpkg-query over a status file and returns one line
// per installed package, in the shape of describe, sorted. ok is false when
// dpkg itself rejects the file.
func dpkgQuery(t *testing.T, status string) (lines []string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("dpkg-query")
	if err != nil {
		t.Skip("dpkg-query not installed")
	}
	admin := t.TempDir()
	b, err := os.ReadFile(status)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "status"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(admin, "available"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(admin, "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--admindir="+admin, "-W", "-f",
		`${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\t${source:Package}\t${source:Version}\t${Maintainer}\n`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if strings.Contains(stderr.String(), "error") {
		return nil, false
	}
	// Exit status 1 with no error means no package matched.
	if err != nil && len(out) != 0 {
		t.Fatalf("dpkg-query: %v: %s", err, stderr.String())
	}
	for _, l := range strings.Split(string(out), "\n") {
		status, rest, _ := strings.Cut(l, "\t")
		if status == "installed" {
			lines = append(lines, rest)
		}
	}
	slices.Sort(lines)
	return lines, true
}

func describe(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, strings.Join([]string{p.Name, p.Version, p.Arch, p.SourceName, p.SourceVersion, p.Maintainer}, "\t"))
	}
	slices.Sort(out)
	return out
}

// TestParseMatchesDpkgQuery reads every fixture as a status file and
// compares with what dpkg-query lists as installed: names, versions,
// architectures, source names and versions, maintainers.
func TestParseMatchesDpkgQuery(t *testing.T) {
	files, _ := filepath.Glob("testdata/*status*")
	more, _ := filepath.Glob("testdata/syft_distroless_status.d/*")
	files = append(files, more...)
	if dir := testcorpus.Dir(); dir != "" {
		// The corpus holds the same files today; read it too so that files
		// added there later are covered.
		c, _ := filepath.Glob(filepath.Join(dir, "pkgdb", "dpkg", "*status*"))
		files = append(files, c...)
	}
	compared := 0
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.IsDir() {
			continue
		}
		t.Run(f, func(t *testing.T) {
			want, ok := dpkgQuery(t, f)
			if !ok {
				t.Skipf("dpkg rejects %s as a status file", f)
			}
			compared++
			got := describe(parseFile(t, f, false))
			if !slices.Equal(got, want) {
				t.Errorf("parser and dpkg-query disagree:\n got %q\nwant %q", got, want)
			}
		})
	}
	// Guard against a dpkg-query that rejects everything.
	if _, err := exec.LookPath("dpkg-query"); err == nil && compared < 10 {
		t.Errorf("only %d fixtures compared with dpkg-query", compared)
	}
}

// TestStatusStates checks each dpkg state against dpkg-query's own reading,
// on a file written for the purpose.
func TestStatusStates(t *testing.T) {
	const in = `Package: inst
Status: install ok installed
Version: 1.0
Architecture: all
Maintainer: m
Description: d

Package: held
Status: hold ok installed
Version: 1.0
Architecture: all
Maintainer: m
Description: d

Package: going
Status: deinstall ok installed
Version: 1:2.0
Source: src (3)
Architecture: all
Maintainer: m
Description: d

Package: trig
Status: install ok triggers-pending
Version: 1.0
Architecture: all
Maintainer: m
Description: d
Triggers-Pending: foo

Package: unpacked
Status: install ok unpacked
Version: 1.0
Architecture: all
Maintainer: m
Description: d

Package: halfconf
Status: install ok half-configured
Version: 1.0
Architecture: all
Maintainer: m
Description: d

Package: conf
Status: deinstall ok config-files
Version: 1.0
Architecture: all
Maintainer: m
Description: d

Package: purged
Status: purge ok not-installed
Architecture: all
Maintainer: m
Description: d

Package: nostatus
Version: 1.0
Architecture: all
Maintainer: m
Description: d

Package: libc6
Status: install ok installed
Version: 2.36-9
Architecture: amd64
Multi-Arch: same
Maintainer: m
Description: d

Package: libc6
Status: install ok installed
Version: 2.36-9
Architecture: i386
Multi-Arch: same
Maintainer: m
Description: d
`
	pkgs, err := ParseStatus(context.Background(), strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pkgs {
		names = append(names, p.Name+":"+p.Arch)
	}
	want := []string{"inst:all", "held:all", "going:all", "libc6:amd64", "libc6:i386"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
	f := filepath.Join(t.TempDir(), "status")
	if err := os.WriteFile(f, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	q, ok := dpkgQuery(t, f)
	if !ok {
		t.Fatal("dpkg-query rejected the file")
	}
	if got := describe(pkgs); !slices.Equal(got, q) {
		t.Errorf("parser and dpkg-query disagree:\n got %q\nwant %q", got, q)
	}
}

func TestParseOddInput(t *testing.T) {
	base, err := os.ReadFile("testdata/scalibr_valid_status")
	if err != nil {
		t.Fatal(err)
	}
	// Inputs cut short or with over-long lines are read, and say so.
	partial := map[string]bool{"no trailing newline": true, "over-long line skipped": true, "over-long continuation": true}
	parse := func(t *testing.T, b []byte) []string {
		pkgs, err := ParseStatus(context.Background(), bytes.NewReader(b))
		var pe *catalog.PartialError
		if errors.As(err, &pe) && partial[strings.ReplaceAll(path.Base(t.Name()), "_", " ")] {
			t.Log(err)
			err = nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return describe(pkgs)
	}
	want := parse(t, base)
	if len(want) != 7 {
		t.Fatalf("base fixture gave %d packages", len(want))
	}
	variants := map[string][]byte{
		"crlf":                     bytes.ReplaceAll(base, []byte("\n"), []byte("\r\n")),
		"no trailing newline":      bytes.TrimRight(base, "\n"),
		"blank lines lost":         bytes.ReplaceAll(base, []byte("\n\n"), []byte("\n")),
		"whitespace-only blanks":   bytes.ReplaceAll(base, []byte("\n\n"), []byte("\n \t\n")),
		"extra blank lines":        bytes.ReplaceAll(base, []byte("\n\n"), []byte("\n\n\n\n")),
		"over-long line skipped":   append([]byte("Description: "+strings.Repeat("x", MaxLine+10)+"\n\n"), base...),
		"over-long continuation":   bytes.Replace(base, []byte("Homepage:"), []byte(" "+strings.Repeat("y", MaxLine+1)+"\nHomepage:"), 1),
		"lower-case field names":   bytes.ReplaceAll(bytes.ReplaceAll(base, []byte("\nVersion:"), []byte("\nversion:")), []byte("Package:"), []byte("PACKAGE:")),
		"tab continuation":         bytes.ReplaceAll(base, []byte("\n "), []byte("\n\t")),
		"comment lines":            bytes.ReplaceAll(base, []byte("\nStatus:"), []byte("\n# a comment: yes\nStatus:")),
		"continuation looks field": bytes.Replace(base, []byte("\n based on"), []byte("\n Version: 9.9\n based on"), 1),
	}
	for name, in := range variants {
		t.Run(name, func(t *testing.T) {
			if got := parse(t, in); !slices.Equal(got, want) {
				t.Errorf("got %q\nwant %q", got, want)
			}
		})
	}
	for name, tc := range map[string]struct {
		in   string
		want []string
	}{
		"empty":           {"", nil},
		"garbage":         {"\x00\xff\n:\n::\nPackage\n", nil},
		"no version":      {"Package: a\nStatus: install ok installed\n", nil},
		"empty package":   {"Package:\nStatus: install ok installed\nVersion: 1\n", nil},
		"status too long": {"Package: a\nStatus: install ok installed extra\nVersion: 1\n", nil},
		"status short":    {"Package: a\nStatus: installed\nVersion: 1\n", nil},
		"duplicate kept once": {"Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: a\nStatus: install ok installed\nVersion: 1\n",
			[]string{"a\t1\t\ta\t1\t"}},
	} {
		t.Run(name, func(t *testing.T) {
			if got := parse(t, []byte(tc.in)); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseTooManyPackages: a file over the limit is rejected whole with a
// TooManyPackagesError, which the Collector reports naming the file.
func TestParseTooManyPackages(t *testing.T) {
	const limit = 1000
	var b bytes.Buffer
	for i := 0; i <= limit; i++ {
		// Distinct names: duplicates are not counted twice.
		b.WriteString("Package: p" + strconv.Itoa(i) + "\nVersion: 1\n\n")
	}
	_, err := parse(context.Background(), bytes.NewReader(b.Bytes()), true, limit)
	var tm *catalog.TooManyPackagesError
	if !errors.As(err, &tm) || tm.Limit != limit {
		t.Fatalf("got %v, want a TooManyPackagesError at %d", err, limit)
	}
	if pkgs, err := ParseStatusD(context.Background(), bytes.NewReader(b.Bytes())); err != nil || len(pkgs) != limit+1 {
		t.Fatalf("default limit: %d packages, %v", len(pkgs), err)
	}
	for _, path := range []string{"var/lib/dpkg/status.d/hostile", "var/lib/dpkg/status"} {
		status := bytes.ReplaceAll(b.Bytes(), []byte("Version: 1\n"), []byte("Version: 1\nStatus: install ok installed\n"))
		col := collectFiles(t, &Cataloger{MaxPackages: limit}, map[string][]byte{path: status})
		w := col.Warnings()
		if len(col.Packages()) != 0 || len(w) != 1 || !strings.Contains(w[0], "/"+path) || !strings.Contains(w[0], "more than 1000 packages") {
			t.Errorf("%s: %d packages, warnings %q", path, len(col.Packages()), w)
		}
	}
}

// collectFiles runs the cataloger in a walk over one layer of files.
func collectFiles(t *testing.T, c catalog.Cataloger, files map[string][]byte) *catalog.Collector {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[name])
	}
	tw.Close()
	layer := walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}}
	col := catalog.NewCollector(context.Background(), []catalog.Cataloger{c}, []inventory.Layer{{Index: 0}}, t.TempDir())
	if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	return col
}

// TestNoTrailingNewline: a status file cut before its final newline still
// gives its last package, and the scan says the file may be truncated.
func TestNoTrailingNewline(t *testing.T) {
	status := "Package: first\nStatus: install ok installed\nVersion: 1.0-1\n\n" +
		"Package: last\nStatus: install ok installed\nVersion: 2.0-1" // no newline
	for _, crlf := range []bool{false, true} {
		in := status
		if crlf {
			in = strings.ReplaceAll(in, "\n", "\r\n")
		}
		pkgs, err := ParseStatus(context.Background(), strings.NewReader(in))
		var pe *catalog.PartialError
		if !errors.As(err, &pe) {
			t.Fatalf("crlf=%v: got %v, want a PartialError", crlf, err)
		}
		if len(pkgs) != 2 || pkgs[1].Name != "last" || pkgs[1].Version != "2.0-1" {
			t.Fatalf("crlf=%v: got %+v, want the last package too", crlf, pkgs)
		}
	}
	col := collectFiles(t, New(), map[string][]byte{"var/lib/dpkg/status": []byte(status)})
	if n := len(col.Packages()); n != 2 {
		t.Errorf("%d packages through the Collector, want 2", n)
	}
	w := col.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "dpkg: /var/lib/dpkg/status: ") || !strings.Contains(w[0], "does not end with a newline") || !strings.Contains(w[0], "Package: last") {
		t.Errorf("warnings %q, want one naming the file and the last package", w)
	}
	// A file that ends with one newline (no blank line) is normal.
	if _, err := ParseStatus(context.Background(), strings.NewReader(status+"\n")); err != nil {
		t.Errorf("with a final newline: %v", err)
	}
}

// TestLongLineWarns: a line over MaxLine is skipped, and said to be.
func TestLongLineWarns(t *testing.T) {
	in := "Package: hidden" + strings.Repeat(" ", MaxLine) + "\nStatus: install ok installed\nVersion: 1\n\n" +
		"Package: shown\nStatus: install ok installed\nVersion: 1\n"
	pkgs, err := ParseStatus(context.Background(), strings.NewReader(in))
	var pe *catalog.PartialError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "1 lines longer than") {
		t.Fatalf("got %v, want a PartialError about the long line", err)
	}
	if len(pkgs) != 1 || pkgs[0].Name != "shown" {
		t.Errorf("got %+v", pkgs)
	}
}

func TestParseCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := strings.Repeat("Package: a\nVersion: 1\n\n", 10000)
	if _, err := ParseStatusD(ctx, strings.NewReader(in)); err == nil {
		t.Fatal("no error from a cancelled context")
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseReadError(t *testing.T) {
	_, err := New().Parse(context.Background(), catalog.Input{Path: "/var/lib/dpkg/status", Reader: failReader{}})
	if err == nil || !strings.Contains(err.Error(), "/var/lib/dpkg/status") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
}

func TestSplitSource(t *testing.T) {
	for in, want := range map[string][2]string{
		"":                                 {"", ""},
		"glibc":                            {"glibc", ""},
		"util-linux (2.38.1-5)":            {"util-linux", "2.38.1-5"},
		"xz-utils (5.1.1alpha+20120614-2)": {"xz-utils", "5.1.1alpha+20120614-2"},
		"  attr   (1:2.5.1-4)  ":           {"attr", "1:2.5.1-4"},
		"broken (1.0":                      {"broken", "1.0"},
		"(1.0)":                            {"", "1.0"},
	} {
		n, v := SplitSource(in)
		if n != want[0] || v != want[1] {
			t.Errorf("SplitSource(%q) = %q, %q; want %q, %q", in, n, v, want[0], want[1])
		}
	}
}

func TestEpoch(t *testing.T) {
	for in, want := range map[string]*int{
		"1:2.3-4":                intp(1),
		"0:1.0":                  intp(0),
		"12:1":                   intp(12),
		"2.3-4":                  nil,
		":1.0":                   nil,
		"a:1.0":                  nil,
		"-1:1.0":                 nil,
		"99999999999999999999:1": nil,
		"+1:2":                   nil,
		"1:":                     nil,
		"00:1":                   intp(0),
	} {
		got := epoch(in)
		if (got == nil) != (want == nil) || (got != nil && *got != *want) {
			t.Errorf("epoch(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestPURL(t *testing.T) {
	bsdutils := &inventory.Package{Name: "bsdutils", Version: "1:2.31.1-0.4ubuntu3.6", Arch: "amd64", SourceName: "util-linux", SourceVersion: "2.31.1-0.4ubuntu3.6"}
	libattr := &inventory.Package{Name: "libattr1", Version: "1:2.4.47-2build1", Arch: "amd64", SourceName: "attr", SourceVersion: "1:2.4.47-2build1"}
	apt := &inventory.Package{Name: "apt", Version: "1.8.2", Arch: "amd64", SourceName: "apt", SourceVersion: "1.8.2"}
	tests := []struct {
		p    *inventory.Package
		os   *inventory.OS
		want string
	}{
		{bsdutils, &inventory.OS{ID: "ubuntu", VersionID: "18.04", Codename: "bionic"},
			"pkg:deb/ubuntu/bsdutils@1:2.31.1-0.4ubuntu3.6?arch=amd64&distro=ubuntu-18.04&upstream=util-linux%402.31.1-0.4ubuntu3.6"},
		{libattr, &inventory.OS{ID: "ubuntu", VersionID: "18.04"},
			"pkg:deb/ubuntu/libattr1@1:2.4.47-2build1?arch=amd64&distro=ubuntu-18.04&upstream=attr"},
		{apt, &inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm"}, "pkg:deb/debian/apt@1.8.2?arch=amd64&distro=debian-12"},
		{apt, &inventory.OS{ID: "debian", Codename: "trixie"}, "pkg:deb/debian/apt@1.8.2?arch=amd64&distro=debian-trixie"},
		{apt, nil, "pkg:deb/debian/apt@1.8.2?arch=amd64"},
		{&inventory.Package{Name: "libstdc++6", Version: "12.2.0-14+deb12u1"}, &inventory.OS{ID: "debian", VersionID: "12"},
			"pkg:deb/debian/libstdc%2B%2B6@12.2.0-14%2Bdeb12u1?distro=debian-12"},
	}
	for _, tt := range tests {
		if got := New().PURL(tt.p, tt.os); got != tt.want {
			t.Errorf("PURL(%s, %+v)\n got %s\nwant %s", tt.p.Name, tt.os, got, tt.want)
		}
	}
}

func TestMatch(t *testing.T) {
	c := New()
	for p, want := range map[string]bool{
		"var/lib/dpkg/status":                   true,
		"var/lib/dpkg/status-old":               false,
		"var/lib/dpkg/status.d/libc6":           true,
		"var/lib/dpkg/status.d/libc6.md5sums":   false,
		"var/lib/dpkg/status.d/":                false,
		"var/lib/dpkg/status.d/sub/x":           false,
		"var/lib/dpkg/available":                false,
		"usr/lib/opkg/status":                   true,
		"var/lib/opkg/status":                   true,
		"usr/lib/opkg/info/busybox.control":     false,
		"srv/chroot/var/lib/dpkg/status":        false,
		"var/lib/dpkg/info/libc6:amd64.md5sums": false,
	} {
		if got := c.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

// TestCollectorDistroless runs the cataloger in the streaming walk over a
// layer laid out as a distroless image: per-package files in status.d, with
// their .md5sums beside them, and no status file.
func TestCollectorDistroless(t *testing.T) {
	sqlite, err := os.ReadFile("testdata/syft_distroless_status.d/libsqlite3-0")
	if err != nil {
		t.Fatal(err)
	}
	tzdata, err := os.ReadFile("testdata/syft_distroless_status.d/multiple")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"var/lib/dpkg/status.d/libsqlite3-0", sqlite},
		{"var/lib/dpkg/status.d/libsqlite3-0.md5sums", []byte("d41d8cd98f00b204e9800998ecf8427e  usr/lib/libsqlite3.so.0\n")},
		{"var/lib/dpkg/status.d/multiple", tzdata},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer := walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}}
	col := catalog.NewCollector(context.Background(), []catalog.Cataloger{New()}, []inventory.Layer{{Index: 0}}, t.TempDir())
	if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if w := col.Warnings(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
	var got []string
	for _, p := range col.Packages() {
		got = append(got, p.Name+" "+p.Version+" "+p.Locations[0].Path)
	}
	slices.Sort(got)
	want := []string{
		"libsqlite3-0 3.34.1-3 /var/lib/dpkg/status.d/libsqlite3-0",
		"tzdata 2020a-0+deb10u1 /var/lib/dpkg/status.d/multiple",
		"util-linux 2.33.1-0.1 /var/lib/dpkg/status.d/multiple",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/claircore_texlive.status")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		pkgs, err := ParseStatus(context.Background(), bytes.NewReader(data))
		if err != nil || len(pkgs) != 357 {
			b.Fatalf("got %d packages, %v", len(pkgs), err)
		}
	}
}
