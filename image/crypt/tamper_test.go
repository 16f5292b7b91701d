package crypt

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/pipeline"
)

// swapLayers rewrites the manifest of the one image in the layout dir with
// its layers 0 and 1 swapped (each still a valid, authenticated
// ciphertext with its own wrapped key) and points index.json at it.
func swapLayers(t *testing.T, dir string) {
	t.Helper()
	ib, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(ib, &idx); err != nil {
		t.Fatal(err)
	}
	md := idx.Manifests[0].Digest
	mb, err := os.ReadFile(filepath.Join(dir, "blobs", md.Algorithm, md.Hex))
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	m.Layers[0], m.Layers[1] = m.Layers[1], m.Layers[0]
	nb, _ := json.Marshal(&m)
	h, n, _ := v1.SHA256(bytes.NewReader(nb))
	if err := os.WriteFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex), nb, 0o644); err != nil {
		t.Fatal(err)
	}
	idx.Manifests[0].Digest, idx.Manifests[0].Size = h, n
	ib, _ = json.Marshal(&idx)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), ib, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSwappedEncryptedLayers: the stored digest of an encrypted layer
// proves only its ciphertext, and its HMAC only that it was encrypted by
// someone; the config's diffID is what binds the decrypted content to the
// image. Two encrypted layers swapped in the manifest must fail both the
// scan and decrypt with a digest mismatch, never be walked as the image.
func TestSwappedEncryptedLayers(t *testing.T) {
	dir := t.TempDir()
	src := demoLayout(t, dir)
	pub, priv := keyPair(t, dir, "ec")
	r, _ := ParseRecipient("jwe:" + pub)
	encDir := filepath.Join(dir, "enc")
	enc := "oci:" + encDir + ":demo"
	if _, err := Encrypt(t.Context(), src, enc, []Recipient{r}, Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	swapLayers(t, encDir)
	k, _ := ParsePrivateKey(priv)
	dec, _ := NewDecrypter([]PrivateKey{k})
	res, err := pipeline.Run(t.Context(), enc, pipeline.Options{TempDir: t.TempDir(), Decrypter: dec})
	if !errors.Is(err, image.ErrDigestMismatch) {
		t.Errorf("scan of swapped layers: %v (result %v)", err, res != nil)
	}
	out := filepath.Join(dir, "out")
	if _, err := Decrypt(t.Context(), enc, "oci:"+out+":demo", []PrivateKey{k}, Options{TempDir: t.TempDir()}); !errors.Is(err, image.ErrDigestMismatch) {
		t.Errorf("decrypt of swapped layers: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Error("decrypt wrote an image from swapped layers")
	}
}
