package apk

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*_installed")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("P:a\r\nV:1\r\nL:( MIT OR\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := Parse(context.Background(), bytes.NewReader(in))
		var pe *catalog.PartialError
		if errors.As(err, &pe) && strings.Contains(err.Error(), "longer than") {
			err = nil // over-long lines skipped, and said to be
		}
		if err != nil {
			t.Fatalf("Parse failed on in-memory input: %v", err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Type != inventory.TypeAPK {
				t.Fatalf("bad package %+v", p)
			}
			_ = (&Cataloger{}).PURL(&p, &inventory.OS{ID: "alpine", VersionID: "3.20"})
		}
	})
}
