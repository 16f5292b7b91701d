package npm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
)

// scaleTree builds n installed packages from the real package.json files of
// testdata/rootfs, each renamed (name-i) so no two are alike: the ~1,000
// npm packages of issue 4's performance target. It returns paths and
// contents.
func scaleTree(tb testing.TB, n int) ([]string, [][]byte) {
	tb.Helper()
	files, err := filepath.Glob("testdata/rootfs/app/node_modules/*/package.json")
	if err != nil || len(files) == 0 {
		tb.Fatalf("no fixtures: %v", err)
	}
	var paths []string
	var bodies [][]byte
	for i := 0; i < n; i++ {
		b, err := os.ReadFile(files[i%len(files)])
		if err != nil {
			tb.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatal(err)
		}
		name := fmt.Sprintf("%s-%d", m["name"], i)
		m["name"] = name
		out, _ := json.MarshalIndent(m, "", "  ")
		paths = append(paths, "app/node_modules/"+name+"/package.json")
		bodies = append(bodies, out)
	}
	return paths, bodies
}

func TestScaleTree(t *testing.T) {
	paths, bodies := scaleTree(t, 1000)
	c := New()
	seen := map[string]bool{}
	for i := range paths {
		if !c.Match(paths[i]) {
			t.Fatalf("%s not matched", paths[i])
		}
		pkgs, err := c.Parse(context.Background(), catalog.Input{Path: "/" + paths[i], Reader: bytes.NewReader(bodies[i]), Size: int64(len(bodies[i]))})
		if err != nil || len(pkgs) != 1 {
			t.Fatalf("%s: %v %v", paths[i], pkgs, err)
		}
		seen[pkgs[0].Name] = true
	}
	if len(seen) != 1000 {
		t.Errorf("%d distinct packages, want 1000", len(seen))
	}
}

// BenchmarkInstalled1000 is the per-scan cost of 1,000 installed npm
// packages: Match and Parse of each package.json.
func BenchmarkInstalled1000(b *testing.B) {
	paths, bodies := scaleTree(b, 1000)
	var size int64
	for _, body := range bodies {
		size += int64(len(body))
	}
	c := New()
	ctx := context.Background()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for i := range paths {
			if !c.Match(paths[i]) {
				b.Fatal("no match")
			}
			if _, err := c.Parse(ctx, catalog.Input{Path: paths[i], Reader: bytes.NewReader(bodies[i]), Size: int64(len(bodies[i]))}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkMatch is the cost the three catalogers add to every file of
// every layer.
func BenchmarkMatch(b *testing.B) {
	paths := []string{
		"usr/lib/x86_64-linux-gnu/libc.so.6", "usr/share/doc/bash/copyright", "etc/passwd",
		"app/node_modules/express/lib/router/index.js", "app/node_modules/express/package.json",
		"app/node_modules/rxjs/ajax/package.json", "app/package-lock.json", "usr/local/lib/node_modules/npm/node_modules/@npmcli/arborist/lib/arborist/reify.js",
	}
	cats := []catalog.Cataloger{New(), NewManifest(), NewLock()}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			for _, c := range cats {
				c.Match(p)
			}
		}
	}
}

func BenchmarkLockfiles(b *testing.B) {
	for _, f := range []string{"npm-v1/package-lock.json", "npm-v3/package-lock.json", "yarn-classic/yarn.lock", "yarn-berry/yarn.lock", "pnpm-v5/pnpm-lock.yaml", "pnpm-v9/pnpm-lock.yaml"} {
		body, err := os.ReadFile(filepath.Join("testdata", "lock", f))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(strings.ReplaceAll(f, "/", "_"), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/" + f, Reader: bytes.NewReader(body), Size: int64(len(body))}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
