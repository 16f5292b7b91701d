package crypt

import (
	"bytes"
	"io"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FuzzParseKeys: key arguments never panic; an accepted recipient has a
// supported scheme and a file; an accepted private key has a file and no
// scheme, and an error never repeats a pass= password.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{"jwe:pub.pem", "pkcs7:cert.pem", "pgp:me@example.com", "jwe:", "priv.pem", "priv.pem:pass=secret",
		"priv.pem:file=pw.txt", "priv.pem:env=PW", "priv.pem:secret", ":pass=x", "provider:kms:x", "a:b:c", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// A password given as :pass= must not come back in an error.
		leaks := func(err error) bool {
			i := strings.Index(s, ":pass=")
			if i < 0 || err == nil {
				return false
			}
			pw := s[i+len(":pass="):]
			return pw != "" && !strings.HasPrefix("REDACTED", pw) && strings.Contains(err.Error(), ":pass="+shorten(pw))
		}
		r, err := ParseRecipient(s)
		if err == nil && ((r.Scheme != JWE && r.Scheme != PKCS7) || r.Path == "" || r.String() != s) {
			t.Fatalf("%q parsed as %+v", s, r)
		}
		if leaks(err) {
			t.Fatalf("recipient error repeats the password: %v", err)
		}
		k, err := ParsePrivateKey(s)
		if err == nil && (k.Path == "" || strings.HasPrefix(s, "jwe:")) {
			t.Fatalf("%q parsed as %+v", s, k)
		}
		if leaks(err) {
			t.Fatalf("private key error repeats the password: %v", err)
		}
	})
}

// FuzzDecryptAnnotations: the wrapped-key and pubopts annotations come
// from the manifest (network input): whatever they hold, decryption with a
// real key fails with an error, never a panic, and never yields content
// that was not authenticated.
func FuzzDecryptAnnotations(f *testing.F) {
	dir := f.TempDir()
	_, priv := keyPair(f, dir, "ec")
	k, err := ParsePrivateKey(priv)
	if err != nil {
		f.Fatal(err)
	}
	d, err := NewDecrypter([]PrivateKey{k})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("eyJwcm90ZWN0ZWQiOiJleUpoYkdjaU9pSkZRMFJJTFVWVEsw", "eyJjaXBoZXIiOiJBRVNfMjU2X0NUUl9ITUFDX1NIQTI1NiJ9", []byte("ciphertext"))
	f.Add("", "", []byte{})
	f.Add("!!!,???", "e30=", []byte{1, 2, 3})
	f.Add("e30=", "eyJjaXBoZXIiOiJ4In0=", []byte("x"))
	f.Fuzz(func(t *testing.T, jwe, pubopts string, body []byte) {
		desc := v1.Descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip+encrypted",
			Annotations: map[string]string{"org.opencontainers.image.enc.keys.jwe": jwe, "org.opencontainers.image.enc.pubopts": pubopts}}
		r, err := d.DecryptLayer(bytes.NewReader(body), desc)
		if err != nil {
			return
		}
		// The wrapped key cannot have been made for this fresh key pair.
		if _, err := io.Copy(io.Discard, io.LimitReader(r, 1<<20)); err == nil {
			t.Fatalf("decrypted %d bytes with forged annotations", len(body))
		}
	})
}
