package java

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func TestBuildMatch(t *testing.T) {
	tests := map[string]bool{
		"pom.xml":                         true,
		"services/api/pom.xml":            true,
		"gradle.lockfile":                 true,
		"app/gradle.lockfile":             true,
		"buildscript-gradle.lockfile":     true,
		"gradle.lockfile.bak":             true, // syft's **/gradle.lockfile*
		"build.gradle":                    false,
		"META-INF/maven/a/b/pom.xml.sha1": false,
		"effective-pom.xml":               false,
	}
	c := NewLock()
	for p, want := range tests {
		if got := c.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

func parseBuild(t testing.TB, file string) []inventory.Package {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/" + file, Reader: f})
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return pkgs
}

func names(pkgs []inventory.Package, f func(inventory.Package) bool) []string {
	var out []string
	for _, p := range pkgs {
		if f(p) {
			out = append(out, p.Name+"@"+p.Version)
		}
	}
	sort.Strings(out)
	return out
}

// The "syft" lists are the purls syft v1.57.1 reports for each file
// (`syft scan dir:testdata/build -o json`; syft merges a package found in
// several files into one, so junit:junit@4.12, which three poms declare,
// appears there once).
func TestBuildFixtures(t *testing.T) {
	tests := []struct {
		file string
		syft []string
		skip []string // reported by syft, not by bulkhead
		dev  []string
		main []string
	}{
		{
			file: "mercury/gradle.lockfile",
			syft: []string{
				"pkg:maven/com.google.code.gson/gson@2.2.4", "pkg:maven/com.google.guava/guava@21.0",
				"pkg:maven/net.fabricmc/mapping-io@0.7.1", "pkg:maven/net.fabricmc/sponge-mixin@0.15.4%2Bmixin.0.8.7",
				"pkg:maven/net.fabricmc/tiny-remapper@0.11.0%2Blocal", "pkg:maven/org.apiguardian/apiguardian-api@1.1.2",
				"pkg:maven/org.cadixdev/bombe@0.3.4", "pkg:maven/org.cadixdev/lorenz-io-jam@0.5.7", "pkg:maven/org.cadixdev/lorenz@0.5.7",
				"pkg:maven/org.eclipse.jdt/ecj@3.40.0", "pkg:maven/org.eclipse.jdt/org.eclipse.jdt.core@3.40.0",
				"pkg:maven/org.eclipse.platform/org.eclipse.core.commands@3.12.200", "pkg:maven/org.eclipse.platform/org.eclipse.core.contenttype@3.9.600",
				"pkg:maven/org.eclipse.platform/org.eclipse.core.expressions@3.9.400", "pkg:maven/org.eclipse.platform/org.eclipse.core.filesystem@1.11.100",
				"pkg:maven/org.eclipse.platform/org.eclipse.core.jobs@3.15.400", "pkg:maven/org.eclipse.platform/org.eclipse.core.resources@3.22.0",
				"pkg:maven/org.eclipse.platform/org.eclipse.core.runtime@3.32.0", "pkg:maven/org.eclipse.platform/org.eclipse.equinox.app@1.7.200",
				"pkg:maven/org.eclipse.platform/org.eclipse.equinox.common@3.19.200", "pkg:maven/org.eclipse.platform/org.eclipse.equinox.preferences@3.11.200",
				"pkg:maven/org.eclipse.platform/org.eclipse.equinox.registry@3.12.200", "pkg:maven/org.eclipse.platform/org.eclipse.osgi@3.22.0",
				"pkg:maven/org.eclipse.platform/org.eclipse.text@3.14.200", "pkg:maven/org.jetbrains/annotations@26.0.2",
				"pkg:maven/org.junit.jupiter/junit-jupiter-api@5.11.4", "pkg:maven/org.junit.jupiter/junit-jupiter-engine@5.11.4",
				"pkg:maven/org.junit.jupiter/junit-jupiter-params@5.11.4", "pkg:maven/org.junit.platform/junit-platform-commons@1.11.4",
				"pkg:maven/org.junit.platform/junit-platform-engine@1.11.4", "pkg:maven/org.junit/junit-bom@5.11.4",
				"pkg:maven/org.opentest4j/opentest4j@1.3.0", "pkg:maven/org.osgi/org.osgi.service.prefs@1.1.2", "pkg:maven/org.osgi/osgi.annotation@8.0.1",
				"pkg:maven/org.ow2.asm/asm-analysis@9.6", "pkg:maven/org.ow2.asm/asm-analysis@9.7.1", "pkg:maven/org.ow2.asm/asm-commons@9.6",
				"pkg:maven/org.ow2.asm/asm-commons@9.7.1", "pkg:maven/org.ow2.asm/asm-tree@9.6", "pkg:maven/org.ow2.asm/asm-tree@9.7.1",
				"pkg:maven/org.ow2.asm/asm-util@9.6", "pkg:maven/org.ow2.asm/asm-util@9.7.1", "pkg:maven/org.ow2.asm/asm@9.6", "pkg:maven/org.ow2.asm/asm@9.7.1",
			},
			// Locked only in test* configurations (read off the file).
			dev: []string{
				"com.google.code.gson:gson@2.2.4", "com.google.guava:guava@21.0", "net.fabricmc:sponge-mixin@0.15.4+mixin.0.8.7",
				"org.apiguardian:apiguardian-api@1.1.2", "org.cadixdev:bombe@0.3.4", "org.cadixdev:lorenz-io-jam@0.5.7", "org.cadixdev:lorenz@0.5.7",
				"org.junit.jupiter:junit-jupiter-api@5.11.4", "org.junit.jupiter:junit-jupiter-engine@5.11.4", "org.junit.jupiter:junit-jupiter-params@5.11.4",
				"org.junit.platform:junit-platform-commons@1.11.4", "org.junit.platform:junit-platform-engine@1.11.4", "org.junit:junit-bom@5.11.4",
				"org.opentest4j:opentest4j@1.3.0", "org.ow2.asm:asm-analysis@9.6", "org.ow2.asm:asm-commons@9.6", "org.ow2.asm:asm-tree@9.6",
				"org.ow2.asm:asm-util@9.6", "org.ow2.asm:asm@9.6",
			},
		},
		{
			// The parent (org.apache.commons:commons-parent:42) holds the
			// versions of the plugins; the dependencies are literal.
			file: "syft-commons-codec/pom.xml",
			syft: []string{"pkg:maven/commons-codec/commons-codec@1.11", "pkg:maven/org.apache.commons/commons-lang3@3.5", "pkg:maven/junit/junit@4.12"},
			dev:  []string{"junit:junit@4.12", "org.apache.commons:commons-lang3@3.5"},
			main: []string{"commons-codec:commons-codec@1.11"},
		},
		{
			file: "syft-example-app/pom.xml",
			syft: []string{"pkg:maven/org.anchore/example-java-app-maven@0.1.0", "pkg:maven/com.joda/joda-time@2.9.2", "pkg:maven/junit/junit@4.12"},
			dev:  []string{"junit:junit@4.12"},
			main: []string{"org.anchore:example-java-app-maven@0.1.0"},
		},
		{
			file: "scalibr-interpolation/pom.xml",
			syft: []string{"pkg:maven/io.library/my-library@1.0-SNAPSHOT", "pkg:maven/org.mine/my.package@2.3.4", "pkg:maven/org.mine/mypackage@1.0.0", "pkg:maven/org.mine/ranged-package@%5B9.4.35.v20201120%2C9.5%29"},
			// A version range is a constraint, not a version.
			skip: []string{"pkg:maven/org.mine/ranged-package@%5B9.4.35.v20201120%2C9.5%29"},
			main: []string{"io.library:my-library@1.0-SNAPSHOT"},
		},
		{
			file: "scalibr-with-scope/pom.xml",
			syft: []string{"pkg:maven/abc/xyz@1.2.3", "pkg:maven/junit/junit@4.12"},
			dev:  []string{"junit:junit@4.12"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := parseBuild(t, filepath.Join("testdata/build", tt.file))
			var want []string
			for _, s := range tt.syft {
				if !slices.Contains(tt.skip, s) {
					want = append(want, s)
				}
			}
			sort.Strings(want)
			if got := purls(pkgs); !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			sort.Strings(tt.dev)
			if got := names(pkgs, func(p inventory.Package) bool { return p.Dev }); !slices.Equal(got, tt.dev) {
				t.Errorf("dev %q\nwant %q", got, tt.dev)
			}
			if got := names(pkgs, func(p inventory.Package) bool { return p.Main }); !slices.Equal(got, tt.main) {
				t.Errorf("main %q, want %q", got, tt.main)
			}
		})
	}
}

func TestPOMProperties(t *testing.T) {
	pom := `<?xml version="1.0" encoding="ISO-8859-1"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <parent><groupId>org.example</groupId><artifactId>parent</artifactId><version>7</version></parent>
  <artifactId>child</artifactId>
  <properties>
    <a>${b}${b}${b}${b}${b}${b}${b}${b}</a><b>${c}${c}${c}${c}${c}${c}${c}${c}</b>
    <c>${d}${d}${d}${d}${d}${d}${d}${d}</c><d>${e}${e}${e}${e}${e}${e}${e}${e}</d>
    <e>0123456789</e>
    <loop>${loop}</loop>
    <nested>${inner}</nested><inner>2.0</inner>
  </properties>
  <dependencies>
    <dependency><groupId>x</groupId><artifactId>laughs</artifactId><version>${a}</version></dependency>
    <dependency><groupId>x</groupId><artifactId>loop</artifactId><version>${loop}</version></dependency>
    <dependency><groupId>x</groupId><artifactId>undefined</artifactId><version>${nope}</version></dependency>
    <dependency><groupId>x</groupId><artifactId>managed</artifactId></dependency>
    <dependency><groupId>x</groupId><artifactId>nested</artifactId><version>${nested}</version></dependency>
    <dependency><groupId>${project.groupId}</groupId><artifactId>sibling</artifactId><version>${project.version}</version></dependency>
  </dependencies>
</project>`
	pkgs, err := ParsePOM(strings.NewReader(pom))
	if err != nil {
		t.Fatal(err)
	}
	got := names(pkgs, func(inventory.Package) bool { return true })
	want := []string{"org.example:child@7", "org.example:sibling@7", "x:nested@2.0"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"<project><dependencies>", "not xml", ""} {
		if _, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/a/pom.xml", Reader: strings.NewReader(bad)}); err == nil || !strings.Contains(err.Error(), "/a/pom.xml") {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestGradleOddLines(t *testing.T) {
	in := "# comment\n\na:b:1.0=compileClasspath\nbroken line\na:b=x\n:b:1=x\nc:d:2.0\nempty=\n" + strings.Repeat("x", maxGradleLine+1) + "\n"
	if _, err := ParseGradleLockfile(context.Background(), strings.NewReader(in)); err == nil {
		t.Error("over-long line accepted")
	}
	pkgs, err := ParseGradleLockfile(context.Background(), strings.NewReader(in[:strings.Index(in, "empty=")]))
	if err != nil {
		t.Fatal(err)
	}
	if got := names(pkgs, func(inventory.Package) bool { return true }); !slices.Equal(got, []string{"a:b@1.0", "c:d@2.0"}) {
		t.Errorf("got %q", got)
	}
}

func BenchmarkParseGradleLockfile(b *testing.B) {
	data, err := os.ReadFile("testdata/build/mercury/gradle.lockfile")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseGradleLockfile(context.Background(), strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParsePOM(b *testing.B) {
	data, err := os.ReadFile("testdata/build/syft-commons-codec/pom.xml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParsePOM(strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}

// lineReader repeats one line forever, without holding the whole input.
type lineReader struct {
	line string
	off  int
}

func (r *lineReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.line[r.off:])
		n += c
		r.off = (r.off + c) % len(r.line)
	}
	return n, nil
}

// A Gradle lockfile past MaxGradleLock fails, naming the file and the
// limit, though its Size claims it is small (the walk reports sizes, but a
// reader must not trust them).
func TestGradleLockfileTooLarge(t *testing.T) {
	in := catalog.Input{Path: "/app/gradle.lockfile", Reader: &lineReader{line: "# a comment line, no package\n"}, Size: 10}
	_, err := NewLock().Parse(context.Background(), in)
	var tl *catalog.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), fmt.Sprintf("Gradle lockfile /app/gradle.lockfile is over the %d-byte limit", MaxGradleLock)) {
		t.Errorf("err = %v, want a TooLargeError naming the file", err)
	}
}

// A Gradle lockfile listing more packages than the shared limit is
// rejected as it is read, not after all of them are held.
func TestGradleLockfileTooManyPackages(t *testing.T) {
	line := "a:b:1=x\n"
	r := io.LimitReader(&lineReader{line: line}, int64(len(line)*(catalog.MaxPackagesOr(0)+1)))
	_, err := ParseGradleLockfile(context.Background(), r)
	var tm *catalog.TooManyPackagesError
	if !errors.As(err, &tm) {
		t.Errorf("err = %v, want a TooManyPackagesError", err)
	}
}
