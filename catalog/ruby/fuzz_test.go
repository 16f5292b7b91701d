package ruby

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

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

func check(t *testing.T, pkgs []inventory.Package) {
	for _, p := range pkgs {
		if !validName(p.Name) || !validVersion(p.Version) || p.Type != inventory.TypeGem || p.PURL == "" {
			t.Fatalf("bad package %+v", p)
		}
	}
}

func FuzzGemspec(f *testing.F) {
	seed(f, "testdata/rootfs/usr/share/rubygems-integration/all/specifications/*.gemspec")
	f.Add([]byte("s.name = %q{a}\ns.version = Gem::Version.new(\"\\u00e9\")\ns.licenses = [\"a\", %q<b>, 'c\\'"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, ok, err := ParseGemspec(bytes.NewReader(in))
		if err == nil && ok {
			check(t, []inventory.Package{p})
		}
	})
}

func FuzzGemfileLock(f *testing.F) {
	seed(f, "testdata/lock/*/Gemfile.lock")
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseGemfileLock(context.Background(), bytes.NewReader(in))
		if err == nil {
			check(t, pkgs)
		}
	})
}
