package npm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func seed(f *testing.F, pattern string) {
	files, _ := filepath.Glob(pattern)
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func checkPackages(t *testing.T, pkgs []inventory.Package) {
	for _, p := range pkgs {
		if !validName(p.Name) || p.Version == "" || p.Type != inventory.TypeNPM || p.PURL == "" {
			t.Fatalf("bad package %+v", p)
		}
	}
}

func FuzzManifest(f *testing.F) {
	seed(f, "testdata/rootfs/app/node_modules/*/package.json")
	seed(f, "testdata/rootfs/opt/*/package.json")
	f.Add([]byte(`{"name":"a","version":"1","license":[{"type":"MIT"},"ISC",3]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, ok, err := ParseManifest(bytes.NewReader(in))
		if err == nil && ok {
			checkPackages(t, []inventory.Package{p})
		}
	})
}

func fuzzLock(f *testing.F, name string) {
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/p/" + name, Reader: bytes.NewReader(in), Size: int64(len(in))})
		if err == nil {
			checkPackages(t, pkgs)
		}
	})
}

func FuzzPackageLock(f *testing.F) {
	seed(f, "testdata/lock/npm-*/*-*.json")
	f.Add([]byte(`{"lockfileVersion":1,"dependencies":{"a":{"version":"npm:@","dependencies":{"b":{"version":"file:x"}}}}}`))
	fuzzLock(f, PackageLock)
}

func FuzzYarnLock(f *testing.F) {
	seed(f, "testdata/lock/yarn-*/yarn.lock")
	f.Add([]byte("a@npm:, \"@x@npm:\":\n  version \"1\"\n"))
	fuzzLock(f, YarnLock)
}

func FuzzPnpmLock(f *testing.F) {
	seed(f, "testdata/lock/pnpm-*/pnpm-lock.yaml")
	f.Add([]byte("lockfileVersion: 5.4\npackages:\n  /a/_x:\n    dev: true\n---\nlockfileVersion: '9.0'\n"))
	fuzzLock(f, PnpmLock)
}
