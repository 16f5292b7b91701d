package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// SimpleSigningPayload is the payload cosign signs for an image in the
// legacy layout (containers/image's simple signing format).
func SimpleSigningPayload(d name.Digest, annotations map[string]string) ([]byte, error) {
	var anns map[string]any
	if len(annotations) > 0 {
		anns = make(map[string]any, len(annotations))
		for k, v := range annotations {
			anns[k] = v
		}
	}
	return payload.Cosign{Image: d, Annotations: anns}.MarshalJSON()
}

// ParseSimpleSigning decodes a simple-signing payload and checks it is a
// cosign image signature for the digest want. It returns the payload's
// optional annotations.
func ParseSimpleSigning(b []byte, want v1.Hash) (map[string]any, error) {
	var p payload.SimpleContainerImage
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("payload is not simple-signing JSON: %w", err)
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return nil, fmt.Errorf("payload type is %q, not %q", p.Critical.Type, payload.CosignSignatureType)
	}
	got := p.Critical.Image.DockerManifestDigest
	if got != want.String() {
		return nil, fmt.Errorf("payload signs digest %q, not the image's %s (signature copied from another image?)", got, want)
	}
	return p.Optional, nil
}

// emptySignatures is the base of a new sha256-<hex>.sig image: an OCI
// manifest with an OCI config, as cosign makes it.
func emptySignatures() v1.Image {
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(base, types.OCIConfigJSON)
}

// signLegacy signs the simple-signing payload of t and appends the
// signature to the image's .sig tag, keeping the signatures already there.
func signLegacy(ctx context.Context, t *Target, s *key.Signer, annotations map[string]string, o Options) error {
	p, err := SimpleSigningPayload(t.Digest, annotations)
	if err != nil {
		return fmt.Errorf("make payload: %w", err)
	}
	sig, err := s.SignMessage(bytes.NewReader(p))
	if err != nil {
		return fmt.Errorf("sign payload: %w", err)
	}
	layer := staticLayer(p, SimpleSigningMediaType)
	anns := map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)}
	return appendLayer(ctx, tagFor(t.Digest, "sig"), layer, anns, o, nil)
}

// appendLayer adds a layer to the image at tag (made if missing) and pushes
// it back. replace, when set, drops existing layers it matches (cosign's
// attest --replace); an identical layer is never added twice.
func appendLayer(ctx context.Context, tag name.Tag, layer v1.Layer, anns map[string]string, o Options, replace func(v1.Descriptor) bool) error {
	ro := withContext(ctx, o.Remote)
	base, err := remote.Image(tag, ro...)
	switch {
	case isNotFound(err):
		base = emptySignatures()
	case err != nil:
		return registryError("read "+tag.String(), err)
	}
	m, err := base.Manifest()
	if err != nil {
		return registryError("read "+tag.String(), err)
	}
	dg, err := layer.Digest()
	if err != nil {
		return err
	}
	if replace != nil {
		kept := emptySignatures()
		for _, d := range m.Layers {
			if replace(d) {
				continue
			}
			l, err := base.LayerByDigest(d.Digest)
			if err != nil {
				return registryError("read "+tag.String(), err)
			}
			kept, err = mutate.Append(kept, mutate.Addendum{Layer: l, Annotations: d.Annotations, MediaType: d.MediaType})
			if err != nil {
				return err
			}
		}
		base = kept
	} else {
		for _, d := range m.Layers {
			if d.Digest == dg && equalAnnotations(d.Annotations, anns) {
				return nil // this very signature is there already
			}
		}
	}
	mt, err := layer.MediaType()
	if err != nil {
		return err
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, Annotations: anns, MediaType: mt})
	if err != nil {
		return fmt.Errorf("add layer: %w", err)
	}
	if err := remote.Write(tag, img, ro...); err != nil {
		return registryError("push "+tag.String(), err)
	}
	return nil
}

func equalAnnotations(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// storedLayer is one layer of a .sig or .att image with its descriptor.
type storedLayer struct {
	Desc v1.Descriptor
	Blob []byte
}

// readTagLayers reads the layers of mediaType from the image at tag. A
// missing tag is no layers, not an error; any other registry failure is an
// error (never "unsigned, so fine").
func readTagLayers(ctx context.Context, tag name.Tag, mediaType string, max int64, o Options) ([]storedLayer, error) {
	ro := withContext(ctx, o.Remote)
	img, err := remote.Image(tag, ro...)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, registryError("read "+tag.String(), err)
	}
	m, err := img.Manifest()
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, registryError("read "+tag.String(), err)
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("%s has %d layers, over %d", tag, len(m.Layers), maxLayers)
	}
	var out []storedLayer
	for _, d := range m.Layers {
		if string(d.MediaType) != mediaType {
			continue
		}
		if d.Size > max {
			return nil, fmt.Errorf("%s: layer %s is %d bytes, over %d", tag, d.Digest, d.Size, max)
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", tag, d.Digest, err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return nil, registryError(fmt.Sprintf("read %s layer %s", tag, d.Digest), err)
		}
		b, err := readBounded(rc, max, fmt.Sprintf("%s layer %s", tag, d.Digest))
		if err != nil {
			return nil, err
		}
		out = append(out, storedLayer{Desc: d, Blob: b})
	}
	return out, nil
}

// verifyLegacySignature checks one layer of a .sig image.
func verifyLegacySignature(l storedLayer, v *key.Verifier, want v1.Hash) (map[string]any, error) {
	b64, ok := l.Desc.Annotations[SignatureAnnotation]
	if !ok || b64 == "" {
		return nil, fmt.Errorf("no %s annotation", SignatureAnnotation)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("signature annotation is not base64: %w", err)
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(l.Blob)); err != nil {
		return nil, fmt.Errorf("signature does not match the payload with this key (wrong key, or payload or signature altered): %w", err)
	}
	return ParseSimpleSigning(l.Blob, want)
}

// checkAnnotations requires each key=value of want in got.
func checkAnnotations(got map[string]any, want map[string]string) error {
	var missing []string
	for k, v := range want {
		g, ok := got[k]
		if !ok || fmt.Sprint(g) != v {
			missing = append(missing, k+"="+v)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("annotations %v required but the signed payload has %v", missing, got)
	}
	return nil
}

var errNoSignatures = errors.New("no signatures found")

type descriptor = v1.Descriptor

func staticLayer(b []byte, mediaType string) v1.Layer {
	return static.NewLayer(b, types.MediaType(mediaType))
}
