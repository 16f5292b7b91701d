package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkhead-sec/bulkhead/walk"
)

// FuzzOpenArchive feeds arbitrary bytes as an image archive: opening and
// walking it must fail cleanly or succeed, never panic or run away.
func FuzzOpenArchive(f *testing.F) {
	for _, name := range []string{"single-file.tar.gz", "symlink-cycle.tar.gz", "empty.tar.gz"} {
		b, err := os.ReadFile(filepath.Join("testdata", "docker-save", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "archive")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := OpenArchive(p, Options{TempDir: dir})
		if err != nil {
			return
		}
		defer img.Close()
		_, _ = walk.Walk(context.Background(), img.WalkLayers(), nil, walk.Options{TempDir: dir, MaxLayerBytes: 8 << 20})
	})
}
