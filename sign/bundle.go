package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// keypair adapts a loaded key to sigstore-go's signing interface.
type keypair struct {
	s    *key.Signer
	hint []byte
}

func newKeypair(s *key.Signer) (*keypair, error) {
	h, err := key.Hint(s.Private.Public())
	if err != nil {
		return nil, err
	}
	return &keypair{s: s, hint: []byte(h)}, nil
}

func (k *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return k.s.Algorithm.GetProtoHashType()
}
func (k *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.s.Algorithm.GetSignatureAlgorithm()
}
func (k *keypair) GetHint() []byte                { return k.hint }
func (k *keypair) GetPublicKey() crypto.PublicKey { return k.s.Private.Public() }
func (k *keypair) GetKeyAlgorithm() string {
	switch k.s.Algorithm.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}
func (k *keypair) GetPublicKeyPem() (string, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.s.Private.Public())
	return string(b), err
}
func (k *keypair) SignData(ctx context.Context, data []byte) ([]byte, []byte, error) {
	return k.s.SignData(ctx, data)
}

// NewBundle signs an in-toto statement into a Sigstore bundle v0.3 (a DSSE
// envelope and the key's hint as verification material) and returns its
// JSON.
func NewBundle(s *key.Signer, statement []byte) ([]byte, error) {
	kp, err := newKeypair(s)
	if err != nil {
		return nil, err
	}
	pb, err := sgsign.Bundle(&sgsign.DSSEData{Data: statement, PayloadType: InTotoPayloadType}, kp, sgsign.BundleOptions{})
	if err != nil {
		return nil, fmt.Errorf("make bundle: %w", err)
	}
	b, err := protojson.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return b, nil
}

// ParseBundle decodes and validates a Sigstore bundle's JSON.
func ParseBundle(b []byte) (*bundle.Bundle, error) {
	var bun bundle.Bundle
	if err := bun.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("not a valid Sigstore bundle: %w", err)
	}
	return &bun, nil
}

// referrerManifest is an OCI 1.1 image manifest with artifactType, as
// cosign v3 pushes it.
type referrerManifest struct {
	v1.Manifest
}

func (r referrerManifest) RawManifest() ([]byte, error)        { return json.Marshal(r.Manifest) }
func (r referrerManifest) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }

var emptyConfig = []byte("{}")

// pushBundle pushes a bundle as a referrer of t, the way cosign v3's
// WriteAttestationNewBundleFormat does. go-containerregistry updates the
// sha256-<hex> referrers tag when the registry has no referrers API.
func pushBundle(ctx context.Context, t *Target, bundleJSON []byte, predicateType string, o Options) error {
	ro := withContext(ctx, o.Remote)
	repo := t.Digest.Context()
	cfg := staticLayer(emptyConfig, EmptyConfigMediaType)
	layer := staticLayer(bundleJSON, BundleMediaType)
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(repo, l, ro...); err != nil {
			return registryError("push bundle to "+repo.String(), err)
		}
	}
	cd, _ := cfg.Digest()
	ld, _ := layer.Digest()
	m := referrerManifest{v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config: v1.Descriptor{
			MediaType:    EmptyConfigMediaType,
			ArtifactType: BundleMediaType,
			Digest:       cd,
			Size:         int64(len(emptyConfig)),
		},
		Layers: []v1.Descriptor{{MediaType: BundleMediaType, Digest: ld, Size: int64(len(bundleJSON))}},
		Subject: &v1.Descriptor{
			MediaType: t.Descriptor.MediaType,
			Digest:    t.Descriptor.Digest,
			Size:      t.Descriptor.Size,
		},
		Annotations: map[string]string{
			CreatedAnnotation:        time.Now().UTC().Format(time.RFC3339),
			BundleContentAnnotation:  "dsse-envelope",
			BundlePredicateAnnotaton: predicateType,
		},
	}}
	raw, err := m.RawManifest()
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	if err := remote.Put(repo.Digest(h.String()), m, ro...); err != nil {
		return registryError("push bundle manifest to "+repo.String(), err)
	}
	return nil
}

// eachBundle lists t's referrers (API or tag fallback) and calls fn with
// each Sigstore bundle among them, one at a time (read, verified by fn,
// dropped). More than lim.MaxEntries bundle referrers is an error before
// any is read; a referrer manifest or bundle over its limit is passed to
// fn with a *LimitError and not read.
func eachBundle(ctx context.Context, t *Target, max int64, limit string, o Options, fn func(referrer v1.Hash, blob []byte, err error)) error {
	lim := o.Limits.withDefaults()
	ro := withContext(ctx, o.Remote)
	idx, err := remote.Referrers(t.Digest, ro...)
	if err != nil {
		if isNotFound(err) {
			return nil
		}
		return registryError("list referrers of "+t.Digest.String(), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return registryError("list referrers of "+t.Digest.String(), err)
	}
	var cands []v1.Descriptor
	for _, d := range im.Manifests {
		// Registries give the manifest's artifactType or, like
		// go-containerregistry's own, its config media type.
		if d.ArtifactType == BundleMediaType || d.ArtifactType == EmptyConfigMediaType || d.ArtifactType == "" {
			cands = append(cands, d)
		}
	}
	if len(cands) > lim.MaxEntries {
		return &LimitError{What: "the referrers of " + t.Digest.String(), Limit: "MaxEntries", Got: int64(len(cands)), Max: int64(lim.MaxEntries), Unit: "bundle referrers"}
	}
	for _, d := range cands {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read referrers of %s: %w", t.Digest, err)
		}
		ref := t.Digest.Context().Digest(d.Digest.String())
		if d.Size > lim.MaxManifest {
			fn(d.Digest, nil, &LimitError{What: "referrer manifest " + ref.String(), Limit: "MaxManifest", Got: d.Size, Max: lim.MaxManifest, Unit: "bytes"})
			continue
		}
		desc, err := remote.Get(ref, ro...)
		if err != nil {
			return registryError("read referrer "+ref.String(), err)
		}
		if int64(len(desc.Manifest)) > lim.MaxManifest {
			fn(d.Digest, nil, &LimitError{What: "referrer manifest " + ref.String(), Limit: "MaxManifest", Got: int64(len(desc.Manifest)), Max: lim.MaxManifest, Unit: "bytes"})
			continue
		}
		if !desc.MediaType.IsImage() {
			continue // an index: not a bundle
		}
		var m v1.Manifest
		if err := json.Unmarshal(desc.Manifest, &m); err != nil {
			return fmt.Errorf("referrer %s: bad manifest: %w", ref, err)
		}
		if m.Subject == nil || m.Subject.Digest.String() != t.Digest.DigestStr() {
			continue // listed under this image but about another one
		}
		// The image reads layers by the manifest's descriptors, so a
		// blob is never read past the size its descriptor gives.
		img, err := desc.Image()
		if err != nil {
			return fmt.Errorf("referrer %s: %w", ref, err)
		}
		for _, l := range m.Layers {
			if string(l.MediaType) != BundleMediaType {
				continue
			}
			b, err := readLayer(img, l, max, limit, "bundle "+l.Digest.String()+" of referrer "+d.Digest.String())
			var le *LimitError
			if err != nil && !errors.As(err, &le) {
				return err
			}
			fn(d.Digest, b, err)
		}
	}
	return nil
}

// verifyBundle checks a bundle's DSSE signature with the key, and that its
// statement names the image digest, with sigstore-go. Without a
// transparency log or timestamp authority, no observer timestamp is
// required: that is what --insecure-ignore-tlog accepts.
func verifyBundle(b []byte, v *key.Verifier, want v1.Hash) (*verify.VerificationResult, error) {
	bun, err := ParseBundle(b)
	if err != nil {
		return nil, err
	}
	env, err := bun.Envelope()
	if err != nil || env == nil {
		return nil, fmt.Errorf("bundle holds no DSSE envelope (a message signature is for blobs, not images)")
	}
	if pt := env.RawEnvelope().PayloadType; pt != InTotoPayloadType {
		return nil, fmt.Errorf("DSSE payload type is %q, not %q", pt, InTotoPayloadType)
	}
	ek := root.NewExpiringKey(v.Verifier, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return ek, nil })
	ver, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, err
	}
	dg, err := hex.DecodeString(want.Hex)
	if err != nil {
		return nil, err
	}
	res, err := ver.Verify(bun, verify.NewPolicy(verify.WithArtifactDigest(want.Algorithm, dg), verify.WithKey()))
	if err != nil {
		return nil, fmt.Errorf("bundle does not verify with this key for %s (wrong key, statement altered, or signed for another image): %w", want, err)
	}
	if res.Statement == nil {
		return nil, fmt.Errorf("bundle has no in-toto statement")
	}
	return res, nil
}

// signBundle signs t in cosign v3's layout: a cosign sign/v1 statement on
// the digest, its subject carrying the annotations.
func signBundle(ctx context.Context, t *Target, s *key.Signer, annotations map[string]string, o Options) error {
	st, err := signStatement(t.Digest, annotations)
	if err != nil {
		return err
	}
	b, err := NewBundle(s, st)
	if err != nil {
		return err
	}
	return pushBundle(ctx, t, b, CosignSignPredicateType, o)
}
