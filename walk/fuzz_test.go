package walk

import (
	"bytes"
	"context"
	"io"
	"testing"
)

// FuzzWalk feeds arbitrary bytes as two layers: the walk must return an
// error or a tree, never panic, and resolution must terminate.
func FuzzWalk(f *testing.F) {
	f.Add(makeTar(f, dir("a/"), file("a/x", "x"), symlink("a/l", "../../a/x"), hardlink("h", "a/x")), makeTar(f, file("a/.wh.x", ""), file("a/.wh..wh..opq", "")))
	f.Add(makeTar(f, symlink("l1", "l2"), symlink("l2", "/l1")), []byte{})
	f.Add([]byte("not a tar"), makeTar(f, file("../../etc/passwd", "x")))
	f.Add(makeTar(f, file("/etc/passwd", "x"), file("a/b/c/d/e", "y"), file("a/b/.wh.c", ""), hardlink("a/h", "/etc/passwd")), makeTar(f, dir("a/"), file("a/.wh..wh..opq", ""), symlink("a/b", "/a"), file("a/b/c", "z")))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		layers := []Layer{
			{Info: LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(a)), nil }},
			{Info: LayerInfo{Index: 1}, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }},
		}
		rec := &recorder{want: func(*Entry) bool { return true }, ra: true}
		tr, err := Walk(context.Background(), layers, []Visitor{rec}, Options{MaxLayerBytes: 1 << 20, MaxFileSize: 1 << 16, TempDir: t.TempDir()})
		if err != nil {
			return
		}
		_ = tr.Walk(func(e *Entry) error {
			_, _, _ = tr.Resolve(e.Path)
			_ = tr.State(e.Path, 0)
			return nil
		})
	})
}
