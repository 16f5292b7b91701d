package rust

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseLock(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.Cargo.lock")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		pkgs, err := ParseLock(bytes.NewReader(in))
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

// Arbitrary bytes as an executable: the ELF, PE and Mach-O readers and the
// decompression must not panic or run away.
func FuzzReadDependencies(f *testing.F) {
	js, _ := os.ReadFile("testdata/uses_serde_json.dep-v0.json")
	f.Add(append([]byte("\x7fELF\x02\x01\x01\x00"), js...))
	f.Add([]byte("MZ\x90\x00\x03\x00\x00\x00"))
	f.Add([]byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := ReadDependencies(bytes.NewReader(in))
		if err == nil && v != nil {
			v.Packages()
		}
	})
}
