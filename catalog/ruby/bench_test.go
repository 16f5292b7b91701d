package ruby

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func BenchmarkGemspecs(b *testing.B) {
	var bodies [][]byte
	var size int64
	_ = filepath.WalkDir(filepath.Join("testdata", "rootfs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".gemspec") {
			body, _ := os.ReadFile(p)
			bodies = append(bodies, body)
			size += int64(len(body))
		}
		return nil
	})
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, body := range bodies {
			if _, ok, err := ParseGemspec(bytes.NewReader(body)); err != nil || !ok {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkGemfileLock(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "lock", "bundler-2.3.15", "Gemfile.lock"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseGemfileLock(context.Background(), bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}
