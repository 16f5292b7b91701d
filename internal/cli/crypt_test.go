package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bulkhead-sec/bulkhead/image"
)

// TestEncryptScanDecrypt: the commands end to end on the demo image: an
// encrypted image scanned without --decryption-key exits 1 naming the
// layers and writes no report; with the key, the inventory is the clear
// image's; decrypt gives back an image that scans the same.
func TestEncryptScanDecrypt(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	privDER, _ := x509.MarshalECPrivateKey(k)
	pub, priv := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "priv.pem")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: privDER}), 0o600)
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o700)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, &out, &errb)
		return code, out.String(), errb.String()
	}
	src := "oci-archive:../../testdata/images/alpine-demo.oci.tar"
	enc := "oci:" + filepath.Join(dir, "enc") + ":demo"
	if code, out, errs := run("encrypt", "--temp-dir", tmp, "--key", "jwe:"+pub, src, enc); code != 0 || !strings.Contains(out, "encrypted layer 0: sha256:") {
		t.Fatalf("encrypt: %d %s %s", code, out, errs)
	}
	code, out, errs := run("image", "-q", "--scanners", "none", "--format", "json", "--temp-dir", tmp, enc)
	if code != 1 || out != "" || !strings.Contains(errs, "encrypted layers (layer 0 sha256:") || !strings.Contains(errs, "--decryption-key") {
		t.Fatalf("scan without key: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	pkgs := func(args ...string) []string {
		t.Helper()
		code, out, errs := run(append([]string{"image", "-q", "--scanners", "none", "--format", "json", "--temp-dir", tmp}, args...)...)
		if code != 0 {
			t.Fatalf("scan %v: %d %s", args, code, errs)
		}
		var rep struct {
			Packages []struct{ Name, Version string }
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, p := range rep.Packages {
			s = append(s, p.Name+"@"+p.Version)
		}
		return s
	}
	clear := pkgs(src)
	if len(clear) == 0 {
		t.Fatal("no packages in the demo image")
	}
	if got := pkgs("--decryption-key", priv, enc); strings.Join(got, ",") != strings.Join(clear, ",") {
		t.Errorf("encrypted scan %v, clear %v", got, clear)
	}
	dec := "oci:" + filepath.Join(dir, "dec") + ":demo"
	if code, out, errs := run("decrypt", "--temp-dir", tmp, "--format", "json", "--key", priv, enc, dec); code != 0 || !strings.Contains(out, `"layers"`) {
		t.Fatalf("decrypt: %d %s %s", code, out, errs)
	}
	if got := pkgs(dec); strings.Join(got, ",") != strings.Join(clear, ",") {
		t.Errorf("decrypted scan %v", got)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir not cleaned: %v", left)
	}
	if code, _, errs := run("encrypt", "--key", "pgp:me@example.com", src, enc); code != 1 || !strings.Contains(errs, "not supported") {
		t.Errorf("pgp: %d %s", code, errs)
	}
}

// TestGateEncryptionRule: bulkhead gate with a rule requiring encrypted
// layers under acme/: the clear image is denied (exit 1) naming its
// unencrypted layers, the image bulkhead encrypt pushed passes, and no
// key is given to the gate.
func TestGateEncryptionRule(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub := filepath.Join(dir, "pub.pem")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
	src := "oci-archive:../../testdata/images/alpine-demo.oci.tar"
	var out, errb bytes.Buffer
	if code := Main([]string{"encrypt", "--insecure", "--key", "jwe:" + pub, src, host + "/acme/app:enc"}, &out, &errb); code != 0 {
		t.Fatalf("encrypt: %s", errb.String())
	}
	// decrypt refuses a clear image (and pushes nothing).
	privDER, _ := x509.MarshalPKCS8PrivateKey(k)
	priv := filepath.Join(dir, "priv.pem")
	os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600)
	errb.Reset()
	if code := Main([]string{"decrypt", "--insecure", "--key", priv, src, host + "/acme/app:clear"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "has no encrypted layers") {
		t.Fatalf("decrypt of a clear image: exit %d %s", code, errb.String())
	}
	clearImg, err := image.Open(t.Context(), src, image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer clearImg.Close()
	ref, _ := name.ParseReference(host+"/acme/app:clear", name.Insecure)
	if err := remote.Write(ref, clearImg.Image); err != nil {
		t.Fatal(err)
	}
	pol := filepath.Join(dir, "policy.yaml")
	os.WriteFile(pol, []byte("apiVersion: bulkhead.dev/v1\nkind: Policy\nrules:\n  - {name: encrypted, match: {images: ['"+host+"/acme/**']}, encryption: {required: true}}\n"), 0o644)
	gate := func(img string) (int, string) {
		var out, errb bytes.Buffer
		code := Main([]string{"gate", "--policy", pol, "--insecure", "--db", filepath.Join(dir, "db"), img}, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, text := gate(host + "/acme/app:clear"); code != 1 || !strings.Contains(text, `rule "encrypted" (encryption)`) || !strings.Contains(text, "5 unencrypted layers") {
		t.Errorf("clear image: exit %d\n%s", code, text)
	}
	if code, text := gate(host + "/acme/app:enc"); code != 0 || !strings.Contains(text, "ALLOWED") {
		t.Errorf("encrypted image: exit %d\n%s", code, text)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err == nil {
		t.Error("the gate built a vulnerability database for a manifest-only rule")
	}
}
