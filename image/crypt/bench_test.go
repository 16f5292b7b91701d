package crypt

import (
	"archive/tar"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// benchImage writes an OCI layout dir:big holding one layer of mb MiB of
// incompressible data (a tar of one file, gzip level 1), streamed to disk.
func benchImage(b *testing.B, dir string, mb int) string {
	b.Helper()
	gz := filepath.Join(dir, "layer.tar.gz")
	f, err := os.Create(gz)
	if err != nil {
		b.Fatal(err)
	}
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	size := int64(mb) << 20
	if err := tw.WriteHeader(&tar.Header{Name: "data.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		b.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for n := int64(0); n < size; n += int64(len(buf)) {
		rng.Read(buf)
		if _, err := tw.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	zw.Close()
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	l, err := tarball.LayerFromFile(gz, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		b.Fatal(err)
	}
	// OCI media types: skopeo's oci: transport finds only OCI manifests.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		b.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "src")
	if err := writeLayout(img, out, "big"); err != nil {
		b.Fatal(err)
	}
	os.Remove(gz)
	return "oci:" + out + ":big"
}

// BenchmarkEncryptDecrypt: encrypt then decrypt an image with one layer of
// $BULKHEAD_BENCH_LAYER_MB MiB (default 200), reported as MB/s of layer
// each way; with skopeo installed, skopeo's seconds for the same copy each
// way in the same run. $BULKHEAD_BENCH_KEEP keeps the image and the key
// pair in that directory (bench/encrypt.sh measures the CLI's peak RSS on
// them).
func BenchmarkEncryptDecrypt(b *testing.B) {
	mb := 200
	if s := os.Getenv("BULKHEAD_BENCH_LAYER_MB"); s != "" {
		mb, _ = strconv.Atoi(s)
	}
	dir := os.Getenv("BULKHEAD_BENCH_KEEP")
	if dir == "" {
		dir = b.TempDir()
	}
	src := benchImage(b, dir, mb)
	pub, priv := keyPair(b, dir, "rsa")
	r, _ := ParseRecipient("jwe:" + pub)
	k, _ := ParsePrivateKey(priv)
	ctx := context.Background()
	var encT, decT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		enc := "oci:" + filepath.Join(dir, "enc") + ":big"
		dec := "oci:" + filepath.Join(dir, "dec") + ":big"
		os.RemoveAll(filepath.Join(dir, "enc"))
		os.RemoveAll(filepath.Join(dir, "dec"))
		tmp := b.TempDir()
		t0 := time.Now()
		if _, err := Encrypt(ctx, src, enc, []Recipient{r}, Options{TempDir: tmp}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := Decrypt(ctx, enc, dec, []PrivateKey{k}, Options{TempDir: tmp}); err != nil {
			b.Fatal(err)
		}
		encT += t1.Sub(t0)
		decT += time.Since(t1)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(mb)*n/encT.Seconds(), "enc-MiB/s")
	b.ReportMetric(float64(mb)*n/decT.Seconds(), "dec-MiB/s")
	if _, err := exec.LookPath("skopeo"); err != nil {
		return
	}
	skopeoRun := func(args ...string) time.Duration {
		t0 := time.Now()
		cmd := exec.Command("skopeo", append([]string{"--insecure-policy"}, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+b.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("skopeo: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	os.RemoveAll(filepath.Join(dir, "sk-enc"))
	os.RemoveAll(filepath.Join(dir, "sk-dec"))
	se := skopeoRun("copy", "--encryption-key", "jwe:"+pub, src, "oci:"+filepath.Join(dir, "sk-enc")+":big")
	sd := skopeoRun("copy", "--decryption-key", priv, "oci:"+filepath.Join(dir, "sk-enc")+":big", "oci:"+filepath.Join(dir, "sk-dec")+":big")
	b.ReportMetric(float64(mb)/se.Seconds(), "skopeo-enc-MiB/s")
	b.ReportMetric(float64(mb)/sd.Seconds(), "skopeo-dec-MiB/s")
}
