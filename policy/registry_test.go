package policy

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// testRegistry is go-containerregistry's in-memory registry holding the
// demo image; down makes it answer 503 to everything.
func testRegistry(t *testing.T) (host string, down *atomic.Bool) {
	t.Helper()
	down = &atomic.Bool{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), down
}

func pushDemo(t *testing.T, ref string) {
	t.Helper()
	img, err := image.Open(context.Background(), "oci-archive:../testdata/images/alpine-demo.oci.tar", image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img.Image); err != nil {
		t.Fatal(err)
	}
}

func signWith(t *testing.T, ref string, priv []byte) {
	t.Helper()
	s, err := key.ParsePrivate(priv, func(bool) ([]byte, error) { return []byte("pw"), nil })
	if err != nil {
		t.Fatal(err)
	}
	tg, err := sign.Resolve(context.Background(), ref, sign.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sign.SignImage(context.Background(), tg, s, sign.SignOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryFacts: the Facts the gate and the webhook use, against a real
// (in-memory) registry: tag resolution, signature verdicts by key, the scan
// budget with the scan finishing in the background, and an outage.
func TestRegistryFacts(t *testing.T) {
	host, down := testRegistry(t)
	dir := t.TempDir()
	trustedPriv, trustedPub, _ := key.Generate([]byte("pw"))
	otherPriv, _, _ := key.Generate([]byte("pw"))
	os.WriteFile(filepath.Join(dir, "trusted.pub"), trustedPub, 0o644)
	f, err := Parse("p.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - {name: signed, signatures: {keys: [trusted.pub], transparencyLog: ignore}}\n"), dir)
	if err != nil {
		t.Fatal(err)
	}
	sr := f.Rules[0].Signatures
	for _, repo := range []string{"signed", "other", "unsigned"} {
		pushDemo(t, host+"/"+repo+":1")
	}
	signWith(t, host+"/signed:1", trustedPriv)
	signWith(t, host+"/other:1", otherPriv)

	r := &Registry{DBPath: filepath.Join(dir, "db"), CacheDir: filepath.Join(dir, "cache"), TempDir: dir}
	defer r.Close()
	ctx := context.Background()
	img := func(repo string) *Image {
		i := &Image{Ref: host + "/" + repo + ":1"}
		i.Repo, i.Registry, _ = Repository(i.Ref)
		d, err := r.Resolve(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		i.Digest = d
		return i
	}
	signed := img("signed")
	if !strings.HasPrefix(signed.Digest, "sha256:") {
		t.Fatalf("digest %q", signed.Digest)
	}
	if err := r.Verify(ctx, signed, sr); err != nil {
		t.Errorf("signed by the trusted key: %v", err)
	}
	var v *Violation
	for _, repo := range []string{"other", "unsigned"} {
		if err := r.Verify(ctx, img(repo), sr); !errors.As(err, &v) {
			t.Errorf("%s: want a Violation, got %v", repo, err)
		}
	}

	// A request whose budget ends before the scan gets an error, and the
	// scan finishes in the background into the cache.
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, err := r.Scan(short, signed); err == nil || !strings.Contains(err.Error(), "did not finish in time") {
		t.Fatalf("scan within 1ms: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for r.Cached(signed.Digest) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	sc := r.Cached(signed.Digest)
	if sc == nil {
		t.Fatal("the background scan did not fill the cache")
	}
	found := false
	for _, fd := range sc.Findings {
		found = found || fd.ID == "GHSA-xvch-5gv4-984h"
	}
	if !found {
		t.Error("the scan lacks minimist's GHSA-xvch-5gv4-984h")
	}

	// Outage: the cached scan still answers; resolving a tag does not.
	down.Store(true)
	if got, err := r.Scan(ctx, signed); err != nil || got != sc {
		t.Errorf("cached scan during the outage: %v", err)
	}
	if _, err := r.Resolve(ctx, &Image{Ref: host + "/signed:1"}); err == nil {
		t.Error("resolved a tag with the registry down (TagTTL 0)")
	}
	// The whole engine: fail-closed denial naming the rule.
	e := &Engine{File: f, Facts: r}
	d := e.Evaluate(ctx, Input{Images: []string{host + "/signed:1"}})
	if d.Allowed || !strings.Contains(d.Reason(), `rule "signed" (signatures)`) || !strings.Contains(d.Reason(), "fail-closed") {
		t.Errorf("outage decision: %+v", d)
	}
}

// TestRegistryTLog: the gate's and the webhook's Facts refuse a signature
// by the trusted key that has no transparency-log entry unless the rule
// says transparencyLog: ignore; with ignore the engine allows it and the
// decision warns, naming the rule.
func TestRegistryTLog(t *testing.T) {
	host, _ := testRegistry(t)
	dir := t.TempDir()
	priv, pub, _ := key.Generate([]byte("pw"))
	os.WriteFile(filepath.Join(dir, "trusted.pub"), pub, 0o644)
	pushDemo(t, host+"/signed:1")
	signWith(t, host+"/signed:1", priv)
	ctx := context.Background()
	for _, c := range []struct {
		name, field string
		ok          bool
	}{
		{"no field", "", false},
		{"required", ", transparencyLog: required", false},
		{"ignore", ", transparencyLog: ignore", true},
	} {
		f, err := Parse("p.yaml", []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - {name: signed, signatures: {keys: [trusted.pub]"+c.field+"}}\n"), dir)
		if err != nil {
			t.Fatal(err)
		}
		r := &Registry{DBPath: filepath.Join(dir, "db"), TempDir: dir}
		d := (&Engine{File: f, Facts: r}).Evaluate(ctx, Input{Images: []string{host + "/signed:1"}})
		r.Close()
		warned := strings.Contains(strings.Join(d.Warnings, "\n"), `rule "signed" (line 4) accepts signatures without a transparency-log check`)
		if c.ok {
			if !d.Allowed || !warned || !strings.Contains(d.Results[0].Message, "transparency log not checked") {
				t.Errorf("%s: want allowed with a warning: %+v", c.name, d)
			}
			continue
		}
		if d.Allowed || warned || len(d.Results) != 1 || d.Results[0].Error || !strings.Contains(d.Reason(), "the transparency log is required") {
			t.Errorf("%s: want a denial (a violation, not an error) naming the transparency log: %+v", c.name, d)
		}
	}
}
