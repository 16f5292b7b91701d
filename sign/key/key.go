// Package key reads and writes signing keys in cosign's formats: an
// "ENCRYPTED SIGSTORE PRIVATE KEY" PEM block (scrypt + nacl/secretbox over
// PKCS#8, go-securesystemslib's encrypted format) with a PKIX "PUBLIC KEY"
// PEM beside it. The older "ENCRYPTED COSIGN PRIVATE KEY" blocks are read
// too. ECDSA P-256 is what new keys use; Ed25519 and RSA keys made
// elsewhere are accepted.
//
// A key reference is a file path, env://NAME (the PEM text in the
// environment variable NAME), or a KMS URI (awskms://, gcpkms://,
// azurekms://, hashivault://, openbao://), as cosign accepts; LoadPrivate
// and LoadPublic resolve all of them (kms.go).
package key

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"golang.org/x/term"
)

// PEM block types of cosign's key files.
const (
	SigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	CosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
	PublicKeyType          = "PUBLIC KEY"
)

// maxKeyFile bounds a key file read into memory: real keys are a few KB.
const maxKeyFile = 1 << 20

// PassFunc returns the password of a private key; confirm asks twice (when
// a new key is written).
type PassFunc func(confirm bool) ([]byte, error)

// Signer is a loaded private key.
type Signer struct {
	signature.SignerVerifier
	// Private is the key itself (ecdsa, ed25519 or rsa), for DSSE and
	// bundle signing.
	Private crypto.Signer
	// Algorithm describes key and hash as the Sigstore bundle names them.
	Algorithm signature.AlgorithmDetails
	// KMS is the KMS reference the key lives behind; empty for a key
	// read from a file or the environment.
	KMS string
}

// Verifier is a loaded public key.
type Verifier struct {
	signature.Verifier
	Public    crypto.PublicKey
	Algorithm signature.AlgorithmDetails
}

// Generate makes a new ECDSA P-256 key pair and returns the encrypted
// private key PEM and the public key PEM, as `cosign generate-key-pair`
// writes them. An empty password is allowed (cosign allows it too) but the
// key is still encrypted.
func Generate(pass []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), randReader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	return Encode(priv, pass)
}

// Encode writes a private key in cosign's encrypted format and its public
// key as PKIX PEM.
func Encode(priv crypto.Signer, pass []byte) (privPEM, pubPEM []byte, err error) {
	if pass == nil {
		pass = []byte{}
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, func(bool) ([]byte, error) { return pass, nil })
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyType, Bytes: der}), pubPEM, nil
}

// ParsePrivate decrypts a private key PEM. Encrypted cosign and sigstore
// blocks need the password; plain PKCS#8, EC and PKCS#1 blocks are read
// as they are.
func ParsePrivate(pemBytes []byte, pass PassFunc) (*Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found; expected a cosign private key (ENCRYPTED SIGSTORE PRIVATE KEY)")
	}
	var (
		priv crypto.PrivateKey
		err  error
	)
	switch block.Type {
	case SigstorePrivateKeyType, CosignPrivateKeyType:
		if pass == nil {
			return nil, fmt.Errorf("the %s needs a password: set COSIGN_PASSWORD", strings.ToLower(block.Type))
		}
		pw, perr := pass(false)
		if perr != nil {
			return nil, fmt.Errorf("read key password: %w", perr)
		}
		// go-securesystemslib's encrypted.Decrypt: scrypt KDF, then
		// nacl/secretbox; the JSON envelope names both parameters.
		der, derr := decrypt(block.Bytes, pw)
		if derr != nil {
			return nil, derr
		}
		priv, err = x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			// Some cosign v1 keys hold SEC 1 or PKCS#1 DER instead of
			// PKCS#8 (cosign itself refuses the EC ones).
			if k, e := x509.ParseECPrivateKey(der); e == nil {
				priv, err = k, nil
			} else if k, e := x509.ParsePKCS1PrivateKey(der); e == nil {
				priv, err = k, nil
			}
		}
	case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
		priv, err = cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, nil)
	default:
		return nil, fmt.Errorf("unsupported private key PEM type %q; expected %q", block.Type, SigstorePrivateKeyType)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	return newSigner(priv)
}

func newSigner(priv crypto.PrivateKey) (*Signer, error) {
	cs, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", priv)
	}
	alg, err := algorithmFor(cs.Public())
	if err != nil {
		return nil, err
	}
	sv, err := signature.LoadSignerVerifier(priv, alg.GetHashType())
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	return &Signer{SignerVerifier: sv, Private: cs, Algorithm: alg}, nil
}

// ParsePublic reads a PKIX public key PEM (cosign.pub).
func ParsePublic(pemBytes []byte) (*Verifier, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM block found; expected a public key (cosign.pub)")
	}
	if block.Type != PublicKeyType && block.Type != "RSA PUBLIC KEY" {
		return nil, fmt.Errorf("unsupported public key PEM type %q; expected %q (pass cosign.pub, not cosign.key)", block.Type, PublicKeyType)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	return NewVerifier(pub)
}

// NewVerifier wraps a public key with the hash cosign uses for it.
func NewVerifier(pub crypto.PublicKey) (*Verifier, error) {
	alg, err := algorithmFor(pub)
	if err != nil {
		return nil, err
	}
	v, err := signature.LoadVerifier(pub, alg.GetHashType())
	if err != nil {
		return nil, fmt.Errorf("load verifier: %w", err)
	}
	return &Verifier{Verifier: v, Public: pub, Algorithm: alg}, nil
}

// algorithmFor picks the algorithm cosign signs with for a key: SHA-256
// with ECDSA P-256 and RSA PKCS#1 v1.5, pure Ed25519.
func algorithmFor(pub crypto.PublicKey) (signature.AlgorithmDetails, error) {
	var id protocommon.PublicKeyDetails
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			id = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256
		case elliptic.P384():
			id = protocommon.PublicKeyDetails_PKIX_ECDSA_P384_SHA_384
		case elliptic.P521():
			id = protocommon.PublicKeyDetails_PKIX_ECDSA_P521_SHA_512
		default:
			return signature.AlgorithmDetails{}, fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
		id = protocommon.PublicKeyDetails_PKIX_ED25519
	case *rsa.PublicKey:
		switch k.N.BitLen() {
		case 2048:
			id = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_2048_SHA256
		case 3072:
			id = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_3072_SHA256
		case 4096:
			id = protocommon.PublicKeyDetails_PKIX_RSA_PKCS1V15_4096_SHA256
		default:
			return signature.AlgorithmDetails{}, fmt.Errorf("unsupported RSA key size %d bits (2048, 3072 or 4096)", k.N.BitLen())
		}
	default:
		return signature.AlgorithmDetails{}, fmt.Errorf("unsupported public key type %T (ECDSA, Ed25519 or RSA)", pub)
	}
	return signature.GetAlgorithmDetails(id)
}

// Hint is the key hint the Sigstore bundle carries: base64 of the SHA-256
// of the PKIX public key, as sigstore-go computes it.
func Hint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// PublicPEM returns the PKIX PEM of a signer's public key.
func (s *Signer) PublicPEM() ([]byte, error) {
	return cryptoutils.MarshalPublicKeyToPEM(s.Private.Public())
}

// Verifier returns the signer's public half.
func (s *Signer) Verifier() (*Verifier, error) { return NewVerifier(s.Private.Public()) }

// ReadRef reads the bytes a key reference names: a file path or
// env://NAME. KMS references hold no bytes to read (LoadPrivate and
// LoadPublic take them); Kubernetes, PKCS#11 and GitLab keys are refused
// with a reason.
func ReadRef(ref string) ([]byte, error) {
	if ref == "" {
		return nil, errors.New("no key given; pass --key cosign.key (or env://NAME, or a KMS URI such as awskms:///alias/NAME)")
	}
	if name, ok := strings.CutPrefix(ref, "env://"); ok {
		v, set := os.LookupEnv(name)
		if !set || v == "" {
			return nil, fmt.Errorf("key %s: environment variable %s is not set", ref, name)
		}
		return []byte(v), nil
	}
	if IsKMS(ref) {
		return nil, fmt.Errorf("key %s: a KMS key has no bytes to read; load it with LoadPrivate or LoadPublic", Redact(ref))
	}
	for _, scheme := range unsupportedSchemes {
		if strings.HasPrefix(ref, scheme) {
			return nil, fmt.Errorf("key %s: Kubernetes, PKCS#11 and GitLab keys are not supported; export the key to a file, use env://NAME, or keep it in a KMS (awskms://, gcpkms://, azurekms://, hashivault://)", Redact(ref))
		}
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", ref, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("key %s is over %d KiB: not a key file", ref, maxKeyFile>>10)
	}
	return b, nil
}

// LoadPrivate resolves a signing key reference: a KMS URI gives a Signer
// whose signatures the KMS makes; a file or env://NAME is read and
// decrypted with pass. Every command that signs comes through here.
func LoadPrivate(ctx context.Context, ref string, pass PassFunc) (*Signer, error) {
	if IsKMS(ref) {
		return loadKMSPrivate(ctx, ref)
	}
	b, err := ReadRef(ref)
	if err != nil {
		return nil, err
	}
	s, err := ParsePrivate(b, pass)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", ref, err)
	}
	return s, nil
}

// LoadPublic resolves a verification key reference: a KMS URI (the public
// key is asked of the KMS once; signatures are checked locally), a public
// key file or env://NAME. A private key is accepted too (its public half is
// used), as cosign does, when a password function is given. Every command
// and policy that verifies comes through here.
func LoadPublic(ctx context.Context, ref string, pass PassFunc) (*Verifier, error) {
	if IsKMS(ref) {
		return loadKMSPublic(ctx, ref)
	}
	b, err := ReadRef(ref)
	if err != nil {
		return nil, err
	}
	if block, _ := pem.Decode(b); block != nil && strings.Contains(block.Type, "PRIVATE KEY") {
		s, err := ParsePrivate(b, pass)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", ref, err)
		}
		return s.Verifier()
	}
	v, err := ParsePublic(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", ref, err)
	}
	return v, nil
}

// Password is cosign's password source: COSIGN_PASSWORD when set (even
// empty), else a prompt on the terminal. Without either it fails rather
// than reading a pipe silently.
func Password(prompt io.Writer) PassFunc {
	return func(confirm bool) ([]byte, error) {
		if pw, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
			return []byte(pw), nil
		}
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return nil, errors.New("no password: set COSIGN_PASSWORD (it may be empty) or run in a terminal")
		}
		fmt.Fprint(prompt, "Enter password for private key: ")
		pw, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if confirm {
			fmt.Fprint(prompt, "Enter password for private key again: ")
			again, err := term.ReadPassword(fd)
			fmt.Fprintln(prompt)
			if err != nil {
				return nil, fmt.Errorf("read password: %w", err)
			}
			if !bytes.Equal(pw, again) {
				return nil, errors.New("passwords do not match")
			}
		}
		return pw, nil
	}
}

// SignData signs data the way sigstore-go's keypairs do (hash first,
// except for pure Ed25519) and returns the signature and the signed digest.
func (s *Signer) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	hf := s.Algorithm.GetHashType()
	msg := data
	if hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		msg = h.Sum(nil)
	}
	sig, err := s.Private.Sign(randReader, msg, hf)
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	return sig, msg, nil
}
