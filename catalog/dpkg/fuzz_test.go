package dpkg

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*status*")
	more, _ := filepath.Glob("testdata/syft_distroless_status.d/*")
	for _, p := range append(files, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a directory
		}
		if len(b) > 64<<10 {
			b = b[:64<<10] // keep seeds small so the fuzzer mutates usefully
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	f.Add([]byte("Package: a\r\nVersion: 1:2\r\nSource: b (3\r\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, statusD bool) {
		parse := ParseStatus
		if statusD {
			parse = ParseStatusD
		}
		pkgs, err := parse(context.Background(), bytes.NewReader(in))
		var pe *catalog.PartialError
		if errors.As(err, &pe) {
			if bytes.HasSuffix(in, []byte("\n")) && !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("partial read of a file that ends with a newline and has no long line: %v", err)
			}
			err = nil
		}
		if err != nil {
			t.Fatalf("parse failed on in-memory input: %v", err)
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" || p.Type != inventory.TypeDeb || p.SourceName == "" || p.SourceVersion == "" {
				t.Fatalf("bad package %+v", p)
			}
			if p.Epoch != nil {
				pre, _, _ := strings.Cut(p.Version, ":")
				if e, err := strconv.Atoi(pre); err != nil || e != *p.Epoch {
					t.Fatalf("epoch %d does not prefix version %q", *p.Epoch, p.Version)
				}
			}
			_ = New().PURL(&p, &inventory.OS{ID: "debian", VersionID: "12"})
		}
	})
}
