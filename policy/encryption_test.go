package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-sec/bulkhead/image/crypt"
)

// encryptDemo pushes the demo image to ref with the given layers
// encrypted (nil: all) for a fresh EC key.
func encryptDemo(t *testing.T, ref string, layers []int) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "pub.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := crypt.ParseRecipient("jwe:" + pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := crypt.Encrypt(context.Background(), "oci-archive:../testdata/images/alpine-demo.oci.tar", ref, []crypt.Recipient{r}, crypt.Options{TempDir: t.TempDir(), Insecure: true, Layers: layers}); err != nil {
		t.Fatal(err)
	}
}

// TestEncryptionRule: a policy that requires encrypted layers for some
// repositories, judged by the registry facts the gate and the webhook use,
// from the manifests alone (no key anywhere in the policy).
func TestEncryptionRule(t *testing.T) {
	host, _ := testRegistry(t)
	pushDemo(t, host+"/acme/clear:1")
	encryptDemo(t, host+"/acme/secret:1", nil)
	encryptDemo(t, host+"/acme/partly:1", []int{1})
	// A two-platform index: the amd64 image encrypted, the arm64 one not.
	encImg, err := remote.Image(mustRef(t, host+"/acme/secret:1"))
	if err != nil {
		t.Fatal(err)
	}
	clearImg, err := remote.Image(mustRef(t, host+"/acme/clear:1"))
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: encImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: clearImg, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	if err := remote.WriteIndex(mustRef(t, host+"/acme/multi:1"), idx); err != nil {
		t.Fatal(err)
	}
	const head = "apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n"
	scoped := "  - {name: encrypted, match: {images: ['" + host + "/acme/**']}, encryption: {required: true}}\n"
	for _, tc := range []struct {
		name    string
		rule    string
		image   string
		allowed bool
		want    []string
	}{
		{name: "unencrypted denied", rule: scoped, image: "/acme/clear:1",
			want: []string{`rule "encrypted" (encryption)`, "has 5 unencrypted layers", "layer 0 sha256:", "application/vnd.oci.image.layer.v1.tar+gzip)", "bulkhead encrypt"}},
		{name: "encrypted passes", rule: scoped, image: "/acme/secret:1", allowed: true},
		{name: "index with a clear platform denied", rule: scoped, image: "/acme/multi:1",
			want: []string{"(linux/arm64) has 5 unencrypted layers"}},
		{name: "one layer encrypted denied", rule: scoped, image: "/acme/partly:1",
			want: []string{"has 4 unencrypted layers", "layer 0 sha256:"}},
		{name: "any layer: one encrypted passes", rule: "  - {name: encrypted, encryption: {required: true, layers: any}}\n", image: "/acme/partly:1", allowed: true},
		{name: "any layer: none encrypted denied", rule: "  - {name: encrypted, encryption: {required: true, layers: any}}\n", image: "/acme/clear:1",
			want: []string{"has no encrypted layer"}},
		{name: "other repositories not in scope", rule: "  - {name: encrypted, match: {images: ['" + host + "/vault/**']}, encryption: {required: true}}\n", image: "/acme/clear:1", allowed: true},
		{name: "warn mode", rule: "  - {name: encrypted, mode: warn, encryption: {required: true}}\n", image: "/acme/clear:1", allowed: true,
			want: []string{"unencrypted"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse("test.yaml", []byte(head+tc.rule), "testdata")
			if err != nil {
				t.Fatal(err)
			}
			facts := &Registry{Insecure: true, TempDir: t.TempDir(), DBPath: filepath.Join(t.TempDir(), "db")}
			d := (&Engine{File: f, Facts: facts}).Evaluate(context.Background(), Input{Images: []string{host + tc.image}})
			if d.Allowed != tc.allowed {
				t.Fatalf("allowed %v, want %v: %s %q", d.Allowed, tc.allowed, d.Reason(), d.Warnings)
			}
			text := d.Reason() + strings.Join(d.Warnings, "; ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in %q", w, text)
				}
			}
			if facts.db != nil {
				t.Error("the encryption rule opened the vulnerability database (it needs the manifest only)")
			}
		})
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEncryptionRuleParse: mistakes in an encryption rule are reported.
func TestEncryptionRuleParse(t *testing.T) {
	head := "apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n"
	for _, tc := range []struct{ doc, want string }{
		{"  - {name: e, encryption: {}}\n", "required is false"},
		{"  - {name: e, encryption: {required: true, layers: most}}\n", `layers "most"`},
		{"  - {name: e, encryption: {required: true, keys: [a]}}\n", "keys"},
	} {
		if _, err := Parse("t.yaml", []byte(head+tc.doc), "testdata"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.doc, err)
		}
	}
}
