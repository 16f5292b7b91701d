package key

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// cosign-sigstore.pub is the public half of cosign's test key, checked in
// for the policy tests; it must stay its public half.
func TestCosignSigstorePub(t *testing.T) {
	s, err := LoadPrivate(context.Background(), filepath.Join("testdata", "cosign-sigstore.key"), func(bool) ([]byte, error) { return []byte("hello"), nil })
	if err != nil {
		t.Fatal(err)
	}
	want, _ := s.PublicPEM()
	path := filepath.Join("testdata", "cosign-sigstore.pub")
	if os.Getenv("BULKHEAD_UPDATE") != "" {
		os.WriteFile(path, want, 0o644)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("cosign-sigstore.pub is not the public key of cosign-sigstore.key (BULKHEAD_UPDATE=1 rewrites it)")
	}
}
