// Package testcorpus locates the shared corpus of real test data
// (../shared/corpus beside the repository) for tests that also run over it
// when it is there; the repository's own fixtures never depend on it.
package testcorpus

import (
	"os"
	"path/filepath"
)

// Dir returns ../shared/corpus (joined with sub) beside the module root,
// found by walking up from the working directory to go.mod, or "" when it
// does not exist.
func Dir(sub ...string) string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(append([]string{dir, "..", "shared", "corpus"}, sub...)...)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}
