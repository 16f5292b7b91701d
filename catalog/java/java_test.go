package java

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"maps"
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
	tests := map[string]bool{
		"usr/share/java/commons-lang3.jar":         true,
		"opt/tomcat/webapps/app.war":               true,
		"opt/jboss/app.ear":                        true,
		"var/jenkins_home/plugins/git.jpi":         true,
		"var/jenkins_home/plugins/git.hpi":         true,
		"opt/app/lib/x.par":                        true,
		"usr/share/java/commons-lang3.jar.sha1":    false,
		"usr/share/java/":                          false,
		".jar":                                     false,
		"usr/share/java/JUNIT.JAR":                 false, // syft's globs are case-sensitive too
		"usr/lib/jvm/java-17/lib/modules":          false,
		"usr/share/maven-repo/foo/1.0/foo-1.0.pom": false,
	}
	c := New()
	for p, want := range tests {
		if got := c.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

func parseBytes(t testing.TB, c *Cataloger, name string, b []byte) ([]inventory.Package, error) {
	t.Helper()
	return c.Parse(context.Background(), catalog.Input{
		Path: name, Reader: bytes.NewReader(b), Size: int64(len(b)), TempDir: t.TempDir(),
		ReaderAt: func() (io.ReaderAt, error) { return bytes.NewReader(b), nil },
	})
}

func parseJar(t testing.TB, c *Cataloger, file string) []inventory.Package {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := parseBytes(t, c, "/usr/share/java/"+filepath.Base(file), b)
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return pkgs
}

func purls(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, p.PURL)
	}
	sort.Strings(out)
	return out
}

// TestJarsMatchSyft checks the Debian jars against what syft v1.57.1
// reports for them (`syft scan dir:testdata/jars -o json`).
func TestJarsMatchSyft(t *testing.T) {
	tests := []struct {
		jar, name, purl string
		licenses        []string
	}{
		{"commons-lang3-3.12.0.jar", "org.apache.commons:commons-lang3", "pkg:maven/org.apache.commons/commons-lang3@3.12.0", nil},
		{"jackson-core-2.14.1.jar", "com.fasterxml.jackson.core:jackson-core", "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.14.1", nil},
		{"slf4j-api-1.7.32.jar", "org.slf4j:slf4j-api", "pkg:maven/org.slf4j/slf4j-api@1.7.32", nil},
		{"slf4j-simple-1.7.32.jar", "org.slf4j:slf4j-simple", "pkg:maven/org.slf4j/slf4j-simple@1.7.32", nil},
		// No pom.properties: named from the manifest and file name, the
		// group from Bundle-SymbolicName, as syft does.
		{"jzlib-1.1.3.jar", "com.jcraft.jzlib:jzlib", "pkg:maven/com.jcraft.jzlib/jzlib@1.1.3", nil},
		{"xz-1.9.jar", "org.tukaani.xz:xz", "pkg:maven/org.tukaani.xz/xz@1.9", nil},
		// The manifest holds only Manifest-Version: syft names the jar
		// from its file name alone
		// (pkg:maven/hamcrest-integration/hamcrest-integration@1.3.1-SNAPSHOT);
		// bulkhead does not guess, and identifies such jars only by
		// SHA-1 (TestSHA1Index).
		{"hamcrest-integration-1.3.1-SNAPSHOT.jar", "", "", nil},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.jar, func(t *testing.T) {
			pkgs := parseJar(t, c, filepath.Join("testdata/jars", tt.jar))
			if tt.purl == "" {
				if len(pkgs) != 0 {
					t.Errorf("got %+v, want nothing", pkgs)
				}
				return
			}
			if len(pkgs) != 1 {
				t.Fatalf("got %d packages: %+v", len(pkgs), pkgs)
			}
			p := pkgs[0]
			if p.Name != tt.name || p.PURL != tt.purl || p.Type != inventory.TypeMaven || len(p.Locations) != 0 {
				t.Errorf("got %+v", p)
			}
			if !slices.Equal(p.Licenses, tt.licenses) {
				t.Errorf("licenses %q", p.Licenses)
			}
		})
	}
}

// TestJarsMatchUnzip compares with the ecosystem's own view: unzip -p of
// every pom.properties in the jar.
func TestJarsMatchUnzip(t *testing.T) {
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		t.Skip("unzip not installed")
	}
	jars, _ := filepath.Glob("testdata/jars/*.jar")
	c := New()
	for _, j := range jars {
		out, err := exec.Command(unzip, "-p", j, "META-INF/maven/*/*/pom.properties").Output()
		if err != nil {
			continue // no pom.properties: unzip exits 11
		}
		var want []string
		props := parseProperties(out)
		want = append(want, "pkg:maven/"+props["groupId"]+"/"+props["artifactId"]+"@"+props["version"])
		if got := purls(parseJar(t, c, j)); !slices.Equal(got, want) {
			t.Errorf("%s: got %q, unzip says %q", j, got, want)
		}
	}
}

type entry struct {
	name   string
	data   []byte
	stored bool
}

func buildZip(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.stored {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func jar(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/jars", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mergeJars copies every entry of the jars into one, as the Maven Shade
// plugin does (the first copy of a duplicate entry wins).
func mergeJars(t testing.TB, names ...string) []byte {
	t.Helper()
	var entries []entry
	seen := map[string]bool{}
	for _, n := range names {
		b := jar(t, n)
		zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range zr.File {
			if seen[f.Name] || strings.HasSuffix(f.Name, "/") {
				continue
			}
			seen[f.Name] = true
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, entry{name: f.Name, data: data})
		}
	}
	return buildZip(t, entries...)
}

type found struct{ purl, loc string }

func founds(pkgs []inventory.Package) []found {
	var out []found
	for _, p := range pkgs {
		f := found{purl: p.PURL}
		if len(p.Locations) > 0 {
			f.loc = p.Locations[0].Path
		}
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].purl+out[i].loc < out[j].purl+out[j].loc })
	return out
}

const (
	lang3   = "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
	slf4j   = "pkg:maven/org.slf4j/slf4j-api@1.7.32"
	simple  = "pkg:maven/org.slf4j/slf4j-simple@1.7.32"
	jackson = "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.14.1"
	xz      = "pkg:maven/org.tukaani.xz/xz@1.9"
	jzlib   = "pkg:maven/com.jcraft.jzlib/jzlib@1.1.3"
)

// TestNestedArchives builds a war, an ear, a Spring Boot style fat jar and
// a shaded jar from the real Debian jars.
func TestNestedArchives(t *testing.T) {
	webXML := entry{name: "WEB-INF/web.xml", data: []byte(`<web-app/>`)}
	war := buildZip(t, webXML,
		entry{name: "WEB-INF/lib/commons-lang3-3.12.0.jar", data: jar(t, "commons-lang3-3.12.0.jar")},
		entry{name: "WEB-INF/lib/slf4j-api-1.7.32.jar", data: jar(t, "slf4j-api-1.7.32.jar"), stored: true},
		entry{name: "WEB-INF/lib/xz-1.9.jar", data: jar(t, "xz-1.9.jar")},
	)
	ear := buildZip(t,
		entry{name: "META-INF/application.xml", data: []byte(`<application/>`)},
		entry{name: "web.war", data: war},
		entry{name: "lib/jackson-core-2.14.1.jar", data: jar(t, "jackson-core-2.14.1.jar")},
	)
	fat := buildZip(t,
		entry{name: "META-INF/MANIFEST.MF", data: []byte("Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\n\r\n")},
		entry{name: "BOOT-INF/lib/jzlib-1.1.3.jar", data: jar(t, "jzlib-1.1.3.jar"), stored: true},
		entry{name: "BOOT-INF/lib/slf4j-simple-1.7.32.jar", data: jar(t, "slf4j-simple-1.7.32.jar"), stored: true},
	)
	shaded := mergeJars(t, "slf4j-simple-1.7.32.jar", "slf4j-api-1.7.32.jar", "commons-lang3-3.12.0.jar")

	tests := []struct {
		name string
		data []byte
		want []found
	}{
		{"/srv/app.war", war, []found{
			{lang3, "/srv/app.war:WEB-INF/lib/commons-lang3-3.12.0.jar"},
			{xz, "/srv/app.war:WEB-INF/lib/xz-1.9.jar"},
			{slf4j, "/srv/app.war:WEB-INF/lib/slf4j-api-1.7.32.jar"},
		}},
		{"/srv/app.ear", ear, []found{
			{lang3, "/srv/app.ear:web.war:WEB-INF/lib/commons-lang3-3.12.0.jar"},
			{jackson, "/srv/app.ear:lib/jackson-core-2.14.1.jar"},
			{xz, "/srv/app.ear:web.war:WEB-INF/lib/xz-1.9.jar"},
			{slf4j, "/srv/app.ear:web.war:WEB-INF/lib/slf4j-api-1.7.32.jar"},
		}},
		// The launcher's manifest names no package: the fat jar itself is
		// not identified; its libraries are.
		{"/app/app.jar", fat, []found{
			{jzlib, "/app/app.jar:BOOT-INF/lib/jzlib-1.1.3.jar"},
			{simple, "/app/app.jar:BOOT-INF/lib/slf4j-simple-1.7.32.jar"},
		}},
		// One package per pom.properties, at the archive itself.
		{"/app/shaded.jar", shaded, []found{{lang3, ""}, {slf4j, ""}, {simple, ""}}},
	}
	c := New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, err := parseBytes(t, c, tt.name, tt.data)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tt.want)
			sort.Slice(want, func(i, j int) bool { return want[i].purl+want[i].loc < want[j].purl+want[j].loc })
			if got := founds(pkgs); !slices.Equal(got, want) {
				t.Errorf("got  %v\nwant %v", got, want)
			}
		})
	}
}

// partialProblems returns the problems of a PartialError, failing the test
// when err is not one.
func partialProblems(t *testing.T, err error) []string {
	t.Helper()
	var pe *catalog.PartialError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a catalog.PartialError", err)
	}
	var out []string
	for _, p := range pe.Problems {
		out = append(out, p.Error())
	}
	return out
}

func TestDepthLimit(t *testing.T) {
	// xz at depth 6: a.jar > l1.jar > ... > l5.jar > xz-1.9.jar.
	inner := jar(t, "xz-1.9.jar")
	name := "xz-1.9.jar"
	for i := 5; i >= 1; i-- {
		inner = buildZip(t, entry{name: "lib/" + name, data: inner})
		name = "l" + string(rune('0'+i)) + ".jar"
	}
	pkgs, err := parseBytes(t, New(WithLimits(6, 0, 0, 0)), "/a.jar", inner)
	if err != nil || len(pkgs) != 1 {
		t.Fatalf("depth 6: %d packages, %v", len(pkgs), err)
	}
	if pkgs[0].Locations[0].Path != "/a.jar:lib/l2.jar:lib/l3.jar:lib/l4.jar:lib/l5.jar:lib/xz-1.9.jar" {
		t.Errorf("location %q", pkgs[0].Locations[0].Path)
	}
	// Under a lower limit the jar is not opened, and that is said.
	pkgs, err = parseBytes(t, New(WithLimits(4, 0, 0, 0)), "/a.jar", inner)
	if len(pkgs) != 0 {
		t.Errorf("depth 4: %d packages", len(pkgs))
	}
	probs := partialProblems(t, err)
	if len(probs) != 1 || !strings.Contains(probs[0], "/a.jar:lib/l2.jar:lib/l3.jar:lib/l4.jar:lib/l5.jar:lib/xz-1.9.jar: nested 5 archives deep, over the limit of 4") {
		t.Errorf("depth 4: problems %q", probs)
	}
}

// TestTooDeepBesideALibrary: a library hidden too deep in an archive that
// also holds a visible one was dropped without a word; the scan now warns,
// naming the nested path, and keeps the visible library.
func TestTooDeepBesideALibrary(t *testing.T) {
	hidden := buildZip(t, entry{name: "x/l2.jar", data: buildZip(t, entry{name: "l3.jar", data: jar(t, "xz-1.9.jar")})})
	app := buildZip(t,
		entry{name: "WEB-INF/lib/slf4j-api-1.7.32.jar", data: jar(t, "slf4j-api-1.7.32.jar")},
		entry{name: "WEB-INF/lib/l1.jar", data: hidden},
	)
	col := collectLayer(t, New(WithLimits(2, 0, 0, 0)), map[string][]byte{"srv/app.war": app})
	if got := founds(col.Packages()); len(got) != 1 || got[0].purl != slf4j {
		t.Errorf("packages %v, want slf4j alone", got)
	}
	w := col.Warnings()
	want := "java: /srv/app.war: /srv/app.war:WEB-INF/lib/l1.jar:x/l2.jar:l3.jar: nested 3 archives deep, over the limit of 2"
	if len(w) != 1 || !strings.HasPrefix(w[0], want) {
		t.Errorf("warnings %q, want one starting %q", w, want)
	}
}

// collectLayer runs the cataloger in a walk over one layer of files.
func collectLayer(t *testing.T, c catalog.Cataloger, files map[string][]byte) *catalog.Collector {
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

func TestZipBomb(t *testing.T) {
	zeros := make([]byte, 20<<20)
	bomb := buildZip(t, entry{name: "WEB-INF/lib/bomb.jar", data: zeros})
	_, err := parseBytes(t, New(), "/bomb.war", bomb)
	if err == nil || !strings.Contains(err.Error(), "ratio") || !strings.Contains(err.Error(), "bomb.jar") {
		t.Errorf("err = %v", err)
	}
	// Next to a real library, the bomb is skipped, the library found, and
	// the bomb named in a warning (it used to be dropped silently).
	mixed := buildZip(t,
		entry{name: "WEB-INF/lib/bomb.jar", data: zeros},
		entry{name: "WEB-INF/lib/slf4j-api-1.7.32.jar", data: jar(t, "slf4j-api-1.7.32.jar")},
	)
	pkgs, err := parseBytes(t, New(), "/mixed.war", mixed)
	if len(pkgs) != 1 || pkgs[0].PURL != slf4j {
		t.Errorf("got %+v", pkgs)
	}
	if probs := partialProblems(t, err); len(probs) != 1 || !strings.HasPrefix(probs[0], "/mixed.war:WEB-INF/lib/bomb.jar: ") || !strings.Contains(probs[0], "ratio") {
		t.Errorf("problems %q", probs)
	}
	col := collectLayer(t, New(), map[string][]byte{"app/mixed.war": mixed})
	if w := col.Warnings(); len(w) != 1 || !strings.HasPrefix(w[0], "java: /app/mixed.war: /app/mixed.war:WEB-INF/lib/bomb.jar: ") || !strings.Contains(w[0], "zip bomb") {
		t.Errorf("warnings %q", w)
	}
	if n := len(col.Packages()); n != 1 {
		t.Errorf("%d packages through the Collector", n)
	}
	// Entry size and total limits.
	lib := buildZip(t, entry{name: "lib/commons-lang3.jar", data: jar(t, "commons-lang3-3.12.0.jar")})
	if _, err := parseBytes(t, New(WithLimits(0, 100<<10, 0, 0)), "/x.ear", lib); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("entry limit: err = %v", err)
	}
	if _, err := parseBytes(t, New(WithLimits(0, 0, 100<<10, 0)), "/x.ear", lib); err == nil || !strings.Contains(err.Error(), "in all") {
		t.Errorf("total limit: err = %v", err)
	}
}

func TestLyingSizes(t *testing.T) {
	// A stored nested jar whose header declares more bytes than it holds:
	// patch the central directory's uncompressed size.
	inner := jar(t, "slf4j-api-1.7.32.jar")
	outer := buildZip(t, entry{name: "lib/a.jar", data: inner})
	zr, _ := zip.NewReader(bytes.NewReader(outer), int64(len(outer)))
	declared := zr.File[0].UncompressedSize64
	// Central directory header: uncompressed size at offset 24.
	cd := bytes.LastIndex(outer, []byte("PK\x01\x02"))
	b := slices.Clone(outer)
	b[cd+24] ^= 0x01
	_, err := parseBytes(t, New(), "/lie.war", b)
	if err == nil {
		t.Errorf("a size mismatch (declared %d) went unnoticed", declared)
	}
}

func TestBadArchives(t *testing.T) {
	corrupt, err := os.ReadFile("testdata/corrupt/example.jar")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseBytes(t, New(), "/corrupt/example.jar", corrupt); err == nil || !strings.Contains(err.Error(), "/corrupt/example.jar") {
		t.Errorf("corrupt jar: err = %v", err)
	}
	// .rar is also RAR's extension: not being a zip is no error there.
	if pkgs, err := parseBytes(t, New(), "/x/archive.rar", []byte("Rar!\x1a\x07\x00")); err != nil || pkgs != nil {
		t.Errorf("rar: %v %v", pkgs, err)
	}
	// Without ReaderAt, the input is buffered.
	b := jar(t, "slf4j-api-1.7.32.jar")
	pkgs, err := New().Parse(context.Background(), catalog.Input{Path: "/a.jar", Reader: bytes.NewReader(b), Size: int64(len(b)), TempDir: t.TempDir()})
	if err != nil || len(pkgs) != 1 {
		t.Errorf("stream input: %v %+v", err, pkgs)
	}
}

func TestSHA1Index(t *testing.T) {
	b := jar(t, "hamcrest-integration-1.3.1-SNAPSHOT.jar")
	sum := sha1.Sum(b)
	csv := "sha1,group,artifact,version\n# Debian's hamcrest-integration\n" + hex.EncodeToString(sum[:]) + ",org.hamcrest,hamcrest-integration,1.3.1-SNAPSHOT\n"
	file := filepath.Join(t.TempDir(), "index.csv")
	if err := os.WriteFile(file, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	idx, err := LoadSHA1Index(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "pkg:maven/org.hamcrest/hamcrest-integration@1.3.1-SNAPSHOT"
	pkgs, err := parseBytes(t, New(WithSHA1Index(idx)), "/a.jar", b)
	if err != nil || len(pkgs) != 1 || pkgs[0].PURL != want {
		t.Errorf("with index: %v %+v", err, pkgs)
	}
	// Nested, and through the environment variable.
	t.Setenv(SHA1IndexEnv, file)
	war := buildZip(t, entry{name: "WEB-INF/lib/h.jar", data: b})
	pkgs, err = parseBytes(t, New(), "/a.war", war)
	if err != nil || len(pkgs) != 1 || pkgs[0].PURL != want || pkgs[0].Locations[0].Path != "/a.war:WEB-INF/lib/h.jar" {
		t.Errorf("from env: %v %+v", err, pkgs)
	}
	// A broken index is reported where it was needed.
	t.Setenv(SHA1IndexEnv, filepath.Join(t.TempDir(), "missing.csv"))
	if _, err := parseBytes(t, New(), "/a.jar", b); err == nil || !strings.Contains(err.Error(), SHA1IndexEnv) {
		t.Errorf("missing index: err = %v", err)
	}
	for _, bad := range []string{"xyz,a,b,c\n", "0123,a,b\n", strings.Repeat("a", 40) + ",g,,1\n"} {
		if _, err := ReadSHA1Index(strings.NewReader(bad)); err == nil {
			t.Errorf("ReadSHA1Index(%q) accepted", bad)
		}
	}
}

func TestManifest(t *testing.T) {
	tests := []struct {
		name, file, mf string
		purl           string
	}{
		{"bundle plugin", "x.jar", "Manifest-Version: 1.0\nCreated-By: Apache Maven Bundle Plugin\nBundle-SymbolicName: org.example.widget\nBundle-Version: 2.1.0\n", "pkg:maven/org.example.widget/widget@2.1.0"},
		{"title and version", "x.jar", "Implementation-Title: Widget\nImplementation-Version: 1.2\nImplementation-Vendor-Id: com.example\n", "pkg:maven/com.example/x@1.2"},
		{"version in a later section", "widget.jar", "Manifest-Version: 1.0\nName: Widget\n\nName: org/example/\nSpecification-Version: 3.0\n", "pkg:maven/widget@3.0"},
		{"continuation", "w.jar", "Implementation-Title: w\nImplementation-Version: 1.\n 2.3\n", "pkg:maven/w@1.2.3"},
		{"weaver", "w-1.0.jar", "Implementation-Title: w\nWeave-Classes: a.b\n", ""},
		{"bare", "w-1.0.jar", "Manifest-Version: 1.0\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, ok := parseManifest([]byte(tt.mf)).pkg(tt.file)
			if got := p.PURL; (ok && got != tt.purl) || (!ok && tt.purl != "") {
				t.Errorf("got %v %q, want %q", ok, got, tt.purl)
			}
		})
	}
}

// TestCollectorOverLayer runs the cataloger in the streaming walk over a
// layer holding a war, so that it reads through the walk's ReaderAt.
func TestCollectorOverLayer(t *testing.T) {
	war := buildZip(t, entry{name: "WEB-INF/lib/commons-lang3-3.12.0.jar", data: jar(t, "commons-lang3-3.12.0.jar")})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string][]byte{
		"usr/local/tomcat/webapps/app.war":    war,
		"usr/share/java/slf4j-api-1.7.32.jar": jar(t, "slf4j-api-1.7.32.jar"),
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
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
		var locs []string
		for _, l := range p.Locations {
			locs = append(locs, l.Path)
		}
		got = append(got, p.PURL+" "+strings.Join(locs, " "))
	}
	sort.Strings(got)
	want := []string{
		lang3 + " /usr/local/tomcat/webapps/app.war /usr/local/tomcat/webapps/app.war:WEB-INF/lib/commons-lang3-3.12.0.jar",
		slf4j + " /usr/share/java/slf4j-api-1.7.32.jar",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func BenchmarkParseJar(b *testing.B) {
	data := jar(b, "commons-lang3-3.12.0.jar")
	c := New()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseBytes(b, c, "/a.jar", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseWar(b *testing.B) {
	data := buildZip(b,
		entry{name: "WEB-INF/lib/commons-lang3-3.12.0.jar", data: jar(b, "commons-lang3-3.12.0.jar")},
		entry{name: "WEB-INF/lib/jackson-core-2.14.1.jar", data: jar(b, "jackson-core-2.14.1.jar")},
		entry{name: "WEB-INF/lib/slf4j-api-1.7.32.jar", data: jar(b, "slf4j-api-1.7.32.jar"), stored: true},
	)
	c := New()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseBytes(b, c, "/a.war", data); err != nil {
			b.Fatal(err)
		}
	}
}
