package crypt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"

	"github.com/containers/ocicrypt"
	encconfig "github.com/containers/ocicrypt/config"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bulkhead-sec/bulkhead/image"
)

// Options say where images are and where temp files go.
type Options struct {
	// TempDir is the command's own temp directory: each re-encrypted layer
	// is written there before it is pushed (its digest goes in the
	// manifest, so it must be known first). Required.
	TempDir  string
	Insecure bool
	Platform *v1.Platform
	// Layers are the indexes of the layers to encrypt (encrypt only);
	// empty: all of them.
	Layers []int
}

// Decrypter decrypts encrypted layers for image.Open (image.LayerDecrypter).
type Decrypter struct{ dc *encconfig.DecryptConfig }

// NewDecrypter loads decryption keys.
func NewDecrypter(keys []PrivateKey) (*Decrypter, error) {
	dc, err := DecryptConfig(keys)
	if err != nil {
		return nil, err
	}
	return &Decrypter{dc: dc}, nil
}

// DecryptLayer implements image.LayerDecrypter. The reader it returns
// checks the layer's HMAC when it reaches the end of the ciphertext.
func (d *Decrypter) DecryptLayer(r io.Reader, desc v1.Descriptor) (io.Reader, error) {
	pr, _, err := ocicrypt.DecryptLayer(d.dc, r, ociDescriptor(desc), false)
	if err != nil {
		return nil, explainUnwrap(err)
	}
	return pr, nil
}

func explainUnwrap(err error) error {
	return fmt.Errorf("%w; is the decryption key the private key of one of the image's recipients?", err)
}

func ociDescriptor(d v1.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: string(d.MediaType), Digest: digest.Digest(d.Digest.String()), Size: d.Size, Annotations: d.Annotations}
}

// plainMediaType is the OCI media type a layer of media type mt is
// encrypted from (Docker media types become their OCI equivalents, as
// containers/image does: encrypted layers exist only in OCI manifests).
func plainMediaType(mt types.MediaType) (types.MediaType, error) {
	switch mt {
	case types.DockerLayer, types.OCILayer:
		return types.OCILayer, nil
	case types.DockerUncompressedLayer, types.OCIUncompressedLayer:
		return types.OCIUncompressedLayer, nil
	case types.OCILayerZStd:
		return types.OCILayerZStd, nil
	case types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return mt, nil
	}
	return "", fmt.Errorf("layer media type %q cannot be encrypted (it is not an OCI or Docker image layer)", mt)
}

// Encrypt copies the image src to dst with the chosen layers encrypted for
// the recipients. src and dst are image references as image.Open reads them
// (dst: oci:DIR[:TAG] or a registry reference).
func Encrypt(ctx context.Context, src, dst string, rs []Recipient, o Options) (*Report, error) {
	ec, err := EncryptConfig(rs)
	if err != nil {
		return nil, err
	}
	img, err := openSource(ctx, src, o, nil)
	if err != nil {
		var ee *image.EncryptedLayersError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%w (bulkhead encrypt takes a plain image: decrypt it first)", err)
		}
		return nil, err
	}
	defer img.Close()
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	sel := map[int]bool{}
	for _, i := range o.Layers {
		if i < 0 || i >= len(m.Layers) {
			return nil, fmt.Errorf("--layer %d: the image has %d layers (0 to %d)", i, len(m.Layers), len(m.Layers)-1)
		}
		sel[i] = true
	}
	out := m.DeepCopy()
	out.MediaType = types.OCIManifestSchema1
	out.Config.MediaType = types.OCIConfigJSON
	nm := &newImage{src: img, blobs: map[v1.Hash]string{}}
	rep := &Report{Source: src, Dest: dst}
	for i, l := range m.Layers {
		if image.IsEncryptedMediaType(string(l.MediaType)) {
			return nil, fmt.Errorf("layer %d %s is already encrypted; bulkhead encrypt takes a plain image", i, l.Digest)
		}
		pmt, err := plainMediaType(l.MediaType)
		if err != nil {
			return nil, fmt.Errorf("layer %d %s: %w", i, l.Digest, err)
		}
		out.Layers[i].MediaType = pmt
		if len(sel) > 0 && !sel[i] {
			continue
		}
		if len(l.URLs) > 0 {
			return nil, fmt.Errorf("layer %d %s is a foreign layer (it has URLs) and cannot be encrypted; choose other layers with --layer", i, l.Digest)
		}
		d, err := encryptLayer(ec, img, out.Layers[i], o.TempDir, nm)
		if err != nil {
			return nil, fmt.Errorf("encrypt layer %d %s: %w", i, l.Digest, err)
		}
		out.Layers[i] = d
		rep.Layers = append(rep.Layers, LayerReport{Index: i, From: l.Digest.String(), To: d.Digest.String(), MediaType: string(d.MediaType)})
	}
	if err := nm.write(ctx, out, dst, o); err != nil {
		return nil, err
	}
	rep.Digest = nm.digest.String()
	return rep, nil
}

// Report says what encrypt or decrypt did.
type Report struct {
	Source string        `json:"source"`
	Dest   string        `json:"destination"`
	Digest string        `json:"digest"`
	Layers []LayerReport `json:"layers"`
}

// LayerReport is one layer encrypted or decrypted.
type LayerReport struct {
	Index     int    `json:"index"`
	From      string `json:"from"`
	To        string `json:"to"`
	MediaType string `json:"mediaType"`
}

func openSource(ctx context.Context, src string, o Options, dec image.LayerDecrypter) (*image.Image, error) {
	img, err := image.Open(ctx, src, image.Options{TempDir: o.TempDir, Insecure: o.Insecure, Platform: o.Platform, Decrypter: dec})
	if err != nil {
		return nil, err
	}
	switch img.Source {
	case image.SourceRegistry, image.SourceOCILayout, image.SourceOCIArchive, image.SourceDockerArchive, image.SourceDaemon:
		return img, nil
	}
	img.Close()
	return nil, fmt.Errorf("%s is not an image (a %s); give a registry reference, oci:DIR[:TAG] or an archive", src, img.Source)
}

// hashingWriter counts and hashes what is written to a temp file.
type hashingWriter struct {
	f *os.File
	h hash.Hash
	n int64
}

func (w *hashingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

func (w *hashingWriter) digest() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
}

// verifyingReader checks a blob against its descriptor's digest and size
// at EOF.
type verifyingReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want v1.Descriptor
}

func newVerifyingReader(r io.Reader, d v1.Descriptor) *verifyingReader {
	return &verifyingReader{r: r, h: sha256.New(), want: d}
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.Digest.Hex || (v.want.Size > 0 && v.n != v.want.Size) {
			return n, fmt.Errorf("%w: blob %s (%d bytes) read as sha256:%s (%d bytes); the source is corrupt or was tampered with", image.ErrDigestMismatch, v.want.Digest, v.want.Size, got, v.n)
		}
	}
	return n, err
}

func (v *verifyingReader) done() bool { return hex.EncodeToString(v.h.Sum(nil)) == v.want.Digest.Hex }

func openLayer(img *image.Image, d v1.Descriptor) (io.ReadCloser, error) {
	if d.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("unsupported digest algorithm %s", d.Digest.Algorithm)
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, err
	}
	return l.Compressed()
}

// encryptLayer encrypts the layer d of img into a temp file of the new image.
func encryptLayer(ec *encconfig.EncryptConfig, img *image.Image, d v1.Descriptor, tmp string, nm *newImage) (v1.Descriptor, error) {
	rc, err := openLayer(img, d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer rc.Close()
	src := newVerifyingReader(rc, d)
	encR, fin, err := ocicrypt.EncryptLayer(ec, src, ociDescriptor(d))
	if err != nil {
		return v1.Descriptor{}, err
	}
	f, hw, err := nm.tempFile(tmp)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	if _, err := io.Copy(hw, encR); err != nil {
		return v1.Descriptor{}, err
	}
	if !src.done() {
		return v1.Descriptor{}, fmt.Errorf("the layer stream ended before its end")
	}
	ann, err := fin()
	if err != nil {
		return v1.Descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	out := d
	out.MediaType = d.MediaType + image.EncryptedSuffix
	out.Digest, out.Size = hw.digest(), hw.n
	out.Annotations = map[string]string{}
	for k, v := range d.Annotations {
		out.Annotations[k] = v
	}
	for k, v := range ann {
		out.Annotations[k] = v
	}
	nm.blobs[out.Digest] = f.Name()
	return out, nil
}

// Decrypt copies the image src to dst with every encrypted layer decrypted
// with the keys. Each decrypted layer is checked against the digest the
// encrypter recorded (inside the wrapped key) and against the config's
// diffID.
func Decrypt(ctx context.Context, src, dst string, keys []PrivateKey, o Options) (*Report, error) {
	dc, err := DecryptConfig(keys)
	if err != nil {
		return nil, err
	}
	img, err := openSource(ctx, src, o, image.KeepEncrypted)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	cfg := img.Config()
	out := m.DeepCopy()
	nm := &newImage{src: img, blobs: map[v1.Hash]string{}}
	rep := &Report{Source: src, Dest: dst}
	for i, l := range m.Layers {
		if !image.IsEncryptedMediaType(string(l.MediaType)) {
			continue
		}
		if i >= len(cfg.RootFS.DiffIDs) {
			return nil, fmt.Errorf("layer %d %s: the image config has no diffID for it, so its decrypted content cannot be verified", i, l.Digest)
		}
		d, err := decryptLayer(dc, img, l, cfg.RootFS.DiffIDs[i], o.TempDir, nm)
		if err != nil {
			return nil, fmt.Errorf("decrypt layer %d %s: %w", i, l.Digest, err)
		}
		out.Layers[i] = d
		rep.Layers = append(rep.Layers, LayerReport{Index: i, From: l.Digest.String(), To: d.Digest.String(), MediaType: string(d.MediaType)})
	}
	if len(rep.Layers) == 0 {
		return nil, fmt.Errorf("%s has no encrypted layers", src)
	}
	if err := nm.write(ctx, out, dst, o); err != nil {
		return nil, err
	}
	rep.Digest = nm.digest.String()
	return rep, nil
}

func decryptLayer(dc *encconfig.DecryptConfig, img *image.Image, d v1.Descriptor, diffID v1.Hash, tmp string, nm *newImage) (v1.Descriptor, error) {
	rc, err := openLayer(img, d)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer rc.Close()
	src := newVerifyingReader(rc, d)
	plain, want, err := ocicrypt.DecryptLayer(dc, src, ociDescriptor(d), false)
	if err != nil {
		return v1.Descriptor{}, explainUnwrap(err)
	}
	f, hw, err := nm.tempFile(tmp)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	// The diffID is computed from the same pass: the decrypted bytes go to
	// the temp file and, through a pipe, to the decompressor.
	pr, pw := io.Pipe()
	type result struct {
		h   v1.Hash
		err error
	}
	res := make(chan result, 1)
	go func() {
		h, err := image.DiffID(pr)
		if err == nil {
			_, err = io.Copy(io.Discard, pr) // what follows the compressed stream
		}
		pr.CloseWithError(err)
		res <- result{h, err}
	}()
	_, err = io.Copy(io.MultiWriter(hw, pw), plain)
	pw.CloseWithError(err)
	r := <-res
	if err != nil {
		return v1.Descriptor{}, err
	}
	if r.err != nil {
		return v1.Descriptor{}, fmt.Errorf("decrypted layer: %w", r.err)
	}
	if !src.done() {
		return v1.Descriptor{}, fmt.Errorf("the encrypted stream ended before its end")
	}
	got := hw.digest()
	if want != "" && string(want) != got.String() {
		return v1.Descriptor{}, fmt.Errorf("%w: the decrypted layer is %s but was %s when it was encrypted", image.ErrDigestMismatch, got, want)
	}
	if r.h != diffID {
		return v1.Descriptor{}, fmt.Errorf("%w: the decrypted layer's diffID is %s but the image config says %s", image.ErrDigestMismatch, r.h, diffID)
	}
	if err := f.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	out := d
	out.MediaType = types.MediaType(strings.TrimSuffix(string(d.MediaType), image.EncryptedSuffix))
	out.Digest, out.Size = got, hw.n
	out.Annotations = ocicrypt.FilterOutAnnotations(d.Annotations)
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	nm.blobs[out.Digest] = f.Name()
	return out, nil
}
