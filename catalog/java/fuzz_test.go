package java

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

func addFiles(f *testing.F, patterns ...string) {
	for _, pat := range patterns {
		files, _ := filepath.Glob(pat)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

func checkPackages(t *testing.T, pkgs []inventory.Package) {
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" || p.Type != inventory.TypeMaven || p.PURL == "" {
			t.Fatalf("bad package %+v", p)
		}
	}
}

// FuzzParseArchive feeds arbitrary bytes to the archive cataloger as a war.
// Seeds are small real jars and a war nesting one; the fuzzer mutates zip
// structure (sizes, offsets, methods).
func FuzzParseArchive(f *testing.F) {
	addFiles(f, "testdata/jars/slf4j-simple-1.7.32.jar", "testdata/jars/hamcrest-integration-1.3.1-SNAPSHOT.jar", "testdata/corrupt/example.jar")
	f.Add(buildZip(f, entry{name: "WEB-INF/lib/a.jar", data: jar(f, "hamcrest-integration-1.3.1-SNAPSHOT.jar"), stored: true},
		entry{name: "META-INF/maven/g/a/pom.properties", data: []byte("groupId=g\nartifactId=a\nversion=1\n")}))
	c := New(WithLimits(3, 8<<20, 32<<20, 0))
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, _ := parseBytes(t, c, "/a.war", in)
		checkPackages(t, pkgs)
	})
}

func FuzzParsePOM(f *testing.F) {
	addFiles(f, "testdata/build/*/pom.xml")
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, _ := ParsePOM(bytes.NewReader(in))
		checkPackages(t, pkgs)
	})
}

func FuzzParseGradleLockfile(f *testing.F) {
	addFiles(f, "testdata/build/*/gradle.lockfile")
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, _ := ParseGradleLockfile(context.Background(), bytes.NewReader(in))
		checkPackages(t, pkgs)
	})
}

func FuzzManifest(f *testing.F) {
	f.Add([]byte("Manifest-Version: 1.0\r\nCreated-By: Apache Maven Bundle Plugin\r\nBundle-SymbolicName: org.a.b;singleton:=true\r\nBundle-Version: 1\r\n"), "a-1.0.jar")
	f.Add([]byte("Implementation-Title: x\nImplementation-Version: 1.\n 2\n\nName: a/\nSpecification-Version: 3\n"), "org.eclipse.x_1.2.jar")
	f.Fuzz(func(t *testing.T, mf []byte, file string) {
		if p, ok := parseManifest(mf).pkg(file); ok {
			checkPackages(t, []inventory.Package{p})
		}
		_ = parseProperties(mf)
	})
}
