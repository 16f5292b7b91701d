// Package sign signs container images and attaches attestations in the
// layouts the cosign ecosystem reads, and verifies them:
//
//   - cosign's legacy layout: a simple-signing payload per signature, stored
//     as a layer of the image tagged sha256-<hex>.sig next to the signed
//     image, the base64 signature in the layer's
//     dev.cosignproject.cosign/signature annotation; attestations are DSSE
//     envelopes in the sha256-<hex>.att image.
//   - cosign v3's layout: a Sigstore bundle v0.3 holding a DSSE envelope of
//     an in-toto statement, pushed as an OCI 1.1 referrer of the image
//     (go-containerregistry keeps the sha256-<hex> referrers tag for
//     registries without the referrers API).
//
// Signing is key-based and offline: no transparency log entry is made, and
// verification accepts signatures without one only when asked to
// (VerifyOptions.TLog = TLogInsecureIgnore: cosign's --insecure-ignore-tlog,
// a policy's transparencyLog: ignore); see TLogPolicy. Keyless signing (Fulcio certificates, Rekor
// entries) would add verification material to the same bundle and legacy
// annotations; the layouts here already carry them.
package sign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/bulkhead-sec/bulkhead/image/imageref"
)

// Media types, annotations and predicate types of the cosign layouts.
const (
	SimpleSigningMediaType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	DSSEMediaType            = "application/vnd.dsse.envelope.v1+json"
	InTotoPayloadType        = "application/vnd.in-toto+json"
	BundleMediaType          = "application/vnd.dev.sigstore.bundle.v0.3+json"
	EmptyConfigMediaType     = "application/vnd.oci.empty.v1+json"
	SignatureAnnotation      = "dev.cosignproject.cosign/signature"
	PredicateTypeAnnotation  = "predicateType"
	BundleContentAnnotation  = "dev.sigstore.bundle.content"
	BundlePredicateAnnotaton = "dev.sigstore.bundle.predicateType"
	CreatedAnnotation        = "org.opencontainers.image.created"
	// CosignSignPredicateType is the predicate of the statement cosign v3
	// signs in place of a simple-signing payload.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// Layout says where a signature or attestation is stored.
type Layout string

const (
	// Legacy is cosign's tag layout (sha256-<hex>.sig / .att).
	Legacy Layout = "legacy"
	// Bundle is cosign v3's Sigstore bundle pushed as an OCI referrer.
	Bundle Layout = "bundle"
)

// Limits bound what verification reads from a registry, which may be
// hostile (anyone with push access to a repository can fill its .sig and
// .att tags and its referrers). Layers are read one at a time, each
// checked against its descriptor's size before it is fetched and never
// read past that size, so memory is bounded by one layer, not by the
// whole image. Zero fields take the defaults.
type Limits struct {
	// MaxEntries is the most layers of a .sig or .att image, and the most
	// Sigstore bundle referrers of an image, that are looked at (default
	// 100, the number of signatures or attestations cosign verify
	// accepts). More is an error naming the limit: nothing is fetched.
	MaxEntries int
	// MaxPayload bounds one signature layer or signature bundle (default
	// 1 MiB; a simple-signing payload is a few hundred bytes).
	MaxPayload int64
	// MaxAttestation bounds one attestation layer or bundle (default 128
	// MiB, cosign's COSIGN_MAX_ATTACHMENT_SIZE default: SBOM attestations
	// can be large). A larger layer is rejected unread.
	MaxAttestation int64
	// MaxManifest bounds a .sig/.att or referrer manifest (default 4 MiB).
	MaxManifest int64
}

// Default limits.
const (
	DefaultMaxEntries     = 100
	DefaultMaxPayload     = 1 << 20
	DefaultMaxAttestation = 128 << 20
	DefaultMaxManifest    = 4 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxPayload <= 0 {
		l.MaxPayload = DefaultMaxPayload
	}
	if l.MaxAttestation <= 0 {
		l.MaxAttestation = DefaultMaxAttestation
	}
	if l.MaxManifest <= 0 {
		l.MaxManifest = DefaultMaxManifest
	}
	return l
}

// LimitError is a stored signature, attestation or manifest over one of
// the Limits; it is reported before the data is fetched.
type LimitError struct {
	// What is over the limit ("tag sha256-....sig", "layer sha256:...").
	What string
	// Limit names the limit (the Limits field).
	Limit string
	// Got and Max are the count or size found and the limit.
	Got, Max int64
	// Unit is "layers", "referrers" or "bytes".
	Unit string
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s has %d %s, over the limit of %d (%s): not read; someone with push access may have filled it, so inspect the repository and delete what is not yours (cosign clean removes a whole .sig/.att tag)",
		e.What, e.Got, e.Unit, e.Max, e.Limit)
}

// Options are how the registry is reached.
type Options struct {
	// Remote are go-containerregistry options (auth, transport, context);
	// image.RemoteOptions builds them.
	Remote []remote.Option
	// Name are reference parsing options (name.Insecure for plain HTTP).
	Name []name.Option
	// Limits bound what verification reads (zero: the defaults).
	Limits Limits
}

// Target is an image resolved to the digest that is signed.
type Target struct {
	// Ref is the reference in canonical form (package imageref): a tag
	// written next to a digest is dropped, the digest is what is pulled.
	Ref name.Reference
	// Digest is the repository at the manifest digest.
	Digest name.Digest
	// Descriptor is the manifest (or index) descriptor.
	Descriptor v1.Descriptor
}

// Resolve turns a reference into the digest it points at now: a tag is
// resolved once, and everything after works on the digest, so a tag moved
// meanwhile cannot mix two images. The reference is canonicalised first
// (package imageref), so Target.Ref and Target.Digest name the repository
// that is pulled, and a reference a registry would route to another
// repository is an *imageref.Error.
func Resolve(ctx context.Context, ref string, o Options) (*Target, error) {
	c, err := imageref.Parse(ref, o.Name...)
	if err != nil {
		return nil, err
	}
	r := c.Reference()
	desc, err := remote.Head(r, withContext(ctx, o.Remote)...)
	if err != nil {
		// Some registries refuse HEAD; GET answers the same question.
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusMethodNotAllowed {
			d, gerr := remote.Get(r, withContext(ctx, o.Remote)...)
			if gerr != nil {
				return nil, registryError("resolve "+r.String(), gerr)
			}
			desc = &d.Descriptor
		} else {
			return nil, registryError("resolve "+r.String(), err)
		}
	}
	return &Target{Ref: r, Digest: r.Context().Digest(desc.Digest.String()), Descriptor: *desc}, nil
}

// withContext adds ctx to the options; a registry transport guarded
// against redirects to other repositories comes first, so that callers
// without one (sign.Options{}) are guarded too (image.RemoteOptions gives a
// guarded one that replaces it).
func withContext(ctx context.Context, ro []remote.Option) []remote.Option {
	out := []remote.Option{remote.WithTransport(imageref.GuardRedirects(remote.DefaultTransport))}
	return append(append(out, ro...), remote.WithContext(ctx))
}

// tagFor is cosign's sha256-<hex>.<suffix> tag of a digest.
func tagFor(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + "." + suffix)
}

// isNotFound reports a registry 404 (a missing tag or manifest).
func isNotFound(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		if terr.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return true
			}
		}
	}
	return false
}

// registryError says what a registry failure means and what to do.
func registryError(what string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: access denied (%d); log in with `docker login` or set BULKHEAD_USERNAME and BULKHEAD_PASSWORD: %w", what, terr.StatusCode, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s: not found in the registry; check the repository and tag: %w", what, err)
		}
		return fmt.Errorf("%s: registry answered %d: %w", what, terr.StatusCode, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// readLayer reads one blob described by d, at most max bytes: d's size is
// checked before anything is fetched, and the blob is never read past it,
// so a registry that lies about a layer's size costs no more than the size
// it claimed. The buffer is made once at the claimed size. Reading to EOF
// matters: go-containerregistry checks a blob's digest at EOF.
func readLayer(img v1.Image, d v1.Descriptor, max int64, limit, what string) ([]byte, error) {
	if d.Size > max {
		return nil, &LimitError{What: what, Limit: limit, Got: d.Size, Max: max, Unit: "bytes"}
	}
	if d.Size < 0 {
		return nil, fmt.Errorf("%s: descriptor size %d is negative", what, d.Size)
	}
	l, err := img.LayerByDigest(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, registryError("read "+what, err)
	}
	defer rc.Close()
	b := make([]byte, d.Size)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("read %s (%d bytes by its descriptor): %w", what, d.Size, err)
	}
	var one [1]byte
	switch n, err := io.ReadFull(rc, one[:]); {
	case n > 0:
		return nil, fmt.Errorf("read %s: the registry sent more than the %d bytes its descriptor says", what, d.Size)
	case err != io.EOF:
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return b, nil
}
