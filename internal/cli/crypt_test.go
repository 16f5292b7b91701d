package cli

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
