package crypt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/pipeline"
)

const demoArchive = "../../testdata/images/alpine-demo.oci.tar"

// keyPair writes a fresh key pair (rsa or ec) as PEM files in dir and
// returns their paths.
func keyPair(t testing.TB, dir, kind string) (pub, priv string) {
	t.Helper()
	var k any
	var err error
	switch kind {
	case "rsa":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ec":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	var pubKey any
	switch kk := k.(type) {
	case *rsa.PrivateKey:
		pubKey = &kk.PublicKey
	case *ecdsa.PrivateKey:
		pubKey = &kk.PublicKey
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pubKey)
	if err != nil {
		t.Fatal(err)
	}
	pub, priv = filepath.Join(dir, kind+"-pub.pem"), filepath.Join(dir, kind+"-priv.pem")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// demoLayout writes the demo image as an OCI layout dir/src tagged demo
// and returns "oci:DIR:demo".
func demoLayout(t testing.TB, dir string) string {
	t.Helper()
	img, err := image.Open(context.Background(), "oci-archive:"+demoArchive, image.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	src := filepath.Join(dir, "src")
	if err := writeLayout(img.Image, src, "demo"); err != nil {
		t.Fatal(err)
	}
	return "oci:" + src + ":demo"
}

func needSkopeo(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("skopeo is missing: install the Debian package skopeo (scripts/setup-test-env.sh installs it)")
		}
		t.Skip("skopeo not installed (apt-get install -y skopeo)")
	}
}

func skopeo(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// layoutManifest reads the manifest and config of ref (oci:DIR:TAG) as
// stored, encrypted layers unread.
func layoutManifest(t *testing.T, ref string) (*v1.Manifest, *v1.ConfigFile) {
	t.Helper()
	img, err := image.Open(context.Background(), ref, image.Options{TempDir: t.TempDir(), Decrypter: image.KeepEncrypted})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	return m, img.Config()
}

// blobDiffIDs reads every layer blob of the layout image ref and returns
// the diffIDs of their content (not those the config claims).
func blobDiffIDs(t *testing.T, ref string) []v1.Hash {
	t.Helper()
	dir, _, _ := layoutDest(ref)
	m, _ := layoutManifest(t, ref)
	var out []v1.Hash
	for _, l := range m.Layers {
		if image.IsEncryptedMediaType(string(l.MediaType)) {
			t.Fatalf("layer %s still encrypted (%s)", l.Digest, l.MediaType)
		}
		f, err := os.Open(filepath.Join(dir, "blobs", l.Digest.Algorithm, l.Digest.Hex))
		if err != nil {
			t.Fatal(err)
		}
		h, err := image.DiffID(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h)
	}
	return out
}

func checkEncryptedManifest(t *testing.T, ref string, want int) {
	t.Helper()
	m, _ := layoutManifest(t, ref)
	n := 0
	for _, l := range m.Layers {
		if !image.IsEncryptedMediaType(string(l.MediaType)) {
			continue
		}
		n++
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip+encrypted" {
			t.Errorf("layer media type %s", l.MediaType)
		}
		if l.Annotations["org.opencontainers.image.enc.keys.jwe"] == "" || l.Annotations["org.opencontainers.image.enc.pubopts"] == "" {
			t.Errorf("layer %s annotations %v", l.Digest, l.Annotations)
		}
	}
	if n != want {
		t.Errorf("%s: %d encrypted layers, want %d", ref, n, want)
	}
}

// TestSkopeoInterop: skopeo encrypts and bulkhead decrypts, bulkhead
// encrypts and skopeo decrypts, with RSA and EC keys; the decrypted images'
// layers have the original diffIDs.
func TestSkopeoInterop(t *testing.T) {
	needSkopeo(t)
	dir := t.TempDir()
	src := demoLayout(t, dir)
	_, cfg := layoutManifest(t, src)
	want := cfg.RootFS.DiffIDs
	if got := blobDiffIDs(t, src); !slices.Equal(got, want) {
		t.Fatalf("source diffIDs %v, config %v", got, want)
	}
	for _, kind := range []string{"rsa", "ec"} {
		t.Run(kind, func(t *testing.T) {
			d := filepath.Join(dir, kind)
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
			pub, priv := keyPair(t, dir, kind)
			tmp := t.TempDir()

			// skopeo encrypts, bulkhead decrypts.
			skEnc := "oci:" + filepath.Join(d, "sk-enc") + ":demo"
			skopeo(t, "copy", "--encryption-key", "jwe:"+pub, src, skEnc)
			checkEncryptedManifest(t, skEnc, len(want))
			bhDec := "oci:" + filepath.Join(d, "bh-dec") + ":demo"
			k, err := ParsePrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			rep, err := Decrypt(t.Context(), skEnc, bhDec, []PrivateKey{k}, Options{TempDir: tmp})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Layers) != len(want) {
				t.Errorf("decrypted %d layers", len(rep.Layers))
			}
			if got := blobDiffIDs(t, bhDec); !slices.Equal(got, want) {
				t.Errorf("bulkhead-decrypted diffIDs %v, want %v", got, want)
			}

			// bulkhead encrypts, skopeo decrypts.
			r, err := ParseRecipient("jwe:" + pub)
			if err != nil {
				t.Fatal(err)
			}
			bhEnc := "oci:" + filepath.Join(d, "bh-enc") + ":demo"
			if _, err := Encrypt(t.Context(), src, bhEnc, []Recipient{r}, Options{TempDir: tmp}); err != nil {
				t.Fatal(err)
			}
			checkEncryptedManifest(t, bhEnc, len(want))
			skDec := "oci:" + filepath.Join(d, "sk-dec") + ":demo"
			skopeo(t, "copy", "--decryption-key", priv, bhEnc, skDec)
			if got := blobDiffIDs(t, skDec); !slices.Equal(got, want) {
				t.Errorf("skopeo-decrypted diffIDs %v, want %v", got, want)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				// The temp files belong to the command's temp dir; the
				// CLI removes that directory. Here we only check they
				// stayed inside it.
				for _, e := range left {
					if !strings.HasPrefix(e.Name(), "layer-") {
						t.Errorf("unexpected temp file %s", e.Name())
					}
				}
			}
		})
	}
}

// TestEncryptChosenLayers: --layer encrypts only those layers; the rest
// stay as they were, and bulkhead decrypt restores the image.
func TestEncryptChosenLayers(t *testing.T) {
	dir := t.TempDir()
	src := demoLayout(t, dir)
	m0, cfg := layoutManifest(t, src)
	if len(m0.Layers) < 2 {
		t.Skip("the demo image has one layer")
	}
	pub, priv := keyPair(t, dir, "ec")
	enc := "oci:" + filepath.Join(dir, "enc") + ":demo"
	r, _ := ParseRecipient("jwe:" + pub)
	if _, err := Encrypt(t.Context(), src, enc, []Recipient{r}, Options{TempDir: t.TempDir(), Layers: []int{1}}); err != nil {
		t.Fatal(err)
	}
	m, _ := layoutManifest(t, enc)
	for i, l := range m.Layers {
		if got := image.IsEncryptedMediaType(string(l.MediaType)); got != (i == 1) {
			t.Errorf("layer %d encrypted=%v", i, got)
		}
		if i != 1 && l.Digest != m0.Layers[i].Digest {
			t.Errorf("layer %d changed", i)
		}
	}
	if _, err := Encrypt(t.Context(), src, enc, []Recipient{r}, Options{TempDir: t.TempDir(), Layers: []int{len(m0.Layers)}}); err == nil || !strings.Contains(err.Error(), "--layer") {
		t.Errorf("out-of-range layer: %v", err)
	}
	k, _ := ParsePrivateKey(priv)
	dec := "oci:" + filepath.Join(dir, "dec") + ":demo"
	if _, err := Decrypt(t.Context(), enc, dec, []PrivateKey{k}, Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if got := blobDiffIDs(t, dec); !slices.Equal(got, cfg.RootFS.DiffIDs) {
		t.Errorf("diffIDs %v", got)
	}
	// The wrong key is a clear error, and nothing is written.
	_, other := keyPair(t, t.TempDir(), "rsa")
	ko, _ := ParsePrivateKey(other)
	bad := filepath.Join(dir, "bad")
	if _, err := Decrypt(t.Context(), enc, "oci:"+bad+":demo", []PrivateKey{ko}, Options{TempDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "layer 1") {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("a failed decrypt wrote %s", bad)
	}
}

func packages(inv *inventory.Inventory) []string {
	var out []string
	for _, p := range inv.Packages {
		out = append(out, p.PURL+"|"+p.Name+"|"+p.Version)
	}
	slices.Sort(out)
	return out
}

// TestScanEncrypted: an encrypted image scanned with the key gives the
// inventory of its clear original (same packages, same diffIDs); without
// the key, a typed error naming the encrypted layers and no result.
func TestScanEncrypted(t *testing.T) {
	dir := t.TempDir()
	src := demoLayout(t, dir)
	clear, err := pipeline.Run(t.Context(), src, pipeline.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"rsa", "ec"} {
		t.Run(kind, func(t *testing.T) {
			pub, priv := keyPair(t, t.TempDir(), kind)
			enc := "oci:" + filepath.Join(t.TempDir(), "enc") + ":demo"
			r, _ := ParseRecipient("jwe:" + pub)
			if _, err := Encrypt(t.Context(), src, enc, []Recipient{r}, Options{TempDir: t.TempDir()}); err != nil {
				t.Fatal(err)
			}
			res, err := pipeline.Run(t.Context(), enc, pipeline.Options{TempDir: t.TempDir()})
			var ee *image.EncryptedLayersError
			if !errors.As(err, &ee) || res != nil {
				t.Fatalf("without the key: %v, result %v", err, res)
			}
			if len(ee.Layers) != len(clear.Inventory.Target.Layers) || !strings.Contains(err.Error(), "layer 0 sha256:") || !strings.Contains(err.Error(), "--decryption-key") {
				t.Errorf("error: %v", err)
			}
			k, _ := ParsePrivateKey(priv)
			dec, err := NewDecrypter([]PrivateKey{k})
			if err != nil {
				t.Fatal(err)
			}
			got, err := pipeline.Run(t.Context(), enc, pipeline.Options{TempDir: t.TempDir(), Decrypter: dec})
			if err != nil {
				t.Fatal(err)
			}
			if a, b := packages(got.Inventory), packages(clear.Inventory); !slices.Equal(a, b) || len(a) == 0 {
				t.Errorf("packages differ:\n%v\n%v", a, b)
			}
			for i, l := range got.Inventory.Target.Layers {
				if l.DiffID != clear.Inventory.Target.Layers[i].DiffID {
					t.Errorf("layer %d diffID %s, clear %s", i, l.DiffID, clear.Inventory.Target.Layers[i].DiffID)
				}
			}
		})
	}
}

// certFor writes a self-signed certificate for the RSA private key file
// priv (PKCS#7 recipients are certificates).
func certFor(t *testing.T, dir, priv string) string {
	t.Helper()
	b, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rk := k.(*rsa.PrivateKey)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bulkhead test recipient"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &rk.PublicKey, rk)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPKCS7: ocicrypt's PKCS#7 scheme (an X.509 certificate as recipient)
// works in bulkhead both ways, and with skopeo (which takes the
// certificate next to the private key as a decryption key).
func TestPKCS7(t *testing.T) {
	dir := t.TempDir()
	src := demoLayout(t, dir)
	_, cfg := layoutManifest(t, src)
	_, priv := keyPair(t, dir, "rsa")
	cert := certFor(t, dir, priv)
	r, err := ParseRecipient("pkcs7:" + cert)
	if err != nil {
		t.Fatal(err)
	}
	enc := "oci:" + filepath.Join(dir, "enc") + ":demo"
	if _, err := Encrypt(t.Context(), src, enc, []Recipient{r}, Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	m, _ := layoutManifest(t, enc)
	if m.Layers[0].Annotations["org.opencontainers.image.enc.keys.pkcs7"] == "" {
		t.Fatalf("annotations %v", m.Layers[0].Annotations)
	}
	kp, _ := ParsePrivateKey(priv)
	kc, _ := ParsePrivateKey(cert)
	dec := "oci:" + filepath.Join(dir, "dec") + ":demo"
	if _, err := Decrypt(t.Context(), enc, dec, []PrivateKey{kp, kc}, Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if got := blobDiffIDs(t, dec); !slices.Equal(got, cfg.RootFS.DiffIDs) {
		t.Errorf("diffIDs %v", got)
	}
	// Without the certificate PKCS#7 cannot unwrap: a clear error.
	if _, err := Decrypt(t.Context(), enc, "oci:"+filepath.Join(dir, "nocert")+":demo", []PrivateKey{kp}, Options{TempDir: t.TempDir()}); err == nil {
		t.Error("decrypted PKCS#7 without the certificate")
	}
	if _, err := exec.LookPath("skopeo"); err != nil {
		return
	}
	skDec := "oci:" + filepath.Join(dir, "sk-dec") + ":demo"
	skopeo(t, "copy", "--decryption-key", priv, "--decryption-key", cert, enc, skDec)
	if got := blobDiffIDs(t, skDec); !slices.Equal(got, cfg.RootFS.DiffIDs) {
		t.Errorf("skopeo-decrypted diffIDs %v", got)
	}
	skEnc := "oci:" + filepath.Join(dir, "sk-enc") + ":demo"
	skopeo(t, "copy", "--encryption-key", "pkcs7:"+cert, src, skEnc)
	bhDec := "oci:" + filepath.Join(dir, "bh-dec") + ":demo"
	if _, err := Decrypt(t.Context(), skEnc, bhDec, []PrivateKey{kp, kc}, Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if got := blobDiffIDs(t, bhDec); !slices.Equal(got, cfg.RootFS.DiffIDs) {
		t.Errorf("bulkhead-decrypted diffIDs %v", got)
	}
}
