package sign

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// SignOptions choose the layout and the payload annotations.
type SignOptions struct {
	Options
	// Layout is Legacy (default) or Bundle.
	Layout Layout
	// Annotations go into the signed payload (-a key=value).
	Annotations map[string]string
}

// SignImage signs t's digest with s.
func SignImage(ctx context.Context, t *Target, s *key.Signer, o SignOptions) error {
	switch o.Layout {
	case Legacy, "":
		return signLegacy(ctx, t, s, o.Annotations, o.Options)
	case Bundle:
		return signBundle(ctx, t, s, o.Annotations, o.Options)
	}
	return fmt.Errorf("unknown layout %q (legacy or bundle)", o.Layout)
}

// AttestOptions say what to attest and where to store it.
type AttestOptions struct {
	Options
	Layout Layout
	StatementOptions
	// Replace drops earlier legacy attestations of the same predicate type
	// (cosign attest --replace).
	Replace bool
}

// AttestImage makes the statement for t, signs it as DSSE and stores it.
func AttestImage(ctx context.Context, t *Target, s *key.Signer, o AttestOptions) error {
	st, pt, err := Statement(t.Digest, o.StatementOptions)
	if err != nil {
		return err
	}
	switch o.Layout {
	case Legacy, "":
		env, err := SignDSSE(ctx, s, st)
		if err != nil {
			return err
		}
		layer := staticLayer(env, DSSEMediaType)
		anns := map[string]string{SignatureAnnotation: "", PredicateTypeAnnotation: pt}
		var replace func(d descriptor) bool
		if o.Replace {
			replace = func(d descriptor) bool { return d.Annotations[PredicateTypeAnnotation] == pt }
		}
		return appendLayer(ctx, tagFor(t.Digest, "att"), layer, anns, o.Options, replace)
	case Bundle:
		b, err := NewBundle(s, st)
		if err != nil {
			return err
		}
		return pushBundle(ctx, t, b, pt, o.Options)
	}
	return fmt.Errorf("unknown layout %q (legacy or bundle)", o.Layout)
}

// dsseSigner adapts a key to go-securesystemslib's DSSE signer; cosign
// leaves the key id empty.
type dsseSigner struct{ s *key.Signer }

func (d dsseSigner) Sign(_ context.Context, data []byte) ([]byte, error) {
	return d.s.SignMessage(bytes.NewReader(data))
}
func (d dsseSigner) KeyID() (string, error) { return "", nil }

type dsseVerifier struct{ v *key.Verifier }

func (d dsseVerifier) Verify(_ context.Context, data, sig []byte) error {
	return d.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(data))
}
func (d dsseVerifier) KeyID() (string, error)   { return "", nil }
func (d dsseVerifier) Public() crypto.PublicKey { return d.v.Public }

// SignDSSE wraps an in-toto statement in a signed DSSE envelope (JSON).
func SignDSSE(ctx context.Context, s *key.Signer, statement []byte) ([]byte, error) {
	es, err := dsse.NewEnvelopeSigner(dsseSigner{s})
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, InTotoPayloadType, statement)
	if err != nil {
		return nil, fmt.Errorf("sign DSSE envelope: %w", err)
	}
	return json.Marshal(env)
}

// ParseEnvelope decodes a DSSE envelope's JSON.
func ParseEnvelope(b []byte) (*dsse.Envelope, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("not a DSSE envelope: %w", err)
	}
	if env.Payload == "" || len(env.Signatures) == 0 {
		return nil, errors.New("DSSE envelope has no payload or no signatures")
	}
	return &env, nil
}

// VerifyDSSE checks a DSSE envelope's signature and payload type and
// returns the decoded payload.
func VerifyDSSE(ctx context.Context, b []byte, v *key.Verifier) ([]byte, error) {
	env, err := ParseEnvelope(b)
	if err != nil {
		return nil, err
	}
	if env.PayloadType != InTotoPayloadType {
		return nil, fmt.Errorf("DSSE payload type is %q, not %q", env.PayloadType, InTotoPayloadType)
	}
	ev, err := dsse.NewEnvelopeVerifier(dsseVerifier{v})
	if err != nil {
		return nil, err
	}
	if _, err := ev.Verify(ctx, env); err != nil {
		return nil, fmt.Errorf("DSSE signature does not verify with this key (wrong key, or statement altered): %w", err)
	}
	return env.DecodeB64Payload()
}

// Verified is a signature or attestation that passed.
type Verified struct {
	Layout Layout `json:"layout"`
	// Where is the .sig/.att tag or the referrer manifest digest.
	Where string `json:"where"`
	// Payload is the signed payload: simple-signing JSON or an in-toto
	// statement.
	Payload       json.RawMessage `json:"payload"`
	PredicateType string          `json:"predicateType,omitempty"`
	// Predicate is the statement's predicate as signed.
	Predicate   json.RawMessage `json:"-"`
	Annotations map[string]any  `json:"annotations,omitempty"`
	// TransparencyLog is "ignored" when it was accepted without a
	// transparency-log check (TLogInsecureIgnore).
	TransparencyLog string `json:"transparencyLog,omitempty"`
}

// Rejection says why one stored signature did not count.
type Rejection struct {
	Layout Layout
	Where  string
	Err    error
}

// VerifyOptions say what a signature must carry.
type VerifyOptions struct {
	Options
	// Layouts to look at; both when empty.
	Layouts []Layout
	// Annotations every accepted signature must carry.
	Annotations map[string]string
	// PredicateType an attestation must have ("" = any).
	PredicateType string
	// TLog is the transparency-log choice; the zero value requires the
	// log, so skipping it is always written out (TLogInsecureIgnore).
	TLog TLogPolicy
}

// tlogNote is Verified.TransparencyLog for the choice.
func (o VerifyOptions) tlogNote() string {
	if o.TLog.Ignored() {
		return "ignored"
	}
	return ""
}

func (o VerifyOptions) wants(l Layout) bool {
	if len(o.Layouts) == 0 {
		return true
	}
	for _, x := range o.Layouts {
		if x == l {
			return true
		}
	}
	return false
}

// VerifyError lists every signature that was found and rejected.
type VerifyError struct {
	What       string
	Target     string
	Rejections []Rejection
	Looked     []string
}

func (e *VerifyError) Error() string {
	if len(e.Rejections) == 0 {
		return fmt.Sprintf("no %s found for %s (looked in %s)", e.What, e.Target, strings.Join(e.Looked, " and "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "no valid %s for %s; %d rejected:", e.What, e.Target, len(e.Rejections))
	for _, r := range e.Rejections {
		fmt.Fprintf(&b, "\n  %s %s: %v", r.Layout, r.Where, r.Err)
	}
	return b.String()
}

// VerifySignatures checks t's signatures in both layouts with v and
// returns those that verify. It fails when none does, when a registry
// read fails (other than a missing signature tag), or when required
// annotations are missing. Unless o.TLog is TLogInsecureIgnore, every
// signature is rejected with a *TLogError (see TLogPolicy).
func VerifySignatures(ctx context.Context, t *Target, v *key.Verifier, o VerifyOptions) ([]Verified, error) {
	want := t.Descriptor.Digest
	verr := &VerifyError{What: "signature", Target: t.Digest.String()}
	lim := o.Limits.withDefaults()
	var ok []Verified
	if o.wants(Legacy) {
		tag := tagFor(t.Digest, "sig")
		verr.Looked = append(verr.Looked, "tag "+tag.TagStr())
		err := eachTagLayer(ctx, tag, SimpleSigningMediaType, lim.MaxPayload, "MaxPayload", o.Options, nil, func(l storedLayer, err error) {
			where := fmt.Sprintf("%s layer %d", tag.TagStr(), l.Index)
			var anns map[string]any
			if err == nil {
				anns, err = verifyLegacySignature(l, v, want)
			}
			if err == nil {
				err = checkAnnotations(anns, o.Annotations)
			}
			if err == nil {
				err = o.TLog.check(legacyHasTLog(l.Desc))
			}
			if err != nil {
				verr.Rejections = append(verr.Rejections, Rejection{Legacy, where, err})
				return
			}
			ok = append(ok, Verified{Layout: Legacy, Where: where, Payload: l.Blob, Annotations: anns, TransparencyLog: o.tlogNote()})
		})
		if err != nil {
			return nil, err
		}
	}
	if o.wants(Bundle) {
		verr.Looked = append(verr.Looked, "referrers of "+t.Digest.DigestStr())
		err := eachBundle(ctx, t, lim.MaxPayload, "MaxPayload", o.Options, func(ref v1.Hash, blob []byte, err error) {
			where := "referrer " + ref.String()
			var st *rawStatement
			if err == nil {
				st, err = verifiedStatement(ctx, blob, v, t)
			}
			if err != nil {
				verr.Rejections = append(verr.Rejections, Rejection{Bundle, where, err})
				return
			}
			if st.PredicateType != CosignSignPredicateType {
				return // an attestation, not a signature
			}
			anns := st.subjectAnnotations(want)
			err = checkAnnotations(anns, o.Annotations)
			if err == nil {
				err = o.TLog.check(st.hasTLog)
			}
			if err != nil {
				verr.Rejections = append(verr.Rejections, Rejection{Bundle, where, err})
				return
			}
			ok = append(ok, Verified{Layout: Bundle, Where: where, Payload: st.raw, PredicateType: st.PredicateType, Annotations: anns, TransparencyLog: o.tlogNote()})
		})
		if err != nil {
			return nil, err
		}
	}
	if len(ok) == 0 {
		return nil, verr
	}
	return ok, nil
}

type rawStatement struct {
	*ParsedStatement
	raw []byte
	// hasTLog says the bundle carries transparency-log entries.
	hasTLog bool
}

// verifiedStatement verifies a bundle and decodes its statement from the
// signed envelope bytes (not sigstore-go's re-encoding, which would turn
// predicate numbers into floats).
func verifiedStatement(_ context.Context, blob []byte, v *key.Verifier, t *Target) (*rawStatement, error) {
	if _, err := verifyBundle(blob, v, t.Descriptor.Digest); err != nil {
		return nil, err
	}
	bun, err := ParseBundle(blob)
	if err != nil {
		return nil, err
	}
	env, err := bun.Envelope()
	if err != nil {
		return nil, err
	}
	payload, err := env.RawEnvelope().DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("bundle payload: %w", err)
	}
	st, err := ParseStatement(payload, t.Descriptor.Digest)
	if err != nil {
		return nil, err
	}
	return &rawStatement{st, payload, len(bun.GetVerificationMaterial().GetTlogEntries()) > 0}, nil
}

// VerifyAttestations checks t's attestations in both layouts and returns
// those that verify with v and have the wanted predicate type.
func VerifyAttestations(ctx context.Context, t *Target, v *key.Verifier, o VerifyOptions) ([]Verified, error) {
	want := t.Descriptor.Digest
	what := "attestation"
	if o.PredicateType != "" {
		what = "attestation of type " + o.PredicateType
	}
	verr := &VerifyError{What: what, Target: t.Digest.String()}
	lim := o.Limits.withDefaults()
	var ok []Verified
	accept := func(layout Layout, where string, st *ParsedStatement, raw []byte, hasTLog bool) {
		if o.PredicateType != "" && st.PredicateType != o.PredicateType {
			return // another type: neither accepted nor an error
		}
		if err := o.TLog.check(hasTLog); err != nil {
			verr.Rejections = append(verr.Rejections, Rejection{layout, where, err})
			return
		}
		ok = append(ok, Verified{Layout: layout, Where: where, Payload: raw, PredicateType: st.PredicateType, Predicate: st.Predicate, TransparencyLog: o.tlogNote()})
	}
	if o.wants(Legacy) {
		tag := tagFor(t.Digest, "att")
		verr.Looked = append(verr.Looked, "tag "+tag.TagStr())
		// Layers annotated with another predicate type are not fetched.
		var skip func(v1.Descriptor) bool
		if o.PredicateType != "" {
			skip = func(d v1.Descriptor) bool {
				pt, set := d.Annotations[PredicateTypeAnnotation]
				return set && pt != o.PredicateType
			}
		}
		err := eachTagLayer(ctx, tag, DSSEMediaType, lim.MaxAttestation, "MaxAttestation", o.Options, skip, func(l storedLayer, err error) {
			where := fmt.Sprintf("%s layer %d", tag.TagStr(), l.Index)
			var payload []byte
			if err == nil {
				payload, err = VerifyDSSE(ctx, l.Blob, v)
			}
			var st *ParsedStatement
			if err == nil {
				st, err = ParseStatement(payload, want)
			}
			if err != nil {
				verr.Rejections = append(verr.Rejections, Rejection{Legacy, where, err})
				return
			}
			accept(Legacy, where, st, payload, legacyHasTLog(l.Desc))
		})
		if err != nil {
			return nil, err
		}
	}
	if o.wants(Bundle) {
		verr.Looked = append(verr.Looked, "referrers of "+t.Digest.DigestStr())
		err := eachBundle(ctx, t, lim.MaxAttestation, "MaxAttestation", o.Options, func(ref v1.Hash, blob []byte, err error) {
			where := "referrer " + ref.String()
			var st *rawStatement
			if err == nil {
				st, err = verifiedStatement(ctx, blob, v, t)
			}
			if err != nil {
				verr.Rejections = append(verr.Rejections, Rejection{Bundle, where, err})
				return
			}
			if st.PredicateType == CosignSignPredicateType {
				return // a signature
			}
			accept(Bundle, where, st.ParsedStatement, st.raw, st.hasTLog)
		})
		if err != nil {
			return nil, err
		}
	}
	if len(ok) == 0 {
		return nil, verr
	}
	return ok, nil
}
