package kubernetes

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary streams to the parser and the checks: errors
// are fine, panics and hangs are not.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"testdata/examples/*", "testdata/psa/restricted/v1.37/fail/*", "testdata/kics/*/test/positive*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil && len(data) < 64<<10 {
				f.Add(data)
			}
		}
	}
	f.Add([]byte(aliasBomb()))
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _ := ParseBytes("fuzz.yaml", data)
		if _, err := s.Scan(objs); err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if _, err := CELVars(o); err != nil {
				t.Fatal(err)
			}
		}
	})
}
