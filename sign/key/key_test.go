package key

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func static(pw string) PassFunc { return func(bool) ([]byte, error) { return []byte(pw), nil } }

// cosignKeys are key files made by cosign (see testdata/SOURCES.md) with
// their passwords and key types.
var cosignKeys = []struct {
	file, pass, kind string
}{
	{"cosign-v1-rsa.key", "hello", "ecdsa"}, // named RSA in cosign's test, an ECDSA key
	{"cosign-v1-ec.key", "hello", "ecdsa"},
	{"cosign-sigstore.key", "hello", "ecdsa"},
	{"cosign2-generated.key", "bulkhead-test", "ecdsa"},
	{"cosign3-generated.key", "bulkhead-test", "ecdsa"},
	{"cosign2-imported-ed25519.key", "bulkhead-test", "ed25519"},
	{"cosign2-imported-rsa.key", "bulkhead-test", "rsa"},
}

func kindOf(s *Signer) string {
	switch s.Private.Public().(type) {
	case *ecdsa.PublicKey:
		return "ecdsa"
	case ed25519.PublicKey:
		return "ed25519"
	case *rsa.PublicKey:
		return "rsa"
	}
	return "?"
}

func TestCosignKeys(t *testing.T) {
	for _, tc := range cosignKeys {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("fixture missing: %v", err)
			}
			s, err := LoadPrivate(context.Background(), path, static(tc.pass))
			if err != nil {
				t.Fatal(err)
			}
			if got := kindOf(s); got != tc.kind {
				t.Fatalf("key type %s, want %s", got, tc.kind)
			}
			msg := []byte("payload to sign")
			sig, err := s.SignMessage(bytes.NewReader(msg))
			if err != nil {
				t.Fatal(err)
			}
			// The public half from the .pub cosign wrote, when there is one.
			pubPath := strings.TrimSuffix(path, ".key") + ".pub"
			var v *Verifier
			if _, err := os.Stat(pubPath); err == nil {
				v, err = LoadPublic(context.Background(), pubPath, nil)
				if err != nil {
					t.Fatal(err)
				}
			} else if v, err = s.Verifier(); err != nil {
				t.Fatal(err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
				t.Fatalf("signature by %s does not verify with its public key: %v", tc.file, err)
			}
			if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader([]byte("other"))); err == nil {
				t.Fatal("signature verified over another message")
			}
			if _, err := LoadPrivate(context.Background(), path, static(tc.pass+"x")); err == nil || !strings.Contains(err.Error(), "wrong password") {
				t.Fatalf("wrong password: got %v", err)
			}
		})
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	for _, pw := range []string{"s3cret", ""} {
		priv, pub, err := Generate([]byte(pw))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(priv); b == nil || b.Type != SigstorePrivateKeyType {
			t.Fatalf("private key PEM type: %q", priv[:40])
		}
		if b, _ := pem.Decode(pub); b == nil || b.Type != PublicKeyType {
			t.Fatalf("public key PEM type: %q", pub[:30])
		}
		s, err := ParsePrivate(priv, static(pw))
		if err != nil {
			t.Fatal(err)
		}
		if kindOf(s) != "ecdsa" {
			t.Fatal("not ECDSA")
		}
		v, err := ParsePublic(pub)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := s.SignMessage(bytes.NewReader([]byte("x")))
		if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEnvRef(t *testing.T) {
	priv, pub, err := Generate([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BULKHEAD_TEST_KEY", string(priv))
	t.Setenv("BULKHEAD_TEST_PUB", string(pub))
	s, err := LoadPrivate(context.Background(), "env://BULKHEAD_TEST_KEY", static("pw"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadPublic(context.Background(), "env://BULKHEAD_TEST_PUB", nil)
	if err != nil {
		t.Fatal(err)
	}
	// A private key given where a public one is expected: its public half.
	v2, err := LoadPublic(context.Background(), "env://BULKHEAD_TEST_KEY", static("pw"))
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := s.SignMessage(bytes.NewReader([]byte("x")))
	for _, vv := range []*Verifier{v, v2} {
		if err := vv.VerifySignature(bytes.NewReader(sig), bytes.NewReader([]byte("x"))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBadKeys(t *testing.T) {
	pub, _ := os.ReadFile(filepath.Join("testdata", "cosign2-generated.pub"))
	priv, _ := os.ReadFile(filepath.Join("testdata", "cosign-sigstore.key"))
	cases := []struct {
		name, ref, want string
		private         bool
	}{
		{"missing env", "env://BULKHEAD_NOT_SET_ANYWHERE", "not set", true},
		{"aws kms reference without the key", "awskms://alias/x", "awskms://[ENDPOINT]/[ID/ALIAS/ARN]", true},
		{"vault without an address", "hashivault://transit-key", "VAULT_ADDR or BAO_ADDR is not set", false},
		{"vault key name with a slash", "hashivault://a/b", "hashivault://<key>", false},
		{"gcp reference without the key ring", "gcpkms://projects/p/locations/l", "gcpkms://projects/[PROJECT_ID]", true},
		{"azure reference without the key", "azurekms://vault", "azurekms://[VAULT_NAME]", false},
		{"kubernetes secret", "k8s://ns/secret", "not supported", true},
		{"pkcs11", "pkcs11:token=x", "not supported", false},
		{"no file", filepath.Join(t.TempDir(), "nope.key"), "no such file", true},
		{"public as private", "env://PUB", "unsupported private key PEM type", true},
		{"private as public without password", "env://PRIV", "needs a password", false},
		{"not PEM", "env://JUNK", "no PEM block", true},
		{"not PEM public", "env://JUNK", "no PEM block", false},
		{"truncated ciphertext", "env://TRUNC", "decrypt private key", true},
	}
	t.Setenv("PUB", string(pub))
	t.Setenv("PRIV", string(priv))
	t.Setenv("JUNK", "hello world")
	t.Setenv("VAULT_ADDR", "")
	t.Setenv("BAO_ADDR", "")
	blk, _ := pem.Decode(priv)
	blk.Bytes = blk.Bytes[:len(blk.Bytes)/2]
	t.Setenv("TRUNC", string(pem.EncodeToMemory(blk)))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.private {
				_, err = LoadPrivate(context.Background(), tc.ref, static("hello"))
			} else {
				_, err = LoadPublic(context.Background(), tc.ref, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// Hostile scrypt parameters must be refused before the KDF runs.
func TestScryptParamsBounded(t *testing.T) {
	body := []byte(`{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":"AAAA"},"cipher":{"name":"nacl/secretbox","nonce":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},"ciphertext":"AAAA"}`)
	p := pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyType, Bytes: body})
	_, err := ParsePrivate(p, static("x"))
	if err == nil || !strings.Contains(err.Error(), "scrypt") {
		t.Fatalf("got %v", err)
	}
}

func TestHint(t *testing.T) {
	s, err := LoadPrivate(context.Background(), filepath.Join("testdata", "cosign-sigstore.key"), static("hello"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := Hint(s.Private.Public())
	if err != nil || len(h) != 44 {
		t.Fatalf("hint %q %v", h, err)
	}
}

func FuzzParsePrivate(f *testing.F) {
	for _, tc := range cosignKeys {
		if b, err := os.ReadFile(filepath.Join("testdata", tc.file)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParsePrivate(b, static("hello"))
		if err == nil && s == nil {
			t.Fatal("nil signer without error")
		}
	})
}

func FuzzParsePublic(f *testing.F) {
	for _, name := range []string{"cosign2-generated.pub", "cosign3-generated.pub", "cosign2-imported-ed25519.pub"} {
		if b, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParsePublic(b)
		if err == nil && v == nil {
			t.Fatal("nil verifier without error")
		}
	})
}

func BenchmarkLoadPrivate(b *testing.B) {
	priv, err := os.ReadFile(filepath.Join("testdata", "cosign-sigstore.key"))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := ParsePrivate(priv, static("hello")); err != nil {
			b.Fatal(err)
		}
	}
}
