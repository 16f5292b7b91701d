package image

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/bulkhead-sec/bulkhead/walk"
)

// BenchmarkLayerStream walks a docker-archive whose one 64 MiB layer is
// verified against its diffID, with the hash in its own goroutine
// (async) and in the reading goroutine (sync).
func BenchmarkLayerStream(b *testing.B) {
	dir := b.TempDir()
	p, inner := bigLayerArchive(b, dir, 256, 256<<10)
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	idx, err := indexTar(f)
	if err != nil {
		b.Fatal(err)
	}
	size := idx.files[inner].size
	f.Close()
	for _, async := range []bool{true, false} {
		b.Run(fmt.Sprintf("docker-archive/async=%v", async), func(b *testing.B) {
			old := asyncHashing
			asyncHashing = async
			defer func() { asyncHashing = old }()
			img, err := OpenArchive(p, Options{TempDir: dir})
			if err != nil {
				b.Fatal(err)
			}
			defer img.Close()
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := walk.Walk(context.Background(), img.WalkLayers(), nil, walk.Options{TempDir: dir}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
