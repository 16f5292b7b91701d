package rpm

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// fixture is a committed database and the `rpm -qa` listing it must give.
type fixture struct {
	file   string // testdata/<file>.gz
	format string // as check() names it
	// dbName and backend place the file where real rpm reads it.
	dbName, backend string
}

var fixtures = []fixture{
	{"go-rpmdb_libuuid_Packages", "BerkeleyDB", "Packages", "bdb_ro"},
	{"go-rpmdb_centos5-plain_Packages", "BerkeleyDB", "Packages", "bdb_ro"},
	{"go-rpmdb_sle15-bci_Packages.db", "NDB", "Packages.db", "ndb"},
	{"go-rpmdb_cbl-mariner-2.0_rpmdb.sqlite", "SQLite", "rpmdb.sqlite", "sqlite"},
}

// gunzip returns the decompressed content of a gzip file.
func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

func fixtureData(t testing.TB, fx fixture) []byte {
	return gunzip(t, filepath.Join("testdata", fx.file+".gz"))
}

func input(data []byte, dir string) catalog.Input {
	return catalog.Input{
		Path:     "/var/lib/rpm/Packages",
		Reader:   bytes.NewReader(data),
		Size:     int64(len(data)),
		ReaderAt: func() (io.ReaderAt, error) { return bytes.NewReader(data), nil },
		TempDir:  dir,
	}
}

// parse runs the cataloger and fails the test if it does not return within
// a minute: go-rpmdb's readers can loop forever on bad chains, which the
// guard must prevent, and a hang must fail rather than stall the suite.
func parse(t testing.TB, c *Cataloger, data []byte) ([]inventory.Package, error) {
	t.Helper()
	dir := t.TempDir()
	type result struct {
		pkgs []inventory.Package
		err  error
	}
	done := make(chan result, 1)
	go func() {
		pkgs, err := c.Parse(context.Background(), input(data, dir))
		done <- result{pkgs, err}
	}()
	select {
	case r := <-done:
		left, _ := os.ReadDir(dir)
		if len(left) != 0 {
			t.Errorf("Parse left %d spool files in TempDir", len(left))
		}
		return r.pkgs, r.err
	case <-time.After(time.Minute):
		t.Fatal("Parse did not return within a minute")
		return nil, nil
	}
}

// row renders a package in the columns of the expected-rpm-qa listings:
// NAME EPOCH VERSION RELEASE ARCH SOURCERPM MODULARITYLABEL, with rpm's
// "(none)" for absent values. VERSION is the package's full Version, and the
// expected side builds that from the listing by the documented rule, so the
// EVR formatting is checked too.
func row(p *inventory.Package) string {
	epoch := "(none)"
	if p.Epoch != nil {
		epoch = strconv.Itoa(*p.Epoch)
	}
	src := sourceRPM(p)
	return strings.Join([]string{p.Name, epoch, p.Version, p.Release, none(p.Arch), none(src), none(p.Modularity)}, "\t")
}

func none(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func expectedRows(t testing.TB, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for i, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			t.Fatalf("%s:%d: %d columns, want 7", path, i+1, len(f))
		}
		evr := f[2] + "-" + f[3]
		if f[1] != "(none)" && f[1] != "0" {
			evr = f[1] + ":" + evr
		}
		f[2] = evr
		rows = append(rows, strings.Join(f, "\t"))
	}
	sort.Strings(rows)
	return rows
}

func rows(pkgs []inventory.Package) []string {
	out := make([]string, len(pkgs))
	for i := range pkgs {
		out[i] = row(&pkgs[i])
	}
	sort.Strings(out)
	return out
}

// diffRows reports the rows only in want and only in got (as multisets).
func diffRows(t testing.TB, name string, got, want []string) {
	t.Helper()
	count := map[string]int{}
	for _, r := range want {
		count[r]++
	}
	for _, r := range got {
		count[r]--
	}
	var missing, extra []string
	for r, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, r)
		}
		for ; n < 0; n++ {
			extra = append(extra, r)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) == 0 {
		return
	}
	head := func(s []string) []string {
		if len(s) > 10 {
			return append(s[:10:10], fmt.Sprintf("... %d more", len(s)-10))
		}
		return s
	}
	t.Errorf("%s: %d packages, want %d\nmissing:\n  %s\nunexpected:\n  %s", name, len(got), len(want),
		strings.Join(head(missing), "\n  "), strings.Join(head(extra), "\n  "))
}

// TestFixtures compares the full (name, epoch, version, release, arch,
// sourcerpm, modularitylabel) set of every committed database with what
// rpm -qa printed for it.
func TestFixtures(t *testing.T) {
	c := New()
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			data := fixtureData(t, fx)
			pkgs, err := parse(t, c, data)
			if err != nil {
				t.Fatal(err)
			}
			want := expectedRows(t, filepath.Join("testdata", "expected-rpm-qa", fx.file+".tsv"))
			diffRows(t, fx.file, rows(pkgs), want)
			for i := range pkgs {
				p := &pkgs[i]
				if p.Type != inventory.TypeRPM {
					t.Errorf("%s: type %q", p.Name, p.Type)
				}
				if p.Name != "gpg-pubkey" && (p.Maintainer == "" || len(p.Licenses) != 1 || p.SourceName == "") {
					t.Errorf("%s: vendor %q, licenses %q, source %q: want all set", p.Name, p.Maintainer, p.Licenses, p.SourceName)
				}
			}
			chk, err := check(writeTemp(t, data), DefaultMaxSize, 0)
			if err != nil || chk.format != fx.format {
				t.Errorf("check: format %q, %v; want %s", chk.format, err, fx.format)
			}
		})
	}
}

// TestFields pins the mapping of header tags to inventory fields on a few
// packages whose values are known from the distributions.
func TestFields(t *testing.T) {
	pkgs, err := parse(t, New(), fixtureData(t, fixtures[0]))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 {
		t.Fatalf("%d packages, want 1", len(pkgs))
	}
	got := pkgs[0]
	want := inventory.Package{
		Name: "libuuid", Version: "2.32.1-42.el8_8", Type: "rpm", Arch: "x86_64", Release: "42.el8_8",
		SourceName: "util-linux", SourceVersion: "2.32.1-42.el8_8",
		Licenses: []string{"BSD"}, Maintainer: "Red Hat, Inc.",
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	pkgs, err = parse(t, New(), fixtureData(t, fixtures[2]))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Name == "glibc" {
			if p.Licenses[0] != "LGPL-2.1-or-later AND LGPL-2.1-or-later WITH GCC-exception-2.0 AND GPL-2.0-or-later" ||
				p.Maintainer != "SUSE LLC <https://www.suse.com/>" || p.SourceName != "glibc" || p.SourceVersion != "2.31-9.3.2" {
				t.Errorf("glibc: %+v", p)
			}
			return
		}
	}
	t.Error("glibc not found in the SLE database")
}

func writeTemp(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// corpusDir finds ../shared/corpus beside the repository root.
func corpusDir(t testing.TB) string {
	t.Helper()
	c := testcorpus.Dir("pkgdb", "rpm")
	if c == "" {
		t.Skip("no ../shared/corpus beside the repository; the committed fixtures are tested by TestFixtures")
	}
	return c
}

// TestCorpus runs over every database of the shared corpus: each must parse,
// and those with an rpm -qa listing must match it exactly.
func TestCorpus(t *testing.T) {
	dir := corpusDir(t)
	if testing.Short() {
		t.Skip("corpus run skipped in -short mode")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no databases in %s: %v", dir, err)
	}
	c := New()
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".gz")
		t.Run(name, func(t *testing.T) {
			pkgs, err := parse(t, c, gunzip(t, f))
			if err != nil {
				t.Fatal(err)
			}
			if len(pkgs) == 0 {
				t.Fatal("no packages")
			}
			tsv := filepath.Join(dir, "expected-rpm-qa", name+".tsv")
			if _, err := os.Stat(tsv); err != nil {
				// The NDB databases: the rpm that made the listings cannot read NDB.
				t.Logf("%d packages; no rpm -qa listing to compare with", len(pkgs))
				return
			}
			diffRows(t, name, rows(pkgs), expectedRows(t, tsv))
		})
	}
}

// TestRealRPM lets this machine's rpm read each committed database and
// compares its listing with the parser's.
func TestRealRPM(t *testing.T) {
	rpmBin, err := exec.LookPath("rpm")
	if err != nil {
		t.Skip("rpm is not installed (apt-get install rpm)")
	}
	const qf = `%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t%{MODULARITYLABEL}\n`
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			data := fixtureData(t, fx)
			dbDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dbDir, fx.dbName), data, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(rpmBin, "--dbpath", dbDir, "--define", "_db_backend "+fx.backend, "-qa", "--qf", qf)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("rpm: %v\n%s", err, stderr.String())
			}
			if len(out) == 0 {
				// Debian builds rpm without the ndb backend; it then opens a
				// dummy database and lists nothing.
				t.Skipf("this rpm cannot read %s databases (%s)", fx.backend, strings.TrimSpace(stderr.String()))
			}
			var want []string
			for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
				f := strings.Split(line, "\t")
				if len(f) != 7 {
					t.Fatalf("rpm printed %q", line)
				}
				if f[1] != "(none)" && f[1] != "0" {
					f[2] = f[1] + ":" + f[2] + "-" + f[3]
				} else {
					f[2] += "-" + f[3]
				}
				want = append(want, strings.Join(f, "\t"))
			}
			pkgs, err := parse(t, New(), data)
			if err != nil {
				t.Fatal(err)
			}
			diffRows(t, fx.file, rows(pkgs), want)
		})
	}
}

// TestDamaged parses truncated and overwritten copies of every fixture: all
// must return (no panic, no hang), and the clearly broken ones with an error
// naming the file.
func TestDamaged(t *testing.T) {
	c := New()
	for _, fx := range fixtures {
		data := fixtureData(t, fx)
		t.Run(fx.file, func(t *testing.T) {
			for _, n := range []int{1, 100, 511, 4096, len(data) / 4, len(data) / 2} {
				_, err := parse(t, c, data[:n])
				if err == nil {
					t.Errorf("truncated to %d of %d bytes: no error", n, len(data))
				} else if !strings.Contains(err.Error(), "/var/lib/rpm/Packages") {
					t.Errorf("truncated to %d: error does not name the file: %v", n, err)
				}
			}
			// The tail may be free space; the parse must only come back.
			for _, n := range []int{3 * len(data) / 4, len(data) - 1} {
				parse(t, c, data[:n])
			}
			rnd := rand.New(rand.NewPCG(1, uint64(len(data))))
			bad := make([]byte, len(data))
			for range 60 {
				copy(bad, data)
				for range 1 + rnd.IntN(16) {
					bad[rnd.IntN(len(bad))] = byte(rnd.Uint32())
				}
				// Structural bytes live in the first pages; hit them often.
				for range rnd.IntN(4) {
					bad[rnd.IntN(min(len(bad), 8192))] = byte(rnd.Uint32())
				}
				parse(t, c, bad)
			}
		})
	}
	t.Run("not-an-rpmdb", func(t *testing.T) {
		_, err := parse(t, c, bytes.Repeat([]byte("not a database "), 100))
		if !errors.Is(err, errNotRPMDB) {
			t.Errorf("got %v, want errNotRPMDB", err)
		}
	})
	t.Run("empty", func(t *testing.T) {
		if _, err := parse(t, c, nil); !errors.Is(err, errNotRPMDB) {
			t.Errorf("empty file: got %v, want errNotRPMDB", err)
		}
	})
}

// TestCraftedBDB builds BerkeleyDB files with the exact defects that make
// go-rpmdb panic in, or never return from, its reader goroutine.
func TestCraftedBDB(t *testing.T) {
	data := fixtureData(t, fixtures[0]) // libuuid, little-endian, 4 KiB pages
	const pageSize = 4096
	le := binary.LittleEndian
	// Find the hash page holding the package and its off-page entry.
	var hashPage, entryOff int
	for pg := 1; pg*pageSize < len(data); pg++ {
		p := data[pg*pageSize : (pg+1)*pageSize]
		if p[25] != 13 && p[25] != 2 {
			continue
		}
		n := int(le.Uint16(p[20:22]))
		for i := 1; i < n; i += 2 {
			off := int(le.Uint16(p[26+2*i:]))
			if p[off] == 3 {
				hashPage, entryOff = pg, off
			}
		}
	}
	if hashPage == 0 {
		t.Fatal("no HOFFPAGE entry in the libuuid database")
	}
	firstOverflow := int(le.Uint32(data[hashPage*pageSize+entryOff+4:]))
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(data)
		f(b)
		return b
	}
	hp := hashPage * pageSize
	ov := firstOverflow * pageSize
	cases := map[string][]byte{
		"value offset past page": edit(func(b []byte) { le.PutUint16(b[hp+26+2:], 0xfff0) }),
		"entries overflow page":  edit(func(b []byte) { le.PutUint16(b[hp+20:], 0x7ffe) }),
		"odd entry count":        edit(func(b []byte) { le.PutUint16(b[hp+20:], 3) }),
		"chain to a hash page":   edit(func(b []byte) { le.PutUint32(b[hp+entryOff+4:], uint32(hashPage)) }),
		"chain past EOF":         edit(func(b []byte) { le.PutUint32(b[hp+entryOff+4:], 0xffff) }),
		"chain loops":            edit(func(b []byte) { le.PutUint32(b[ov+16:], uint32(firstOverflow)) }),
		"last page too long":     edit(func(b []byte) { le.PutUint32(b[ov+16:], 0); le.PutUint16(b[ov+22:], 0xfff0) }),
		"last page number high":  edit(func(b []byte) { le.PutUint32(b[32:], 1<<30) }),
		"page size 3000":         edit(func(b []byte) { le.PutUint32(b[20:], 3000) }),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, New(), b)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
}

// TestCraftedNDB does the same for NDB: bad slot magic (go-rpmdb prints it
// to stdout), blob lengths it would allocate unchecked, blobs past EOF.
func TestCraftedNDB(t *testing.T) {
	data := fixtureData(t, fixtures[2])
	le := binary.LittleEndian
	firstUsed := -1
	for i := 32; i+16 <= 4096; i += 16 {
		if le.Uint32(data[i+4:]) != 0 {
			firstUsed = i
			break
		}
	}
	if firstUsed < 0 {
		t.Fatal("no used slot")
	}
	blob := int(le.Uint32(data[firstUsed+8:])) * 16
	edit := func(f func(b []byte)) []byte {
		b := bytes.Clone(data)
		f(b)
		return b
	}
	cases := map[string][]byte{
		"slot magic":       edit(func(b []byte) { b[firstUsed] = 'X' }),
		"blob length 4GiB": edit(func(b []byte) { le.PutUint32(b[blob+12:], 0xffffffff) }),
		"blob past EOF":    edit(func(b []byte) { le.PutUint32(b[firstUsed+8:], 0x0fffffff) }),
		"blob magic":       edit(func(b []byte) { b[blob] = 'X' }),
		"slot pages 4000":  edit(func(b []byte) { le.PutUint32(b[12:], 4000) }),
		"version 1":        edit(func(b []byte) { le.PutUint32(b[4:], 1) }),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, New(), b)
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
		})
	}
}

func TestMaxSize(t *testing.T) {
	data := fixtureData(t, fixtures[0])
	c := &Cataloger{MaxSize: int64(len(data)) - 1}
	if _, err := parse(t, c, data); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("over the limit: %v", err)
	}
	// An input whose Size understates its length is caught when spooled.
	in := input(data, t.TempDir())
	in.Size = 10
	if _, err := c.Parse(context.Background(), in); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("understated size: %v", err)
	}
	c.MaxSize = int64(len(data))
	if _, err := parse(t, c, data); err != nil {
		t.Errorf("at the limit: %v", err)
	}
}

func TestMatch(t *testing.T) {
	c := New()
	for path, want := range map[string]bool{
		"var/lib/rpm/Packages":              true,
		"var/lib/rpm/Packages.db":           true,
		"var/lib/rpm/rpmdb.sqlite":          true,
		"usr/lib/sysimage/rpm/Packages":     true,
		"usr/lib/sysimage/rpm/Packages.db":  true,
		"usr/lib/sysimage/rpm/rpmdb.sqlite": true,
		"var/lib/rpm/Name":                  false,
		"var/lib/rpm/Basenames":             false,
		"var/lib/rpm/__db.001":              false,
		"var/lib/rpm/Index.db":              false,
		"var/lib/rpm/rpmdb.sqlite-shm":      false,
		"var/lib/rpm/rpmdb.sqlite-wal":      false,
		"/var/lib/rpm/Packages":             false,
		"opt/var/lib/rpm/Packages":          false,
		"var/lib/rpm/Packages/x":            false,
		"var/lib/dpkg/status":               false,
	} {
		if got := c.Match(path); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestSplitSourceRPM(t *testing.T) {
	for in, want := range map[string][3]string{
		"util-linux-2.32.1-42.el8_8.src.rpm":             {"util-linux", "2.32.1", "42.el8_8"},
		"bind-9.8.2-0.68.rc1.el6_10.1.src.rpm":           {"bind", "9.8.2", "0.68.rc1.el6_10.1"},
		"gcc11-11.2.1+git610-1.3.9.src.rpm":              {"gcc11", "11.2.1+git610", "1.3.9"},
		"java-1.8.0-openjdk-1.8.0.392.b08-4.el8.src.rpm": {"java-1.8.0-openjdk", "1.8.0.392.b08", "4.el8"},
		"kernel-5.14.0-362.el9.nosrc.rpm":                {"kernel", "5.14.0", "362.el9"},
		"":                                               {},
		"(none)":                                         {},
		"foo.src.rpm":                                    {},
		"foo-1.src.rpm":                                  {},
		"foo--1.src.rpm":                                 {},
		"-1-2.src.rpm":                                   {},
		"foo-1-.src.rpm":                                 {},
		"libuuid-2.32.1-42.el8_8.x86_64.rpm":             {},
		"container-selinux-2.229.0-2.module+el8.src.rpm":  {"container-selinux", "2.229.0", "2.module+el8"},
		"perl-Errno-1.28-416.el8.src.rpm":                 {"perl-Errno", "1.28", "416.el8"},
		"a-b-c-d-e-f-1.0-1.src.rpm":                       {"a-b-c-d-e-f", "1.0", "1"},
		"python3.11-3.11.5-1.el9_3.src.rpm":               {"python3.11", "3.11.5", "1.el9_3"},
		"nodejs-1:16.20.2-4.module+el8.9.0+20537.src.rpm": {"nodejs", "1:16.20.2", "4.module+el8.9.0+20537"},
	} {
		n, v, r, ok := splitSourceRPM(in)
		if got := [3]string{n, v, r}; got != want || ok != (want != [3]string{}) {
			t.Errorf("splitSourceRPM(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
}

func intp(i int) *int { return &i }

func TestPURL(t *testing.T) {
	c := New()
	pkg := func(name, ver, rel, arch string, epoch *int, srcName, srcVer string) *inventory.Package {
		return &inventory.Package{Name: name, Version: evr(epoch, ver, rel), Release: rel, Arch: arch, Epoch: epoch,
			SourceName: srcName, SourceVersion: srcVer, Type: inventory.TypeRPM}
	}
	for _, tc := range []struct {
		p    *inventory.Package
		os   *inventory.OS
		want string
	}{
		{pkg("libuuid", "2.32.1", "42.el8_8", "x86_64", nil, "util-linux", "2.32.1-42.el8_8"),
			&inventory.OS{ID: "rhel", VersionID: "8.8"},
			"pkg:rpm/redhat/libuuid@2.32.1-42.el8_8?arch=x86_64&distro=rhel-8.8&upstream=util-linux-2.32.1-42.el8_8.src.rpm"},
		{pkg("bind-license", "9.9.4", "61.el7_5.1", "noarch", intp(32), "bind", "32:9.9.4-61.el7_5.1"),
			&inventory.OS{ID: "centos", VersionID: "7"},
			"pkg:rpm/centos/bind-license@9.9.4-61.el7_5.1?arch=noarch&distro=centos-7&epoch=32&upstream=bind-9.9.4-61.el7_5.1.src.rpm"},
		{pkg("perl-Errno", "1.28", "416.el8", "x86_64", intp(0), "perl", "5.26.3-416.el8"),
			&inventory.OS{ID: "rocky", VersionID: "8.9"},
			"pkg:rpm/rocky/perl-Errno@1.28-416.el8?arch=x86_64&distro=rocky-8.9&epoch=0&upstream=perl-5.26.3-416.el8.src.rpm"},
		{pkg("libgcc_s1", "11.2.1+git610", "1.3.9", "x86_64", nil, "gcc11", "11.2.1+git610-1.3.9"),
			&inventory.OS{ID: "opensuse-leap", VersionID: "15.5"},
			"pkg:rpm/opensuse/libgcc_s1@11.2.1%2Bgit610-1.3.9?arch=x86_64&distro=opensuse-leap-15.5&upstream=gcc11-11.2.1%2Bgit610-1.3.9.src.rpm"},
		{pkg("gpg-pubkey", "352c64e5", "52ae6884", "", nil, "", ""),
			&inventory.OS{ID: "fedora"},
			"pkg:rpm/fedora/gpg-pubkey@352c64e5-52ae6884?distro=fedora"},
		{pkg("bash", "5.1.8", "1.cm2", "x86_64", nil, "bash", "5.1.8-1.cm2"), nil,
			"pkg:rpm/bash@5.1.8-1.cm2?arch=x86_64&upstream=bash-5.1.8-1.cm2.src.rpm"},
	} {
		if got := c.PURL(tc.p, tc.os); got != tc.want {
			t.Errorf("PURL(%s)\n got  %s\n want %s", tc.p.Name, got, tc.want)
		}
	}
}

func TestEVR(t *testing.T) {
	for _, tc := range []struct {
		epoch      *int
		v, r, want string
	}{
		{nil, "1.0", "1", "1.0-1"},
		{intp(0), "1.28", "416.el8", "1.28-416.el8"},
		{intp(2), "2.0.6", "1.module_el8", "2:2.0.6-1.module_el8"},
		{nil, "1.0", "", "1.0"},
	} {
		if got := evr(tc.epoch, tc.v, tc.r); got != tc.want {
			t.Errorf("evr = %q, want %q", got, tc.want)
		}
	}
}

// smallNDB builds a valid NDB database holding the k smallest package blobs
// of a real one: a quick seed for the fuzzer.
func smallNDB(t testing.TB, src []byte, k int) []byte {
	le := binary.LittleEndian
	type slot struct{ idx, off, blocks uint32 }
	var used []slot
	pages := int(le.Uint32(src[12:]))
	for i := 32; i+16 <= pages*4096; i += 16 {
		if le.Uint32(src[i+4:]) != 0 {
			used = append(used, slot{le.Uint32(src[i+4:]), le.Uint32(src[i+8:]), le.Uint32(src[i+12:])})
		}
	}
	sort.Slice(used, func(i, j int) bool { return used[i].blocks < used[j].blocks })
	out := make([]byte, 4096)
	copy(out, src[:32])
	le.PutUint32(out[12:], 1)
	for i := 32; i < 4096; i += 16 {
		le.PutUint32(out[i:], ndbSlotMagic)
	}
	for n, s := range used[:k] {
		at := 32 + 16*n
		le.PutUint32(out[at+4:], s.idx)
		le.PutUint32(out[at+8:], uint32(len(out)/16))
		le.PutUint32(out[at+12:], s.blocks)
		out = append(out, src[s.off*16:(s.off+s.blocks)*16]...)
	}
	return out
}

// smallSQLite builds an rpmdb.sqlite with the k smallest headers of a real one.
func smallSQLite(t testing.TB, src []byte, k int) []byte {
	srcPath := writeTemp(t, src)
	db, err := sql.Open("sqlite", "file:"+srcPath+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.Query("SELECT blob FROM Packages ORDER BY length(blob) LIMIT ?", k)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for rs.Next() {
		var b []byte
		if err := rs.Scan(&b); err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	rs.Close()
	dst := filepath.Join(t.TempDir(), "rpmdb.sqlite")
	out, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	stmts := []string{"PRAGMA page_size=1024", "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"}
	for _, s := range stmts {
		if _, err := out.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range blobs {
		if _, err := out.Exec("INSERT INTO Packages (blob) VALUES (?)", b); err != nil {
			t.Fatal(err)
		}
	}
	out.Close()
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallBDB builds a minimal BerkeleyDB hash file with 512-byte pages that
// holds one package header: a metadata page, one hash page with a key and
// an off-page value, and the overflow chain. It has only what go-rpmdb
// reads (real rpm would also want the bucket layout), which is what a fuzz
// seed needs.
func smallBDB(blob []byte) []byte {
	const ps = 512
	le := binary.LittleEndian
	per := ps - 26
	nOver := (len(blob) + per - 1) / per
	out := make([]byte, (2+nOver)*ps)
	meta := out[:ps]
	le.PutUint32(meta[12:], 0x00061561) // hash magic
	le.PutUint32(meta[16:], 9)          // hash version
	le.PutUint32(meta[20:], ps)
	meta[25] = 8 // hash metadata page
	le.PutUint32(meta[32:], uint32(1+nOver))
	hp := out[ps : 2*ps]
	le.PutUint32(hp[8:], 1)
	le.PutUint16(hp[20:], 2)               // one key/value pair
	le.PutUint16(hp[22:], ps-5-12)         // lowest item offset
	hp[25] = 13                            // sorted hash page
	le.PutUint16(hp[26:], ps-5)            // key
	le.PutUint16(hp[28:], ps-5-12)         // value
	copy(hp[ps-5:], []byte{1, 1, 0, 0, 0}) // H_KEYDATA, package number 1
	v := hp[ps-5-12:]
	v[0] = 3 // H_OFFPAGE
	le.PutUint32(v[4:], 2)
	le.PutUint32(v[8:], uint32(len(blob)))
	for i := range nOver {
		pg := out[(2+i)*ps : (3+i)*ps]
		chunk := blob[i*per : min(len(blob), (i+1)*per)]
		le.PutUint32(pg[8:], uint32(2+i))
		if i > 0 {
			le.PutUint32(pg[12:], uint32(1+i))
		}
		if i < nOver-1 {
			le.PutUint32(pg[16:], uint32(3+i))
		}
		le.PutUint16(pg[20:], 1)
		le.PutUint16(pg[22:], uint16(len(chunk)))
		pg[25] = 7 // overflow page
		copy(pg[26:], chunk)
	}
	return out
}

// smallDBs returns a small database of each format built from the fixtures.
func smallDBs(t testing.TB) map[string][]byte {
	sq := smallSQLite(t, fixtureData(t, fixtures[3]), 2)
	return map[string][]byte{
		"BerkeleyDB": smallBDB(firstSQLiteBlob(t, sq)),
		"NDB":        smallNDB(t, fixtureData(t, fixtures[2]), 2),
		"SQLite":     sq,
	}
}

func firstSQLiteBlob(t testing.TB, db []byte) []byte {
	h, err := sql.Open("sqlite", "file:"+writeTemp(t, db)+"?mode=ro&immutable=1")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var b []byte
	if err := h.QueryRow("SELECT blob FROM Packages LIMIT 1").Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSmallDBs checks the fuzz seeds themselves parse, so the fuzzer starts
// from valid databases of all three formats.
func TestSmallDBs(t *testing.T) {
	for name, b := range smallDBs(t) {
		pkgs, err := parse(t, New(), b)
		want := 2
		if name == "BerkeleyDB" {
			want = 1
		}
		if err != nil || len(pkgs) != want {
			t.Errorf("%s (%d bytes): %d packages, %v", name, len(b), len(pkgs), err)
			continue
		}
		chk, err := check(writeTemp(t, b), DefaultMaxSize, 0)
		if err != nil || chk.format != name {
			t.Errorf("%s detected as %q, %v", name, chk.format, err)
		}
		t.Logf("%s: %d bytes, %s %s", name, len(b), pkgs[0].Name, pkgs[0].Version)
	}
}

// FuzzParse feeds arbitrary bytes through SpoolFile to go-rpmdb: whatever
// the input, Parse must return (parse fails the test after a minute),
// without panicking and without leaving its spool file behind. The seeds
// are small databases of all three formats, since the fuzzer's work grows
// with input size; testdata/fuzz/FuzzParse adds damaged ones.
func FuzzParse(f *testing.F) {
	seeds := smallDBs(f)
	for _, name := range []string{"BerkeleyDB", "NDB", "SQLite"} {
		f.Add(seeds[name])
	}
	c := New()
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := parse(t, c, data)
		if err != nil && pkgs != nil {
			t.Errorf("error %v with %d packages", err, len(pkgs))
		}
	})
}

// BenchmarkParse parses each committed database; the largest is the
// 5.5 MB CentOS 5 BerkeleyDB.
func BenchmarkParse(b *testing.B) {
	for _, fx := range fixtures {
		data := fixtureData(b, fx)
		b.Run(fx.file, func(b *testing.B) {
			dir := b.TempDir()
			c := New()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var n int
			for b.Loop() {
				pkgs, err := c.Parse(context.Background(), input(data, dir))
				if err != nil {
					b.Fatal(err)
				}
				n = len(pkgs)
			}
			b.ReportMetric(float64(n), "pkgs/op")
		})
	}
}

// BenchmarkCheck measures the pre-read structure check alone: the price of
// not trusting go-rpmdb's reader goroutines with hostile files.
func BenchmarkCheck(b *testing.B) {
	for _, fx := range fixtures {
		path := writeTemp(b, fixtureData(b, fx))
		b.Run(fx.file, func(b *testing.B) {
			for b.Loop() {
				if _, err := check(path, DefaultMaxSize, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
