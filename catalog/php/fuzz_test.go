package php

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func seeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.composer.lock")
	files = append(files, "testdata/bramasta-php-composer.installed.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"name":"a/b","version":"1","license":"MIT"}]`))
}

func FuzzParseLock(f *testing.F) {
	seeds(f)
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

func FuzzParseInstalled(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseInstalled(bytes.NewReader(in))
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
