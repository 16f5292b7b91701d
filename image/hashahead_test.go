package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"

	"github.com/bulkhead-sec/bulkhead/walk"
)

// bigLayerArchive writes a docker-archive as podman save does (layers
// stored uncompressed, named by their diffID) whose one layer spans many
// hash chunks (random files), and returns its path and the layer's name
// inside the archive.
func bigLayerArchive(t testing.TB, dir string, files, size int) (string, string) {
	rng := rand.New(rand.NewSource(1))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < files; i++ {
		b := make([]byte, size)
		rng.Read(b)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/f%03d.bin", i), Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(size)})
		tw.Write(b)
	}
	tw.Close()
	lb := buf.Bytes()
	sum := sha256.Sum256(lb)
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%q]},"history":[{"created_by":"ADD data /data"}]}`, diffID)
	csum := sha256.Sum256([]byte(cfg))
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	layerName := hex.EncodeToString(sum[:]) + ".tar"
	manifest := fmt.Sprintf(`[{"Config":%q,"RepoTags":["example.test/big:1"],"Layers":[%q]}]`, cfgName, layerName)
	p := filepath.Join(dir, "big.docker.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		b    []byte
	}{{layerName, lb}, {cfgName, []byte(cfg)}, {"manifest.json", []byte(manifest)}} {
		aw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o444, Typeflag: tar.TypeReg, Size: int64(len(e.b))})
		aw.Write(e.b)
	}
	if err := aw.Close(); err != nil {
		t.Fatal(err)
	}
	return p, layerName
}

// flipByte changes the byte at off within the file named inner of the
// archive at p (in place).
func flipByte(t *testing.T, p, inner string, off int64) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	idx, err := indexTar(f)
	if err != nil {
		t.Fatal(err)
	}
	at := idx.files[inner].offset + off
	b := make([]byte, 1)
	f.ReadAt(b, at)
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func withAsync(t *testing.T, on bool) {
	old := asyncHashing
	asyncHashing = on
	t.Cleanup(func() { asyncHashing = old })
}

// A docker-archive layer whose content was changed after the config
// recorded its diffID fails the walk, with the hash in its own goroutine or
// not, wherever the change lies: in the first chunk, in the middle, or in
// the last bytes (the tar's end-of-archive padding).
func TestTamperedDockerArchiveLayer(t *testing.T) {
	const files, size = 24, 100 << 10 // 2.4 MB: about ten hash chunks
	for _, async := range []bool{true, false} {
		for _, where := range []string{"none", "first", "middle", "last"} {
			t.Run(fmt.Sprintf("async=%v/%s", async, where), func(t *testing.T) {
				withAsync(t, async)
				p, inner := bigLayerArchive(t, t.TempDir(), files, size)
				st, _ := os.Stat(p)
				layerSize := int64(0)
				{
					f, _ := os.Open(p)
					idx, _ := indexTar(f)
					layerSize = idx.files[inner].size
					f.Close()
				}
				switch where {
				case "first":
					flipByte(t, p, inner, 600) // in the first file's content
				case "middle":
					flipByte(t, p, inner, layerSize/2)
				case "last":
					flipByte(t, p, inner, layerSize-1) // zero padding: the walk never looks at it
				}
				img, err := OpenArchive(p, Options{TempDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				_, err = walk.Walk(context.Background(), img.WalkLayers(), nil, walk.Options{TempDir: t.TempDir()})
				if where == "none" {
					if err != nil {
						t.Fatalf("untouched archive (%d bytes): %v", st.Size(), err)
					}
					return
				}
				if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "diffID") {
					t.Fatalf("err = %v, want a diffID mismatch", err)
				}
			})
		}
	}
}

// The asynchronous reader gives the same bytes and the same digest as the
// stream, whatever sizes the caller reads in, and its goroutine ends on
// Close whether the stream was read to the end or not.
func TestHashAheadReader(t *testing.T) {
	withAsync(t, true)
	data := make([]byte, 3*hashChunkSize+12345)
	rand.New(rand.NewSource(2)).Read(data)
	sum := sha256.Sum256(data)
	good := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	bad := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	before := runtime.NumGoroutine()
	for _, step := range []int{1, 511, 4096, hashChunkSize, 3 * hashChunkSize} {
		for _, want := range []v1.Hash{good, bad} {
			h := newHashingReader(bytes.NewReader(data), want, "test blob", nil, true)
			if h.ahead == nil {
				t.Fatal("not asynchronous")
			}
			var got bytes.Buffer
			buf := make([]byte, step)
			var err error
			for err == nil {
				var n int
				n, err = h.Read(buf)
				got.Write(buf[:n])
			}
			if !bytes.Equal(got.Bytes(), data) {
				t.Fatalf("step %d: read %d bytes, not the stream's %d", step, got.Len(), len(data))
			}
			if want == good && err != io.EOF || want == bad && !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("step %d, want %s: err = %v", step, want.Hex[:8], err)
			}
			// The end, and a mismatch, stick: a caller that dropped the
			// error (io.ReadFull does when the same read filled its
			// buffer) sees it on its next read.
			if n, err2 := h.Read(buf); n != 0 || err2 != err {
				t.Fatalf("read after the end: %d, %v; want 0, %v", n, err2, err)
			}
			h.stop()
		}
		// Abandoned half way.
		h := newHashingReader(bytes.NewReader(data), good, "test blob", nil, true)
		io.CopyN(io.Discard, h, int64(hashChunkSize+step))
		h.stop()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left running (%d before)", n, before)
	}
}

// zstd layers (OCI tar+zstd) go through klauspost/compress's decoder, their
// stored digest checked by the hash goroutine; a changed byte fails.
func TestZstdLayer(t *testing.T) {
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	body := bytes.Repeat([]byte("zstd layer content\n"), 50000)
	tw.WriteHeader(&tar.Header{Name: "etc/big.txt", Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(body))})
	tw.Write(body)
	tw.Close()
	var comp bytes.Buffer
	zw, err := zstd.NewWriter(&comp)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(plain.Bytes())
	zw.Close()
	digest := func(b []byte) v1.Hash {
		s := sha256.Sum256(b)
		return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
	}
	for _, async := range []bool{true, false} {
		withAsync(t, async)
		for _, tamper := range []bool{false, true} {
			b := bytes.Clone(comp.Bytes())
			want := digest(b)
			if tamper {
				b[len(b)-1] ^= 1 // the frame's checksum: still decodes up to there
			}
			sl := storedLayer{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, digest: want, diffID: digest(plain.Bytes())}
			tr, err := walk.Walk(context.Background(), []walk.Layer{{Open: func() (io.ReadCloser, error) { return openVerified(sl) }}}, nil, walk.Options{TempDir: t.TempDir()})
			switch {
			case tamper && err == nil:
				t.Errorf("async=%v: a changed zstd blob was accepted", async)
			case !tamper && err != nil:
				t.Errorf("async=%v: %v", async, err)
			case !tamper:
				if e, ok := tr.Lookup("etc/big.txt"); !ok || e.Size != int64(len(body)) {
					t.Errorf("async=%v: etc/big.txt not in the view (%v)", async, ok)
				}
			}
		}
	}
}

// A gzip layer is inflated ahead of the walk in its own goroutine: the
// bytes and the digest check are the same, and the goroutines end on Close,
// also when the walk gave up half way.
func TestInflateAhead(t *testing.T) {
	withAsync(t, true)
	data := make([]byte, 5*hashChunkSize+777)
	rand.New(rand.NewSource(3)).Read(data)
	var comp bytes.Buffer
	zw := gzip.NewWriter(&comp)
	zw.Write(data)
	zw.Close()
	sum := sha256.Sum256(comp.Bytes())
	good := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	bad := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
	before := runtime.NumGoroutine()
	for _, want := range []v1.Hash{good, bad} {
		sl := storedLayer{open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(comp.Bytes())), nil }, digest: want}
		rc, err := openVerified(sl)
		if err != nil {
			t.Fatal(err)
		}
		if rc.(*verifiedLayer).ahead == nil {
			t.Fatal("not inflated ahead")
		}
		got, err := io.ReadAll(rc)
		if !bytes.Equal(got, data) {
			t.Fatalf("read %d bytes, want %d", len(got), len(data))
		}
		if (want == good) != (err == nil) || want == bad && !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("digest %s...: err = %v", want.Hex[:4], err)
		}
		if err := rc.Close(); err != nil && want == good {
			t.Fatal(err)
		}
		// Abandoned after one chunk.
		rc, _ = openVerified(sl)
		io.CopyN(io.Discard, rc, hashChunkSize)
		rc.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left running (%d before)", n, before)
	}
}

// countingSource counts the bytes read from it.
type countingSource struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingSource) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestInflateAheadRunsAhead: while the walk stalls (a large file going
// through the catalogers), the inflater keeps going up to inflateChunks
// chunks ahead and no further; a small stream takes one chunk from the
// pool, not inflateChunks. Every byte arrives, in order.
func TestInflateAheadRunsAhead(t *testing.T) {
	data := make([]byte, (inflateChunks+8)*hashChunkSize)
	rand.New(rand.NewSource(4)).Read(data)
	src := &countingSource{r: bytes.NewReader(data)}
	a := newInflateAhead(src)
	defer a.stop()
	// Nothing read yet: the inflater fills its chunks and waits.
	want := int64(inflateChunks * hashChunkSize)
	deadline := time.Now().Add(10 * time.Second)
	for src.n.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // would it go further?
	if got := src.n.Load(); got != want {
		t.Fatalf("the inflater read %d bytes ahead of a stalled reader, want %d (inflateChunks chunks)", got, want)
	}
	got, err := io.ReadAll(a)
	if err != io.EOF && err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(data))
	}
	<-a.done
	if a.made != inflateChunks {
		t.Fatalf("%d chunks taken, want %d", a.made, inflateChunks)
	}

	small := newInflateAhead(bytes.NewReader([]byte("a small layer")))
	defer small.stop()
	if b, _ := io.ReadAll(small); string(b) != "a small layer" {
		t.Fatalf("read %q", b)
	}
	<-small.done
	if small.made != 1 {
		t.Fatalf("a 13-byte stream took %d chunks from the pool, want 1", small.made)
	}
}
