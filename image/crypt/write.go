package crypt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bulkhead-sec/bulkhead/image"
)

// newImage is the image being written: the new manifest, layers from temp
// files (re-encrypted ones) or from the source image (the others), and the
// source's config blob unchanged.
type newImage struct {
	src      *image.Image
	blobs    map[v1.Hash]string // digest -> temp file
	manifest []byte
	mt       types.MediaType
	layers   map[v1.Hash]v1.Descriptor
	digest   v1.Hash
}

func (n *newImage) tempFile(dir string) (*os.File, *hashingWriter, error) {
	if dir == "" {
		return nil, nil, fmt.Errorf("no temp directory for the layers")
	}
	f, err := os.CreateTemp(dir, "layer-")
	if err != nil {
		return nil, nil, err
	}
	return f, &hashingWriter{f: f, h: sha256.New()}, nil
}

func (n *newImage) RawManifest() ([]byte, error)        { return n.manifest, nil }
func (n *newImage) MediaType() (types.MediaType, error) { return n.mt, nil }
func (n *newImage) RawConfigFile() ([]byte, error)      { return n.src.RawConfigFile() }
func (n *newImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := n.layers[h]
	if !ok {
		return nil, fmt.Errorf("no layer %s in the new image", h)
	}
	return &newLayer{n: n, d: d}, nil
}

type newLayer struct {
	n *newImage
	d v1.Descriptor
}

func (l *newLayer) Digest() (v1.Hash, error)            { return l.d.Digest, nil }
func (l *newLayer) Size() (int64, error)                { return l.d.Size, nil }
func (l *newLayer) MediaType() (types.MediaType, error) { return l.d.MediaType, nil }
func (l *newLayer) Compressed() (io.ReadCloser, error) {
	if p, ok := l.n.blobs[l.d.Digest]; ok {
		return os.Open(p)
	}
	rc, err := openLayer(l.n.src, l.d)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{newVerifyingReader(rc, l.d), rc}, nil
}

// Descriptor keeps the layer's annotations (the wrapped keys) in what
// go-containerregistry writes.
func (l *newLayer) Descriptor() (*v1.Descriptor, error) { d := l.d; return &d, nil }

// write writes the image with manifest m to dst: oci:DIR[:TAG] (created,
// or the image tagged TAG replaced) or a registry reference.
func (n *newImage) write(ctx context.Context, m *v1.Manifest, dst string, o Options) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	n.manifest, n.mt = b, m.MediaType
	n.layers = map[v1.Hash]v1.Descriptor{}
	for _, l := range m.Layers {
		n.layers[l.Digest] = l
	}
	n.digest, _, err = v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	img, err := partial.CompressedToImage(n)
	if err != nil {
		return err
	}
	if dir, tag, ok := layoutDest(dst); ok {
		return writeLayout(img, dir, tag)
	}
	if strings.HasPrefix(dst, "oci-archive:") || strings.HasPrefix(dst, "docker-archive:") || strings.HasPrefix(dst, "docker:") || strings.HasPrefix(dst, "podman:") {
		return fmt.Errorf("destination %s: write to oci:DIR[:TAG] or a registry reference", dst)
	}
	ref, err := image.ParseReference(dst, o.Insecure)
	if err != nil {
		return fmt.Errorf("destination %s: %w", dst, err)
	}
	if err := remote.Write(ref, img, image.RemoteOptions(ctx, image.Options{Insecure: o.Insecure})...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// layoutDest splits oci:DIR[:TAG] (and oci-layout:).
func layoutDest(dst string) (dir, tag string, ok bool) {
	rest, ok := strings.CutPrefix(dst, "oci:")
	if !ok {
		if rest, ok = strings.CutPrefix(dst, "oci-layout:"); !ok {
			return "", "", false
		}
	}
	if st, err := os.Stat(rest); err == nil && st.IsDir() {
		return rest, "", true
	}
	if i := strings.LastIndex(rest, ":"); i > 0 {
		return rest[:i], rest[i+1:], true
	}
	return rest, "", true
}

const refName = "org.opencontainers.image.ref.name"

func writeLayout(img v1.Image, dir, tag string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			if ents, _ := os.ReadDir(dir); len(ents) > 0 {
				return fmt.Errorf("%s exists and is not an OCI image layout: %w", dir, err)
			}
		}
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("create OCI layout %s: %w", dir, err)
		}
	}
	var opts []layout.Option
	matcher := func(d v1.Descriptor) bool { return d.Annotations[refName] == "" }
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{refName: tag}))
		matcher = match.Annotation(refName, tag)
	}
	if err := p.ReplaceImage(img, matcher, opts...); err != nil {
		return fmt.Errorf("write %s: %w", dir, err)
	}
	return nil
}
