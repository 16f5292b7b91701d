package dotnet

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func seeds(f *testing.F, glob string) {
	files, _ := filepath.Glob(glob)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseDeps(f *testing.F) {
	seeds(f, "testdata/*.deps.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseDeps(bytes.NewReader(in), "TestLibrary")
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}

func FuzzParseLock(f *testing.F) {
	seeds(f, "testdata/*.packages.lock.json")
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseLock(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}

func FuzzParseConfig(f *testing.F) {
	seeds(f, "testdata/*.packages.config")
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseConfig(bytes.NewReader(in))
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.PURL == "" {
				t.Fatalf("bad package %+v", p)
			}
		}
	})
}
