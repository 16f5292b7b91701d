package sign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
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

// storedLayer is one layer of a .sig or .att image with its descriptor;
// Index is its place in the manifest.
type storedLayer struct {
	Index int
	Desc  v1.Descriptor
	Blob  []byte
}

// tagImage reads the manifest at tag, checking its size (HEAD) before it
// is fetched; the image is then read by digest, so the layers read are
// those of the manifest checked. A missing tag is a nil image.
func tagImage(ctx context.Context, tag name.Tag, lim Limits, o Options) (v1.Image, *v1.Manifest, error) {
	ro := withContext(ctx, o.Remote)
	var ref name.Reference = tag
	desc, err := remote.Head(tag, ro...)
	var terr *transport.Error
	switch {
	case isNotFound(err):
		return nil, nil, nil
	case errors.As(err, &terr) && terr.StatusCode == http.StatusMethodNotAllowed:
		// No HEAD: GET is bounded by go-containerregistry's manifest limit.
	case err != nil:
		return nil, nil, registryError("read "+tag.String(), err)
	default:
		if desc.Size > lim.MaxManifest {
			return nil, nil, &LimitError{What: "manifest of " + tag.String(), Limit: "MaxManifest", Got: desc.Size, Max: lim.MaxManifest, Unit: "bytes"}
		}
		ref = tag.Context().Digest(desc.Digest.String())
	}
	img, err := remote.Image(ref, ro...)
	if isNotFound(err) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, registryError("read "+tag.String(), err)
	}
	m, err := img.Manifest()
	if err != nil {
		if isNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, registryError("read "+tag.String(), err)
	}
	return img, m, nil
}

// eachTagLayer calls fn with each layer of mediaType of the image at tag,
// one at a time (a layer's bytes are dropped once fn returns, unless fn
// keeps them). skip, when set, drops layers by descriptor before they are
// fetched. A layer over max is passed to fn with a *LimitError and not
// read; an image with more than lim.MaxEntries layers is an error before
// any is read. A missing tag is no layers, not an error; any other
// registry failure is an error (never "unsigned, so fine").
func eachTagLayer(ctx context.Context, tag name.Tag, mediaType string, max int64, limit string, o Options, skip func(v1.Descriptor) bool, fn func(l storedLayer, err error)) error {
	lim := o.Limits.withDefaults()
	img, m, err := tagImage(ctx, tag, lim, o)
	if err != nil || img == nil {
		return err
	}
	if len(m.Layers) > lim.MaxEntries {
		return &LimitError{What: tag.String(), Limit: "MaxEntries", Got: int64(len(m.Layers)), Max: int64(lim.MaxEntries), Unit: "layers"}
	}
	for i, d := range m.Layers {
		if string(d.MediaType) != mediaType || (skip != nil && skip(d)) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read %s: %w", tag, err)
		}
		what := fmt.Sprintf("%s layer %d (%s)", tag.TagStr(), i, d.Digest)
		b, err := readLayer(img, d, max, limit, what)
		var le *LimitError
		if err != nil && !errors.As(err, &le) {
			return err
		}
		fn(storedLayer{Index: i, Desc: d, Blob: b}, err)
	}
	return nil
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
