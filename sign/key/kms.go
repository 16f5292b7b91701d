package key

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigkms "github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/kms/aws"
	"github.com/sigstore/sigstore/pkg/signature/kms/azure"
	"github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	"github.com/sigstore/sigstore/pkg/signature/kms/hashivault"
	"github.com/sigstore/sigstore/pkg/signature/options"
)

// A KMS key reference names a key held by a key management service, in the
// URI forms cosign takes; sigstore's provider modules (registered by the
// imports above) talk to the services:
//
//	awskms://[ENDPOINT]/{KEY_ID | alias/NAME | ARN}   AWS KMS (AWS_* credentials)
//	gcpkms://projects/P/locations/L/keyRings/R/cryptoKeys/K[/cryptoKeyVersions/V]
//	azurekms://VAULT_NAME[.vault.azure.net]/KEY[/VERSION]
//	hashivault://KEY, openbao://KEY   Vault or OpenBao transit (VAULT_ADDR, VAULT_TOKEN)
//
// The private key never leaves the service: signing sends the digest.
var kmsProviders = []struct {
	scheme string
	valid  func(string) error
}{
	{aws.ReferenceScheme, aws.ValidReference},
	{gcp.ReferenceScheme, gcp.ValidReference},
	{azure.ReferenceScheme, azure.ValidReference},
	{hashivault.ReferenceScheme, hashivault.ValidReference},
	{hashivault.AlternativeScheme, hashivault.ValidReference},
}

// unsupportedSchemes are key references cosign takes that bulkhead does not.
var unsupportedSchemes = []string{"k8s://", "pkcs11:", "gitlab://"}

// IsKMS reports whether ref names a key in a KMS (awskms://, gcpkms://,
// azurekms://, hashivault://, openbao://).
func IsKMS(ref string) bool {
	for _, p := range kmsProviders {
		if strings.HasPrefix(ref, p.scheme) {
			return true
		}
	}
	return false
}

// KMSError is a failed KMS operation. It names the key by its reference
// (user information in it removed) and never carries key material or
// credentials: the providers' errors name the request, not the token.
type KMSError struct {
	Ref string // the reference, redacted
	Op  string // "open", "read the public key of", "sign with", "create"
	Err error
}

func (e *KMSError) Error() string {
	return fmt.Sprintf("KMS key %s: %s: %v", e.Ref, e.Op, e.Err)
}

func (e *KMSError) Unwrap() error { return e.Err }

// Redact removes user information (user:password@) from a URI-shaped key
// reference, for messages.
func Redact(ref string) string {
	u, err := url.Parse(ref)
	if err != nil || u.User == nil {
		if i := strings.Index(ref, "@"); i >= 0 && strings.Contains(ref[:i], "://") {
			return ref[:strings.Index(ref, "://")+3] + "REDACTED@" + ref[i+1:]
		}
		return ref
	}
	u.User = url.User("REDACTED")
	return u.String()
}

// kmsHint says what a provider needs, for errors that would otherwise only
// repeat the provider's.
func kmsHint(ref string) string {
	switch {
	case strings.HasPrefix(ref, aws.ReferenceScheme):
		return "AWS credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the instance role; AWS_REGION names the region and AWS_ENDPOINT_URL (or awskms://HOST:PORT/...) another endpoint"
	case strings.HasPrefix(ref, gcp.ReferenceScheme):
		return "Google credentials come from GOOGLE_APPLICATION_CREDENTIALS or gcloud's application default credentials"
	case strings.HasPrefix(ref, azure.ReferenceScheme):
		return "Azure credentials come from AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or the Azure CLI login"
	default:
		return "set VAULT_ADDR and VAULT_TOKEN (or BAO_ADDR and BAO_TOKEN); TRANSIT_SECRET_ENGINE_PATH names the transit mount if it is not transit"
	}
}

// openKMS checks the reference's form and opens the provider's client.
func openKMS(ctx context.Context, ref string) (sigkms.SignerVerifier, error) {
	red := Redact(ref)
	for _, p := range kmsProviders {
		if !strings.HasPrefix(ref, p.scheme) {
			continue
		}
		if err := p.valid(ref); err != nil {
			return nil, &KMSError{Ref: red, Op: "parse", Err: err}
		}
		// The hash is the one ECDSA P-256 keys sign with; the providers
		// that need it (Vault, GCP, Azure) take the one each signature
		// asks for, as SignData passes it.
		sv, err := sigkms.Get(ctx, ref, crypto.SHA256)
		if err != nil {
			return nil, &KMSError{Ref: red, Op: "open", Err: fmt.Errorf("%w (%s)", err, kmsHint(ref))}
		}
		return sv, nil
	}
	return nil, &KMSError{Ref: red, Op: "parse", Err: errors.New("not a KMS reference (awskms://, gcpkms://, azurekms://, hashivault://, openbao://)")}
}

// kmsPublicKey asks the KMS for the key's public half and checks that
// bulkhead signs and verifies with its kind.
func kmsPublicKey(ctx context.Context, ref string, sv sigkms.SignerVerifier) (crypto.PublicKey, signature.AlgorithmDetails, error) {
	pub, err := sv.PublicKey(options.WithContext(ctx))
	if err != nil {
		return nil, signature.AlgorithmDetails{}, &KMSError{Ref: Redact(ref), Op: "read the public key", Err: fmt.Errorf("%w (%s)", err, kmsHint(ref))}
	}
	if _, ok := pub.(*ecdsa.PublicKey); !ok {
		// RSA keys sign with whatever padding the KMS lists first (AWS:
		// PSS) while cosign's key files mean PKCS#1 v1.5; Ed25519 in
		// Vault signs the message, not a digest.
		return nil, signature.AlgorithmDetails{}, &KMSError{Ref: Redact(ref), Op: "check the key type",
			Err: fmt.Errorf("the key is %T; bulkhead uses ECDSA KMS keys (P-256, P-384, P-521): create one with bulkhead generate-key-pair --kms", pub)}
	}
	alg, err := algorithmFor(pub)
	if err != nil {
		return nil, signature.AlgorithmDetails{}, &KMSError{Ref: Redact(ref), Op: "check the key type", Err: err}
	}
	return pub, alg, nil
}

// kmsPublicTTL is how long a KMS public key is reused (the providers cache
// theirs as long), so a trust policy verifying many images asks once.
const kmsPublicTTL = 5 * time.Minute

var kmsPublic sync.Map // ref -> kmsPublicEntry

type kmsPublicEntry struct {
	v    *Verifier
	when time.Time
}

// loadKMSPublic returns the verifier of a KMS key: its public key fetched
// once (and reused for kmsPublicTTL), signatures checked locally.
func loadKMSPublic(ctx context.Context, ref string) (*Verifier, error) {
	if e, ok := kmsPublic.Load(ref); ok && time.Since(e.(kmsPublicEntry).when) < kmsPublicTTL {
		return e.(kmsPublicEntry).v, nil
	}
	sv, err := openKMS(ctx, ref)
	if err != nil {
		return nil, err
	}
	pub, _, err := kmsPublicKey(ctx, ref, sv)
	if err != nil {
		return nil, err
	}
	v, err := NewVerifier(pub)
	if err != nil {
		return nil, err
	}
	kmsPublic.Store(ref, kmsPublicEntry{v: v, when: time.Now()})
	return v, nil
}

// loadKMSPrivate returns a Signer whose signatures the KMS makes: the
// digest goes to the service, the private key stays there.
func loadKMSPrivate(ctx context.Context, ref string) (*Signer, error) {
	sv, err := openKMS(ctx, ref)
	if err != nil {
		return nil, err
	}
	pub, alg, err := kmsPublicKey(ctx, ref, sv)
	if err != nil {
		return nil, err
	}
	cs, _, err := sv.CryptoSigner(ctx, nil)
	if err != nil {
		return nil, &KMSError{Ref: Redact(ref), Op: "open the signer", Err: err}
	}
	ver, err := signature.LoadVerifier(pub, alg.GetHashType())
	if err != nil {
		return nil, fmt.Errorf("load verifier: %w", err)
	}
	s := &Signer{Private: &kmsSigner{cs: cs, pub: pub, ref: Redact(ref)}, Algorithm: alg, KMS: ref}
	s.SignerVerifier = messageSigner{Verifier: ver, s: s}
	return s, nil
}

// kmsSigner is the KMS's crypto.Signer with the public key fixed (the
// providers' own Public asks the service again) and errors that name the
// key.
type kmsSigner struct {
	cs  crypto.Signer
	pub crypto.PublicKey
	ref string
}

func (k *kmsSigner) Public() crypto.PublicKey { return k.pub }

func (k *kmsSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	sig, err := k.cs.Sign(rand, digest, opts)
	if err != nil {
		return nil, &KMSError{Ref: k.ref, Op: "sign", Err: err}
	}
	return sig, nil
}

// messageSigner is signature.SignerVerifier over a Signer whose private
// half is remote: messages are hashed here with the key's hash and the
// digest signed by Private (cosign does the same with KMS keys);
// verification is local.
type messageSigner struct {
	signature.Verifier
	s *Signer
}

func (m messageSigner) SignMessage(message io.Reader, opts ...signature.SignOption) ([]byte, error) {
	ctx := context.Background()
	for _, o := range opts {
		o.ApplyContext(&ctx)
	}
	data, err := io.ReadAll(message)
	if err != nil {
		return nil, err
	}
	sig, _, err := m.s.SignData(ctx, data)
	return sig, err
}

// GenerateKMS creates an ECDSA key in the KMS that ref names (the
// provider's default, ECDSA P-256 with SHA-256 everywhere), or finds the
// one already there, as cosign generate-key-pair --kms does, and returns
// its public key as PKIX PEM. AWS references must use the alias form
// (awskms://[ENDPOINT]/alias/NAME): the alias is what names the new key.
func GenerateKMS(ctx context.Context, ref string) ([]byte, error) {
	if !IsKMS(ref) {
		return nil, fmt.Errorf("--kms %s: not a KMS reference (awskms://, gcpkms://, azurekms://, hashivault://, openbao://)", Redact(ref))
	}
	sv, err := openKMS(ctx, ref)
	if err != nil {
		return nil, err
	}
	pub, err := sv.CreateKey(ctx, sv.DefaultAlgorithm())
	if err != nil {
		return nil, &KMSError{Ref: Redact(ref), Op: "create the key", Err: fmt.Errorf("%w (%s)", err, kmsHint(ref))}
	}
	kmsPublic.Delete(ref)
	if _, err := algorithmFor(pub); err != nil {
		return nil, &KMSError{Ref: Redact(ref), Op: "check the key type", Err: err}
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}
