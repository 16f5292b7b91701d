package crypt

import (
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/pipeline"
)

// TestRegistryRoundTrip: encrypt from a layout to a registry, scan the
// registry image with and without the key, decrypt it back from the
// registry.
func TestRegistryRoundTrip(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	src := demoLayout(t, dir)
	_, cfg := layoutManifest(t, src)
	pub, priv := keyPair(t, dir, "ec")
	r, _ := ParseRecipient("jwe:" + pub)
	ref := host + "/acme/secret:1"
	rep, err := Encrypt(t.Context(), src, ref, []Recipient{r}, Options{TempDir: t.TempDir(), Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = pipeline.Run(t.Context(), ref, pipeline.Options{TempDir: t.TempDir(), Insecure: true})
	var ee *image.EncryptedLayersError
	if !errors.As(err, &ee) || len(ee.Layers) != len(cfg.RootFS.DiffIDs) {
		t.Fatalf("scan without the key: %v", err)
	}
	k, _ := ParsePrivateKey(priv)
	dec, _ := NewDecrypter([]PrivateKey{k})
	res, err := pipeline.Run(t.Context(), ref, pipeline.Options{TempDir: t.TempDir(), Insecure: true, Decrypter: dec})
	if err != nil {
		t.Fatal(err)
	}
	if res.Inventory.Target.Digest != rep.Digest || len(res.Inventory.Packages) == 0 {
		t.Errorf("scanned %s with %d packages; encrypted manifest %s", res.Inventory.Target.Digest, len(res.Inventory.Packages), rep.Digest)
	}
	out := "oci:" + filepath.Join(dir, "dec") + ":demo"
	if _, err := Decrypt(t.Context(), ref, out, []PrivateKey{k}, Options{TempDir: t.TempDir(), Insecure: true}); err != nil {
		t.Fatal(err)
	}
	if got := blobDiffIDs(t, out); !slices.Equal(got, cfg.RootFS.DiffIDs) {
		t.Errorf("diffIDs %v", got)
	}
}
