package python

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func seeds(f *testing.F, patterns ...string) {
	for _, pat := range patterns {
		files, _ := filepath.Glob(pat)
		for _, p := range files {
			if fi, err := os.Stat(p); err != nil || fi.IsDir() {
				continue
			}
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
		if p.Name == "" || p.Version == "" || p.Type != inventory.TypePyPI || p.PURL == "" {
			t.Fatalf("bad package %+v", p)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	seeds(f, "testdata/site-packages/*/*", "testdata/site-packages/*.egg-info", "testdata/modern/*/*")
	f.Add([]byte("Name: a\r\nVersion: 1\r\n License: x\n\tmore\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, ok, err := ParseMetadata(bytes.NewReader(in))
		if err != nil {
			t.Fatalf("ParseMetadata failed on in-memory input: %v", err)
		}
		if ok {
			checkPackages(t, []inventory.Package{p})
		}
	})
}

// FuzzParseLock feeds the same bytes to every lockfile parser: each must
// return packages or an error, never panic.
func FuzzParseLock(f *testing.F) {
	seeds(f, "testdata/lock/*/*")
	f.Fuzz(func(t *testing.T, in []byte) {
		c := NewLock()
		for _, name := range []string{"/requirements.txt", "/poetry.lock", "/Pipfile.lock", "/uv.lock"} {
			pkgs, _ := c.Parse(context.Background(), catalog.Input{Path: name, Reader: bytes.NewReader(in), Size: int64(len(in))})
			checkPackages(t, pkgs)
		}
	})
}
