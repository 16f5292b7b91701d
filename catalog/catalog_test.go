package catalog_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/golang"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// probe is a cataloger that reads some of its input and reports what it
// saw as one package: the SHA-256 of the bytes read (the version) and
// whether random access worked (the name).
type probe struct {
	name    string
	stream  bool
	limit   int64 // bytes to read; -1: all
	fail    bool  // return an error after reading
	randErr atomic.Value
	calls   atomic.Int32
}

func (p *probe) Name() string           { return p.name }
func (p *probe) Match(path string) bool { return strings.HasPrefix(path, "usr/bin/") }
func (p *probe) Streams() bool          { return p.stream }

func (p *probe) Parse(_ context.Context, in catalog.Input) ([]inventory.Package, error) {
	p.calls.Add(1)
	if !p.stream {
		ra, err := in.ReaderAt()
		if err != nil {
			return nil, err
		}
		in.Reader = io.NewSectionReader(ra, 0, in.Size)
	}
	var r io.Reader = in.Reader
	if p.limit >= 0 {
		r = io.LimitReader(r, p.limit)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if p.stream {
		_, err := in.ReaderAt()
		p.randErr.Store(fmt.Sprint(err))
	}
	if p.fail {
		return nil, errors.New("probe failed on purpose")
	}
	return []inventory.Package{{Name: p.name, Version: hex.EncodeToString(h.Sum(nil)), Type: inventory.TypeGo}}, nil
}

// layerOf is a one-layer tar of files (path -> content), executable.
func layerOf(t testing.TB, files map[string][]byte) walk.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	tw.Close()
	data := buf.Bytes()
	return walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

func collect(t testing.TB, ctx context.Context, cats []catalog.Cataloger, layer walk.Layer) *catalog.Collector {
	t.Helper()
	col := catalog.NewCollector(ctx, cats, []inventory.Layer{{Index: 0}}, t.TempDir())
	if _, err := walk.Walk(ctx, []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir(), Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	return col
}

// A real executable: the Go toolchain's gofmt, some megabytes, bigger than
// the fan-out's chunk.
func gofmt(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "bin", "gofmt"))
	if err != nil {
		t.Skip("no gofmt in GOROOT")
	}
	return data
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// waitGoroutines fails if the goroutine count does not come back to n: the
// fan-out must not leave parsers or copiers behind.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, want %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func versions(col *catalog.Collector) map[string]string {
	out := map[string]string{}
	for _, p := range col.Packages() {
		out[p.FoundBy] = p.Version
	}
	return out
}

func TestFanOut(t *testing.T) {
	data := gofmt(t)
	before := runtime.NumGoroutine()
	all := &probe{name: "all", stream: true, limit: -1}
	short := &probe{name: "short", stream: true, limit: 100} // returns after 100 bytes
	none := &probe{name: "none", stream: true, limit: 0}     // returns before reading
	failing := &probe{name: "failing", stream: true, limit: 5000, fail: true}
	col := collect(t, context.Background(), []catalog.Cataloger{all, short, none, failing}, layerOf(t, map[string][]byte{"usr/bin/gofmt": data, "etc/other": []byte("x")}))
	got := versions(col)
	want := map[string]string{"all": sum(data), "short": sum(data[:100]), "none": sum(nil)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s read %s, want %s", k, got[k], v)
		}
	}
	if _, ok := got["failing"]; ok || len(col.Warnings()) != 1 || !strings.Contains(col.Warnings()[0], "failing: /usr/bin/gofmt: probe failed on purpose") {
		t.Errorf("errors per cataloger: packages %v, warnings %q", got, col.Warnings())
	}
	if s, _ := all.randErr.Load().(string); !strings.Contains(s, "streamed to several catalogers") {
		t.Errorf("ReaderAt in a fan-out gave %q", s)
	}
	for _, p := range []*probe{all, short, none, failing} {
		if p.calls.Load() != 1 {
			t.Errorf("%s called %d times", p.name, p.calls.Load())
		}
	}
	waitGoroutines(t, before)
}

// One cataloger: the stream as before, random access available. One that
// needs random access among several: the file is buffered for all.
func TestSingleAndBuffered(t *testing.T) {
	data := gofmt(t)
	layer := layerOf(t, map[string][]byte{"usr/bin/gofmt": data})

	single := &probe{name: "single", stream: true, limit: -1}
	col := collect(t, context.Background(), []catalog.Cataloger{single}, layer)
	if got := versions(col)["single"]; got != sum(data) {
		t.Errorf("single read %s", got)
	}
	if s, _ := single.randErr.Load().(string); !strings.Contains(s, "after the content was read") {
		t.Errorf("single cataloger: ReaderAt gave %q, want the walk's own error", s)
	}

	streamer := &probe{name: "streamer", stream: true, limit: -1}
	random := &probe{name: "random", stream: false, limit: -1}
	col = collect(t, context.Background(), []catalog.Cataloger{streamer, random}, layer)
	got := versions(col)
	if got["streamer"] != sum(data) || got["random"] != sum(data) || len(col.Warnings()) != 0 {
		t.Errorf("mixed: %v, warnings %q", got, col.Warnings())
	}
	if s, _ := streamer.randErr.Load().(string); s != "<nil>" {
		t.Errorf("buffered: ReaderAt gave %q", s)
	}
}

// A cancelled scan stops the copying; the parsers see the error.
func TestFanOutCancel(t *testing.T) {
	data := gofmt(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := &probe{name: "a", stream: true, limit: -1}
	b := &probe{name: "b", stream: true, limit: -1}
	col := catalog.NewCollector(ctx, []catalog.Cataloger{a, b}, []inventory.Layer{{Index: 0}}, t.TempDir())
	// The walk itself stops on a cancelled context; visit directly.
	layer := layerOf(t, map[string][]byte{"usr/bin/gofmt": data})
	if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if len(col.Packages()) != 0 || len(col.Warnings()) != 2 || !strings.Contains(col.Warnings()[0], context.Canceled.Error()) {
		t.Errorf("packages %v, warnings %q", col.Packages(), col.Warnings())
	}
	waitGoroutines(t, before)
}

// The real binary catalogers together on real binaries, through the
// fan-out: the Go build information of gofmt, and nothing from a non-Go
// executable.
func TestFanOutBinaryCatalogers(t *testing.T) {
	data := gofmt(t)
	sh, err := os.ReadFile("/bin/sh")
	if err != nil {
		t.Skip("no /bin/sh")
	}
	sh = sh[:len(sh):len(sh)]
	before := runtime.NumGoroutine()
	slow := &probe{name: "slow", stream: true, limit: -1}
	cats := []catalog.Cataloger{golang.NewBinary(), slow}
	col := collect(t, context.Background(), cats, layerOf(t, map[string][]byte{"usr/bin/gofmt": data, "usr/bin/sh": sh}))
	if w := col.Warnings(); len(w) != 0 {
		t.Errorf("warnings: %q", w)
	}
	var stdlib bool
	for _, p := range col.Packages() {
		if p.FoundBy == "go-binary" && p.Name == "stdlib" && p.Locations[0].Path == "/usr/bin/gofmt" {
			stdlib = runtime.Version() == "go"+p.Version || strings.HasPrefix(runtime.Version(), "go"+p.Version)
		}
		if p.FoundBy == "go-binary" && p.Locations[0].Path == "/usr/bin/sh" {
			t.Errorf("go package in /bin/sh: %+v", p)
		}
	}
	if !stdlib {
		t.Errorf("no stdlib of %s in gofmt: %+v", runtime.Version(), col.Packages())
	}
	// The Go scanner stops early; the other cataloger still got every byte.
	if n := slow.calls.Load(); n != 2 {
		t.Errorf("slow called %d times", n)
	}
	for _, p := range col.Packages() {
		if p.FoundBy == "slow" && p.Locations[0].Path == "/usr/bin/gofmt" && p.Version != sum(data) {
			t.Errorf("slow read %s of gofmt", p.Version)
		}
	}
	waitGoroutines(t, before)
}

// BenchmarkFanOut: one executable of a few megabytes offered to two
// streaming catalogers at once (reading all of it), against the same two
// when one of them needs random access (the file is buffered first).
func BenchmarkFanOut(b *testing.B) {
	data := gofmt(b)
	layer := layerOf(b, map[string][]byte{"usr/bin/gofmt": data})
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"streamed", true}, {"buffered", false}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				cats := []catalog.Cataloger{&probe{name: "a", stream: true, limit: -1}, &probe{name: "b", stream: tc.stream, limit: -1}}
				col := catalog.NewCollector(context.Background(), cats, []inventory.Layer{{Index: 0}}, b.TempDir())
				if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: b.TempDir(), Jobs: 1}); err != nil {
					b.Fatal(err)
				}
				if len(col.Packages()) != 2 {
					b.Fatal(col.Warnings())
				}
			}
		})
	}
}
