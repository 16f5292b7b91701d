package sign

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// blobCounter is a client transport that counts blob GETs and the bytes
// the client read from their bodies: what a hostile registry made the
// verifier fetch.
type blobCounter struct {
	gets  atomic.Int64
	bytes atomic.Int64
}

func (c *blobCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		c.gets.Add(1)
		resp.Body = countingBody{resp.Body, &c.bytes}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// hostileRegistry is go-containerregistry's in-memory registry; with
// chunked set, blobs are served without Content-Length (so the client
// cannot refuse a size mismatch up front and must bound its own reads).
func hostileRegistry(t testing.TB, chunked *atomic.Bool) string {
	t.Helper()
	reg := registry.New(registry.WithReferrersSupport(true), registry.Logger(nopLogger()))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if chunked != nil && chunked.Load() && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			w = noLength{w}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

type noLength struct{ http.ResponseWriter }

func (n noLength) WriteHeader(code int) {
	n.Header().Del("Content-Length")
	n.ResponseWriter.WriteHeader(code)
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushTagImage pushes an image of the given layers (all of mediaType) at
// tag.
func pushTagImage(t testing.TB, tag name.Tag, mediaType string, blobs [][]byte, anns map[string]string) {
	t.Helper()
	img := emptySignatures()
	var adds []mutate.Addendum
	for _, b := range blobs {
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(b, types.MediaType(mediaType)), MediaType: types.MediaType(mediaType), Annotations: anns})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
}

func wantLimit(t *testing.T, err error, limit string) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != limit || !strings.Contains(err.Error(), "over the limit") || !strings.Contains(err.Error(), limit) {
		t.Fatalf("want a %s LimitError, got %v", limit, err)
	}
}

// A .sig image with more layers than MaxEntries (cosign verify accepts 100
// signatures) fails naming the limit, and no layer is fetched.
func TestSigTooManyLayers(t *testing.T) {
	ctx := context.Background()
	_, v := cosignKey(t)
	host := hostileRegistry(t, nil)
	tg := pushImage(t, host, "app", "demo.vex.json")
	blobs := make([][]byte, DefaultMaxEntries+1)
	for i := range blobs {
		blobs[i] = []byte(fmt.Sprintf(`{"layer":%d}`, i))
	}
	pushTagImage(t, tagFor(tg.Digest, "sig"), SimpleSigningMediaType, blobs, map[string]string{SignatureAnnotation: "AAAA"})
	c := &blobCounter{}
	_, err := VerifySignatures(ctx, tg, v, VerifyOptions{TLog: TLogInsecureIgnore, Options: Options{Remote: []remote.Option{remote.WithTransport(c)}}, Layouts: []Layout{Legacy}})
	wantLimit(t, err, "MaxEntries")
	if !strings.Contains(err.Error(), fmt.Sprintf("has %d layers, over the limit of %d", DefaultMaxEntries+1, DefaultMaxEntries)) {
		t.Errorf("message: %v", err)
	}
	if n := c.gets.Load(); n != 0 {
		t.Errorf("%d blobs fetched before the count was refused", n)
	}
}

// Attestation layers over MaxAttestation are rejected by their
// descriptor, unread, and a genuine attestation beside them still counts.
func TestAttestationLayersOverLimit(t *testing.T) {
	ctx := context.Background()
	s, v := cosignKey(t)
	host := hostileRegistry(t, nil)
	tg := pushImage(t, host, "app", "demo.vex.json")
	const limit = 64 << 10
	big := make([][]byte, 6)
	for i := range big {
		big[i] = randomBytes(t, limit+1+i)
	}
	pushTagImage(t, tagFor(tg.Digest, "att"), DSSEMediaType, big, nil)
	lim := Options{Limits: Limits{MaxAttestation: limit}}

	c := &blobCounter{}
	o := VerifyOptions{TLog: TLogInsecureIgnore, Options: lim, Layouts: []Layout{Legacy}}
	o.Remote = []remote.Option{remote.WithTransport(c)}
	_, err := VerifyAttestations(ctx, tg, v, o)
	var verr *VerifyError
	if !errors.As(err, &verr) || len(verr.Rejections) != len(big) {
		t.Fatalf("want %d rejections, got %v", len(big), err)
	}
	for _, r := range verr.Rejections {
		wantLimit(t, r.Err, "MaxAttestation")
	}
	if n := c.gets.Load(); n != 0 {
		t.Errorf("%d oversized layers fetched", n)
	}

	// A real attestation appended to the same tag is found among them.
	pred := []byte(`{"builder":{"id":"test"}}`)
	if err := AttestImage(ctx, tg, s, AttestOptions{Options: lim, Layout: Legacy, StatementOptions: StatementOptions{Type: "https://slsa.dev/provenance/v1", Predicate: pred}}); err != nil {
		t.Fatal(err)
	}
	got, err := VerifyAttestations(ctx, tg, v, o)
	if err != nil || len(got) != 1 {
		t.Fatalf("genuine attestation among oversized ones: %d, %v", len(got), err)
	}
}

// A manifest that lies about a layer's size (descriptor 1 KiB, blob 16
// MiB) costs at most the claimed size, served with or without
// Content-Length.
func TestLyingLayerSize(t *testing.T) {
	ctx := context.Background()
	_, v := cosignKey(t)
	for _, chunked := range []bool{false, true} {
		t.Run(map[bool]string{false: "content-length", true: "chunked"}[chunked], func(t *testing.T) {
			var ch atomic.Bool
			host := hostileRegistry(t, &ch)
			tg := pushImage(t, host, "app", "demo.vex.json")
			blob := static.NewLayer(randomBytes(t, 16<<20), types.MediaType(DSSEMediaType))
			if err := remote.WriteLayer(tg.Digest.Context(), blob); err != nil {
				t.Fatal(err)
			}
			dg, _ := blob.Digest()
			m := emptyManifest(t)
			m.Layers = []v1.Descriptor{{MediaType: DSSEMediaType, Digest: dg, Size: 1024}}
			if err := remote.Put(tagFor(tg.Digest, "att"), referrerManifest{*m}); err != nil {
				t.Fatal(err)
			}
			ch.Store(chunked)
			c := &blobCounter{}
			o := VerifyOptions{TLog: TLogInsecureIgnore, Layouts: []Layout{Legacy}}
			o.Remote = []remote.Option{remote.WithTransport(c)}
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := VerifyAttestations(ctx, tg, v, o)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("a blob larger than its descriptor was accepted")
			}
			var verr *VerifyError
			if errors.As(err, &verr) {
				t.Fatalf("want a read error, not a rejection: %v", err)
			}
			if n := c.bytes.Load(); n > 64<<10 {
				t.Errorf("read %d bytes of a blob whose descriptor says 1024", n)
			}
			if a := after.TotalAlloc - before.TotalAlloc; a > 4<<20 {
				t.Errorf("allocated %d bytes verifying a 1 KiB layer", a)
			}
			t.Logf("error: %v", err)
		})
	}
}

// emptyManifest is the manifest of an empty .sig/.att image.
func emptyManifest(t testing.TB) *v1.Manifest {
	m, err := emptySignatures().Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.DeepCopy()
}

// Bundle referrers: more than MaxEntries fail before any is read; a
// bundle over MaxPayload is rejected unread.
func TestBundleLimits(t *testing.T) {
	ctx := context.Background()
	_, v := cosignKey(t)
	host := hostileRegistry(t, nil)
	tg := pushImage(t, host, "app", "demo.vex.json")

	if err := pushBundle(ctx, tg, randomBytes(t, DefaultMaxPayload+1), CosignSignPredicateType, Options{}); err != nil {
		t.Fatal(err)
	}
	c := &blobCounter{}
	o := VerifyOptions{TLog: TLogInsecureIgnore, Layouts: []Layout{Bundle}}
	o.Remote = []remote.Option{remote.WithTransport(c)}
	_, err := VerifySignatures(ctx, tg, v, o)
	var verr *VerifyError
	if !errors.As(err, &verr) || len(verr.Rejections) != 1 {
		t.Fatalf("want one rejection, got %v", err)
	}
	wantLimit(t, verr.Rejections[0].Err, "MaxPayload")
	if n := c.gets.Load(); n != 0 {
		t.Errorf("%d blobs fetched", n)
	}

	const entries = 5
	for i := 0; i < entries; i++ {
		if err := pushBundle(ctx, tg, []byte(fmt.Sprintf(`{"n":%d}`, i)), CosignSignPredicateType, Options{}); err != nil {
			t.Fatal(err)
		}
	}
	o.Limits = Limits{MaxEntries: entries}
	_, err = VerifySignatures(ctx, tg, v, o)
	wantLimit(t, err, "MaxEntries")
	if n := c.gets.Load(); n != 0 {
		t.Errorf("%d blobs fetched", n)
	}
}

// A .sig manifest over MaxManifest is refused by its HEAD size.
func TestSigManifestTooLarge(t *testing.T) {
	_, v := cosignKey(t)
	host := hostileRegistry(t, nil)
	tg := pushImage(t, host, "app", "demo.vex.json")
	m := emptyManifest(t)
	m.Annotations = map[string]string{"padding": strings.Repeat("x", 8<<10)}
	raw, _ := json.Marshal(m)
	if err := remote.Put(tagFor(tg.Digest, "sig"), referrerManifest{*m}); err != nil {
		t.Fatal(err)
	}
	o := VerifyOptions{TLog: TLogInsecureIgnore, Options: Options{Limits: Limits{MaxManifest: int64(len(raw)) - 1}}, Layouts: []Layout{Legacy}}
	_, err := VerifySignatures(context.Background(), tg, v, o)
	wantLimit(t, err, "MaxManifest")
}
