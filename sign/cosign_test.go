package sign

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// Artifacts cosign v3 stored for an image (testdata/cosign) verify offline
// with cosign's public key, and not for another digest or key.
func TestCosignArtifacts(t *testing.T) {
	dir := filepath.Join("testdata", "cosign")
	d, _ := os.ReadFile(filepath.Join(dir, "DIGEST"))
	want, err := v1.NewHash(strings.TrimSpace(string(d)))
	if err != nil {
		t.Fatal(err)
	}
	other := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	v, err := key.LoadPublic(context.Background(), filepath.Join(dir, "cosign.pub"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong := otherKey(t)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	anns, err := ParseSimpleSigning(read("cosign3-legacy-0.payload.json"), want)
	if err != nil || anns["env"] != "prod" {
		t.Fatalf("payload: %v %v", anns, err)
	}
	if _, err := ParseSimpleSigning(read("cosign3-legacy-0.payload.json"), other); err == nil {
		t.Fatal("payload accepted for another digest")
	}
	p, err := VerifyDSSE(context.Background(), read("cosign3-legacy-0.dsse.json"), v)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ParseStatement(p, want)
	if err != nil || st.PredicateType != predicateTypes["openvex"] {
		t.Fatalf("statement: %v %v", st, err)
	}
	if _, err := VerifyDSSE(context.Background(), read("cosign3-legacy-0.dsse.json"), wrong); err == nil {
		t.Fatal("envelope verified with another key")
	}
	types := map[string]bool{}
	for _, f := range []string{"cosign3-referrer-0.bundle.json", "cosign3-referrer-1.bundle.json"} {
		res, err := verifyBundle(read(f), v, want)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		types[res.Statement.GetPredicateType()] = true
		if _, err := verifyBundle(read(f), v, other); err == nil {
			t.Fatalf("%s verified for another digest", f)
		}
		if _, err := verifyBundle(read(f), wrong, want); err == nil {
			t.Fatalf("%s verified with another key", f)
		}
	}
	if !types[CosignSignPredicateType] || !types[predicateTypes["openvex"]] {
		t.Fatalf("bundle predicate types %v", types)
	}
}
