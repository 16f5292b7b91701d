package match

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

func FuzzParseIgnoreFile(f *testing.F) {
	for _, p := range []string{"testdata/ignore/bulkheadignore.yaml", "testdata/ignore/trivyignore.txt"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ig, err := ParseIgnoreFile(data, "fuzz")
		if err == nil && ig == nil {
			t.Fatal("nil file without error")
		}
	})
}

func FuzzParseVEX(f *testing.F) {
	files, _ := filepath.Glob("testdata/vex/*.json")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseVEX(data, "fuzz")
		if err != nil {
			return
		}
		// Applying any document that loads must not panic.
		ApplyVEX(nil, []*VEXDocument{d}, nil)
	})
}

// FuzzMatchVersion matches arbitrary version strings of every package type
// against the real records: no panic, whatever the version.
func FuzzMatchVersion(f *testing.F) {
	src := testSource(f)
	for _, s := range []string{"1.2.1-2.2+wheezy3", "1:2.3.3op2-16.el9_2", "1.8a1.dev1", "4.1.83.Final", "go1.16.0", "0.0.0-0", "", "~", "1:", "v", "1.0-", "::::", "1!2!3"} {
		for typ := range 8 {
			f.Add(s, uint8(typ))
		}
	}
	pkgs := []struct {
		os  *inventory.OS
		pkg inventory.Package
	}{
		{&inventory.OS{ID: "debian", VersionID: "7"}, inventory.Package{Name: "nginx", Type: "deb"}},
		{&inventory.OS{ID: "almalinux", VersionID: "9"}, inventory.Package{Name: "cups-libs", Type: "rpm", Epoch: epoch(1)}},
		{nil, inventory.Package{Name: "django", Type: "pypi"}},
		{nil, inventory.Package{Name: "io.netty:netty-codec-http", Type: "maven"}},
		{nil, inventory.Package{Name: "stdlib", Type: "golang"}},
		{nil, inventory.Package{Name: "cap-primitives", Type: "cargo"}},
		{nil, inventory.Package{Name: "lodash", Type: "npm"}},
		{&inventory.OS{ID: "ubuntu", VersionID: "14.04"}, inventory.Package{Name: "linux", Type: "deb"}},
	}
	f.Fuzz(func(t *testing.T, v string, typ uint8) {
		p := pkgs[int(typ)%len(pkgs)]
		p.pkg.Version = v
		inv := &inventory.Inventory{OS: p.os, Packages: []inventory.Package{p.pkg}}
		if _, err := Match(context.Background(), inv, src, Options{}); err != nil {
			t.Fatal(err)
		}
	})
}
