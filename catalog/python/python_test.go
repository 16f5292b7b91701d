package python

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

func TestMatch(t *testing.T) {
	// The accepted paths are those of syft's glob-paths fixture
	// (v.DIST-INFO, w.EGG-INFO, x.dist-info, y.egg-info, z.egg-info) and
	// Debian's layout.
	tests := map[string]bool{
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO":                true,
		"usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/METADATA":            true,
		"usr/lib/python3.11/site-packages/pycups-2.0.1.egg-info":                    true,
		"site-packages/v.DIST-INFO/METADATA":                                        true,
		"site-packages/w.EGG-INFO/PKG-INFO":                                         true,
		"opt/venv/lib/python3.12/site-packages/monotonic-1.6.egg/EGG-INFO/PKG-INFO": true,
		"x.dist-info/METADATA":                                                      true,
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info/top_level.txt":           false,
		"usr/lib/python3/dist-packages/chardet-5.1.0.dist-info/RECORD":              false,
		"usr/share/doc/METADATA":                                                    false,
		"srv/PKG-INFO":                                                              false,
		"usr/lib/python3/dist-packages/six.py":                                      false,
		"usr/lib/python3/dist-packages/foo.egg-info.bak":                            false,
	}
	c := New()
	for p, want := range tests {
		if got := c.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

func parseFile(t testing.TB, p string) (inventory.Package, bool) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkg, ok, err := ParseMetadata(f)
	if err != nil {
		t.Fatalf("ParseMetadata(%s): %v", p, err)
	}
	return pkg, ok
}

// The expectations were read off the fixtures with grep (Name:, Version:,
// License:, License-Expression:, Classifier: License ::, Author:).
func TestParseMetadataFixtures(t *testing.T) {
	tests := []struct {
		file       string
		want       inventory.Package
		maintainer string
	}{
		{"site-packages/Jinja2-3.1.2.egg-info/PKG-INFO", inventory.Package{Name: "Jinja2", Version: "3.1.2", PURL: "pkg:pypi/jinja2@3.1.2", Licenses: []string{"BSD-3-Clause"}}, ""},
		{"site-packages/MarkupSafe-2.1.2.egg-info/PKG-INFO", inventory.Package{Name: "MarkupSafe", Version: "2.1.2", PURL: "pkg:pypi/markupsafe@2.1.2", Licenses: []string{"BSD-3-Clause"}}, ""},
		{"site-packages/certifi-2022.9.24.egg-info/PKG-INFO", inventory.Package{Name: "certifi", Version: "2022.9.24", PURL: "pkg:pypi/certifi@2022.9.24", Licenses: []string{"MPL-2.0"}}, "Kenneth Reitz"},
		{"site-packages/six-1.16.0.egg-info/PKG-INFO", inventory.Package{Name: "six", Version: "1.16.0", PURL: "pkg:pypi/six@1.16.0", Licenses: []string{"MIT"}}, "Benjamin Peterson"},
		{"site-packages/urllib3-1.26.12.egg-info/PKG-INFO", inventory.Package{Name: "urllib3", Version: "1.26.12", PURL: "pkg:pypi/urllib3@1.26.12", Licenses: []string{"MIT"}}, "Andrey Petrov"},
		{"site-packages/requests-2.28.1.egg-info/PKG-INFO", inventory.Package{Name: "requests", Version: "2.28.1", PURL: "pkg:pypi/requests@2.28.1", Licenses: []string{"Apache 2.0"}}, "Kenneth Reitz"},
		{"site-packages/idna-3.3.egg-info/PKG-INFO", inventory.Package{Name: "idna", Version: "3.3", PURL: "pkg:pypi/idna@3.3", Licenses: []string{"BSD-3-Clause"}}, "Kim Davies"},
		{"site-packages/chardet-5.1.0.dist-info/METADATA", inventory.Package{Name: "chardet", Version: "5.1.0", PURL: "pkg:pypi/chardet@5.1.0", Licenses: []string{"LGPL"}}, "Mark Pilgrim"},
		{"site-packages/python_apt-2.6.0.egg-info/PKG-INFO", inventory.Package{Name: "python-apt", Version: "2.6.0", PURL: "pkg:pypi/python-apt@2.6.0", Licenses: []string{"GNU GPL"}}, "APT Development Team"},
		// The License field wins over the classifiers.
		{"site-packages/python_debian-0.1.49.egg-info/PKG-INFO", inventory.Package{Name: "python-debian", Version: "0.1.49", PURL: "pkg:pypi/python-debian@0.1.49", Licenses: []string{"GPL-2+"}}, ""},
		// The single-file form: distutils' egg-info.
		{"site-packages/pycups-2.0.1.egg-info", inventory.Package{Name: "pycups", Version: "2.0.1", PURL: "pkg:pypi/pycups@2.0.1", Licenses: []string{"GPLv2+"}}, "Zdenek Dohnal"},
		// Metadata 2.4 with a PEP 639 License-Expression.
		{"modern/flask-3.1.3.dist-info/METADATA", inventory.Package{Name: "Flask", Version: "3.1.3", PURL: "pkg:pypi/flask@3.1.3", Licenses: []string{"BSD-3-Clause"}}, ""},
		{"modern/urllib3-2.7.0.dist-info/METADATA", inventory.Package{Name: "urllib3", Version: "2.7.0", PURL: "pkg:pypi/urllib3@2.7.0", Licenses: []string{"MIT"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, ok := parseFile(t, filepath.Join("testdata", tt.file))
			if !ok {
				t.Fatal("no package")
			}
			if got.Name != tt.want.Name || got.Version != tt.want.Version || got.PURL != tt.want.PURL || got.Type != inventory.TypePyPI {
				t.Errorf("got %s %s %s %s, want %s %s %s", got.Name, got.Version, got.PURL, got.Type, tt.want.Name, tt.want.Version, tt.want.PURL)
			}
			if !slices.Equal(got.Licenses, tt.want.Licenses) {
				t.Errorf("licenses %q, want %q", got.Licenses, tt.want.Licenses)
			}
			if tt.maintainer != "" && got.Maintainer != tt.maintainer {
				t.Errorf("maintainer %q, want %q", got.Maintainer, tt.maintainer)
			}
		})
	}
}

// TestMatchesImportlib compares the cataloger with Python's own reading of
// the same site-packages directories: importlib.metadata.distributions.
func TestMatchesImportlib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	for _, dir := range []string{"testdata/site-packages", "testdata/modern"} {
		t.Run(dir, func(t *testing.T) {
			script := `import importlib.metadata as m, sys
for d in m.distributions(path=[sys.argv[1]]):
    print(d.metadata["Name"], d.version)`
			out, err := exec.Command(py, "-c", script, dir).Output()
			if err != nil {
				t.Fatalf("python3: %v", err)
			}
			want := strings.Split(strings.TrimSpace(string(out)), "\n")
			sort.Strings(want)
			got := catalogDir(t, dir)
			if !slices.Equal(got, want) {
				t.Errorf("bulkhead %q\nimportlib %q", got, want)
			}
		})
	}
}

// catalogDir offers every file under dir to the cataloger, as the walk
// does, and returns "name version" lines.
func catalogDir(t *testing.T, dir string) []string {
	t.Helper()
	c := New()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if !c.Match(filepath.ToSlash(rel)) {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		pkgs, err := c.Parse(context.Background(), catalog.Input{Path: "/" + rel, Reader: f})
		if err != nil {
			return err
		}
		for _, p := range pkgs {
			out = append(out, p.Name+" "+p.Version)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestParseMetadataOddInput(t *testing.T) {
	long := strings.Repeat("x", MaxLine+10)
	tests := []struct {
		name, in    string
		ok          bool
		name_, vers string
		licenses    []string
	}{
		{"empty", "", false, "", "", nil},
		{"no version", "Metadata-Version: 2.1\nName: foo\n\nVersion: 1.0\n", false, "", "", nil},
		{"body after blank line is ignored", "Name: foo\nVersion: 1.0\n\nLicense: GPL\n", true, "foo", "1.0", nil},
		{"CRLF", "Name: foo\r\nVersion: 1.0\r\nLicense: MIT\r\n\r\n", true, "foo", "1.0", []string{"MIT"}},
		{"leading blank lines", "\n\nName: foo\nVersion: 1.0\n", true, "foo", "1.0", nil},
		{"interpreter", "Metadata-Version: 1.0\nName: Python\nVersion: 2.7\n", false, "", "", nil},
		{"licence text in License", "Name: foo\nVersion: 1\nLicense: Copyright (c) 2020\n        Permission is hereby granted\nClassifier: License :: OSI Approved :: MIT License\n", true, "foo", "1", []string{"MIT"}},
		{"UNKNOWN licence", "Name: foo\nVersion: 1\nLicense: UNKNOWN\n", true, "foo", "1", nil},
		{"over-long field dropped", "Name: foo\nVersion: 1\nLicense: " + long + "\n", true, "foo", "1", nil},
		{"over-long unrelated line", "Name: foo\nDescription: " + long + "\nVersion: 2\n", true, "foo", "2", nil},
		{"bad name", "Name: foo bar\nVersion: 1\n", false, "", "", nil},
		{"no trailing newline", "Name: foo\nVersion: 1.0", true, "foo", "1.0", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok, err := ParseMetadata(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok || (ok && (p.Name != tt.name_ || p.Version != tt.vers || !slices.Equal(p.Licenses, tt.licenses))) {
				t.Errorf("got %v %q %q %q", ok, p.Name, p.Version, p.Licenses)
			}
		})
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestParseReadError(t *testing.T) {
	_, err := New().Parse(context.Background(), catalog.Input{Path: "/x.egg-info", Reader: failReader{}})
	if err == nil || !strings.Contains(err.Error(), "/x.egg-info") {
		t.Errorf("err = %v", err)
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"Jinja2":            "jinja2",
		"python_apt":        "python-apt",
		"FrIeNdLy-_-bArD":   "friendly-bard",
		"dots-._allowed":    "dots-allowed",
		"zope.interface":    "zope-interface",
		"typing_extensions": "typing-extensions",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCollectorOverLayer runs the cataloger inside the streaming walk over
// a layer holding the Debian dist-packages fixtures, to check that Match
// selects them there and the Collector attributes them.
func TestCollectorOverLayer(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	var want []string
	err := filepath.WalkDir("testdata/site-packages", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/site-packages", p)
		name := "usr/lib/python3/dist-packages/" + filepath.ToSlash(rel)
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		want = append(want, "/"+name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
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
		if p.FoundBy != "python" {
			t.Errorf("FoundBy %q", p.FoundBy)
		}
		got = append(got, p.Locations[0].Path)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("locations %q\nwant %q", got, want)
	}
}

func BenchmarkParseMetadata(b *testing.B) {
	data, err := os.ReadFile("testdata/site-packages/Jinja2-3.1.2.egg-info/PKG-INFO")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := ParseMetadata(bytes.NewReader(data)); err != nil || !ok {
			b.Fatal(err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	c := New()
	paths := []string{
		"usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
		"usr/lib/python3/dist-packages/six.py",
		"usr/share/doc/libc6/changelog.Debian.gz",
		"usr/bin/python3.11",
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			c.Match(p)
		}
	}
}
