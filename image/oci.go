package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-sec/bulkhead/secret"
)

// maxMetadata bounds manifests, indexes and configs read into memory.
const maxMetadata = 8 << 20

// blobStore reads the files of an OCI layout, from a directory or from an
// indexed tar archive.
type blobStore interface {
	open(name string) (io.ReadCloser, int64, error)
	readAll(name string) ([]byte, error)
}

type dirStore struct{ root string }

func (d dirStore) path(name string) (string, error) {
	clean := cleanArchivePath(name)
	if clean == "" || strings.HasPrefix(clean, "..") {
		return "", fmt.Errorf("invalid layout path %q", name)
	}
	return filepath.Join(d.root, filepath.FromSlash(clean)), nil
}

func (d dirStore) open(name string) (io.ReadCloser, int64, error) {
	p, err := d.path(name)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s is not a regular file", p)
	}
	return f, st.Size(), nil
}

func (d dirStore) readAll(name string) ([]byte, error) {
	rc, size, err := d.open(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxMetadata {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte limit for metadata", name, size, maxMetadata)
	}
	return io.ReadAll(rc)
}

type tarStore struct{ idx *tarIndex }

func (t tarStore) open(name string) (io.ReadCloser, int64, error) {
	sr, err := t.idx.open(name)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(sr), sr.Size(), nil
}

func (t tarStore) readAll(name string) ([]byte, error) { return t.idx.readAll(name, maxMetadata) }

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// readBlob reads a small blob and checks it against its digest.
func readBlob(s blobStore, h v1.Hash) ([]byte, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return nil, fmt.Errorf("unsupported digest %q", h)
	}
	b, err := s.readAll(blobPath(h))
	if err != nil {
		return nil, err
	}
	if err := checkDigest(b, h); err != nil {
		return nil, err
	}
	return b, nil
}

func checkDigest(b []byte, h v1.Hash) error {
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != h.Hex {
		return fmt.Errorf("%w: blob %s has digest sha256:%s", ErrDigestMismatch, h, got)
	}
	return nil
}

// ociImage is a v1.Image over a blob store, built with partial.
type ociImage struct {
	store     blobStore
	manifest  []byte
	mediaType types.MediaType
	config    []byte
	layers    map[v1.Hash]v1.Descriptor
}

func (o *ociImage) RawManifest() ([]byte, error)        { return o.manifest, nil }
func (o *ociImage) RawConfigFile() ([]byte, error)      { return o.config, nil }
func (o *ociImage) MediaType() (types.MediaType, error) { return o.mediaType, nil }
func (o *ociImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := o.layers[h]
	if !ok {
		return nil, fmt.Errorf("no layer %s in the image", h)
	}
	return &ociLayer{store: o.store, desc: d}, nil
}

type ociLayer struct {
	store blobStore
	desc  v1.Descriptor
}

func (l *ociLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }
func (l *ociLayer) Size() (int64, error)     { return l.desc.Size, nil }
func (l *ociLayer) MediaType() (types.MediaType, error) {
	return l.desc.MediaType, nil
}
func (l *ociLayer) Compressed() (io.ReadCloser, error) {
	rc, _, err := l.store.open(blobPath(l.desc.Digest))
	return rc, err
}

// openOCI reads an OCI layout (directory or archive) and picks the image by
// tag or platform.
func openOCI(s blobStore, name, source, tag string, opts Options) (*Image, error) {
	raw, err := s.readAll("index.json")
	if err != nil {
		return nil, fmt.Errorf("%s: not an OCI image layout: %w", name, err)
	}
	desc, err := selectManifest(s, raw, tag, opts, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	mb, err := readBlob(s, desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", name, err)
	}
	m, err := v1.ParseManifest(bytes.NewReader(mb))
	if err != nil {
		return nil, fmt.Errorf("%s: parse manifest %s: %w", name, desc.Digest, err)
	}
	cb, err := readBlob(s, m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", name, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cb))
	if err != nil {
		return nil, fmt.Errorf("%s: parse config %s: %w", name, m.Config.Digest, err)
	}
	oi := &ociImage{store: s, manifest: mb, mediaType: m.MediaType, config: cb, layers: map[v1.Hash]v1.Descriptor{}}
	if oi.mediaType == "" {
		oi.mediaType = desc.MediaType
	}
	layers := make([]storedLayer, 0, len(m.Layers))
	for _, ld := range m.Layers {
		ld := ld
		oi.layers[ld.Digest] = ld
		layers = append(layers, storedLayer{
			open: func() (io.ReadCloser, error) {
				rc, _, err := s.open(blobPath(ld.Digest))
				if err != nil {
					return nil, fmt.Errorf("layer %s: %w", ld.Digest, err)
				}
				return rc, nil
			},
			digest: ld.Digest,
			size:   ld.Size,
		})
	}
	if err := checkEncrypted(name, m, layers, opts.Decrypter); err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(oi)
	if err != nil {
		return nil, err
	}
	out := &Image{Image: img, Name: name, Source: source, Digest: desc.Digest, ManifestAnnotations: m.Annotations, IndexAnnotations: desc.Annotations}
	if ref := desc.Annotations["io.containerd.image.name"]; ref != "" {
		out.RepoTags = []string{ref}
	}
	if err := out.setLayers(cfg, layers); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

func selectManifest(s blobStore, rawIndex []byte, tag string, opts Options, depth int) (v1.Descriptor, error) {
	if depth > 4 {
		return v1.Descriptor{}, fmt.Errorf("image indexes nested too deep")
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(rawIndex, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("parse image index: %w", err)
	}
	cands := idx.Manifests
	if tag != "" && depth == 0 {
		var tagged []v1.Descriptor
		for _, d := range cands {
			rn := d.Annotations[refNameAnnotation]
			if rn == tag || strings.HasSuffix(rn, ":"+tag) || d.Annotations["io.containerd.image.name"] == tag {
				tagged = append(tagged, d)
			}
		}
		if len(tagged) == 0 {
			return v1.Descriptor{}, fmt.Errorf("no image tagged %q in the layout (tags are %s)", tag, strings.Join(refNames(cands), ", "))
		}
		cands = tagged
	}
	want := HostPlatform()
	if opts.Platform != nil {
		want = *opts.Platform
	}
	var imgs []v1.Descriptor
	for _, d := range cands {
		switch {
		case d.MediaType.IsIndex():
			b, err := readBlob(s, d.Digest)
			if err != nil {
				return v1.Descriptor{}, fmt.Errorf("nested index: %w", err)
			}
			nd, err := selectManifest(s, b, "", opts, depth+1)
			if err != nil {
				return v1.Descriptor{}, err
			}
			if nd.Annotations == nil {
				nd.Annotations = d.Annotations
			}
			return nd, nil
		case d.MediaType.IsImage() || d.MediaType == "":
			imgs = append(imgs, d)
		}
	}
	if len(imgs) == 0 {
		return v1.Descriptor{}, fmt.Errorf("the layout holds no image manifest")
	}
	if len(imgs) == 1 && (imgs[0].Platform == nil || depth == 0) {
		return imgs[0], nil
	}
	for _, d := range imgs {
		if d.Platform != nil && d.Platform.Satisfies(want) {
			return d, nil
		}
	}
	if depth == 0 && tag == "" {
		return v1.Descriptor{}, fmt.Errorf("the layout holds %d images (%s); name one with DIR:TAG", len(imgs), strings.Join(refNames(imgs), ", "))
	}
	return v1.Descriptor{}, fmt.Errorf("no image for platform %s in the index; choose one with --platform", want.String())
}

func refNames(ds []v1.Descriptor) []string {
	var out []string
	for _, d := range ds {
		if rn := d.Annotations[refNameAnnotation]; rn != "" {
			out = append(out, secret.RedactValue("", rn))
		} else {
			out = append(out, d.Digest.String())
		}
	}
	return out
}

// OpenLayout opens an image from an OCI image layout directory.
func OpenLayout(dir, tag string, opts Options) (*Image, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout (no oci-layout file): %w", dir, err)
	}
	name := "oci:" + dir
	if tag != "" {
		name += ":" + tag
	}
	return openOCI(dirStore{root: dir}, name, SourceOCILayout, tag, opts)
}
