// Package crypt encrypts and decrypts container image layers as OCI image
// encryption defines them (containers/ocicrypt, what skopeo, podman and
// containerd's imgcrypt use): each chosen layer is encrypted with a fresh
// AES-256-CTR key (HMAC-SHA256 authenticated), and that key is wrapped for
// each recipient in the layer descriptor's annotations
// (org.opencontainers.image.enc.keys.jwe / .pkcs7, and .pubopts). The layer
// media type gets "+encrypted"; the config and its diffIDs are unchanged.
//
// Supported key schemes: jwe (RSA and EC public keys; decryption with the
// private key) and pkcs7 (X.509 certificates; decryption with the private
// key and the certificate). pgp, pkcs11 and key providers are not offered.
package crypt

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	encconfig "github.com/containers/ocicrypt/config"
	encutils "github.com/containers/ocicrypt/utils"
)

// Scheme is a key-wrapping scheme.
type Scheme string

const (
	JWE   Scheme = "jwe"
	PKCS7 Scheme = "pkcs7"
)

// Recipient is one --key of encrypt: SCHEME:FILE.
type Recipient struct {
	Scheme Scheme
	Path   string
}

func (r Recipient) String() string { return string(r.Scheme) + ":" + r.Path }

// KeyError is a key argument that cannot be used.
type KeyError struct {
	Arg string
	Msg string
}

func (e *KeyError) Error() string { return fmt.Sprintf("key %q: %s", e.Arg, e.Msg) }

const maxKeyArg = 4096

// ParseRecipient parses an encryption key argument, as skopeo writes it:
// jwe:PUBLIC-KEY-FILE (RSA or EC, PEM/DER/JWK) or pkcs7:CERT-FILE.
func ParseRecipient(s string) (Recipient, error) {
	if len(s) > maxKeyArg || strings.ContainsRune(s, 0) {
		return Recipient{}, &KeyError{Arg: shorten(redactPass(s)), Msg: "not a key argument (too long or contains NUL)"}
	}
	scheme, path, ok := strings.Cut(s, ":")
	if !ok {
		return Recipient{}, &KeyError{Arg: redactPass(s), Msg: "give the scheme and the file, as jwe:pub.pem (RSA or EC public key) or pkcs7:cert.pem (X.509 certificate)"}
	}
	switch Scheme(scheme) {
	case JWE, PKCS7:
	case "pgp", "pkcs11", "provider":
		return Recipient{}, &KeyError{Arg: redactPass(s), Msg: fmt.Sprintf("the %s scheme is not supported by bulkhead; use jwe:pub.pem or pkcs7:cert.pem", scheme)}
	default:
		return Recipient{}, &KeyError{Arg: redactPass(s), Msg: fmt.Sprintf("unknown scheme %q; use jwe:pub.pem or pkcs7:cert.pem", scheme)}
	}
	if path == "" {
		return Recipient{}, &KeyError{Arg: redactPass(s), Msg: "no file after the scheme"}
	}
	return Recipient{Scheme: Scheme(scheme), Path: path}, nil
}

// PrivateKey is one --key of decrypt (or --decryption-key of a scan):
// FILE, FILE:pass=PASSWORD, FILE:file=PASSWORD-FILE or FILE:env=VAR. FILE
// is a private key (RSA or EC; PEM, DER or JWK) or, for pkcs7, the
// recipient's X.509 certificate (given next to its private key).
type PrivateKey struct {
	Path string
	// PassFrom says where the password is: "" (none), "pass", "file", "env".
	PassFrom string
	Pass     string
}

// ParsePrivateKey parses a decryption key argument.
func ParsePrivateKey(s string) (PrivateKey, error) {
	if len(s) > maxKeyArg || strings.ContainsRune(s, 0) {
		return PrivateKey{}, &KeyError{Arg: shorten(redactPass(s)), Msg: "not a key argument (too long or contains NUL)"}
	}
	if s == "" {
		return PrivateKey{}, &KeyError{Arg: s, Msg: "empty; give the private key file"}
	}
	for _, scheme := range []string{"jwe:", "pkcs7:", "pgp:", "pkcs11:", "provider:"} {
		if strings.HasPrefix(s, scheme) {
			return PrivateKey{}, &KeyError{Arg: s, Msg: "a decryption key is a private key file (FILE or FILE:pass=...), without a scheme"}
		}
	}
	path, pw, hasPw := strings.Cut(s, ":")
	if path == "" {
		return PrivateKey{}, &KeyError{Arg: redactPass(s), Msg: "no file before the colon"}
	}
	if !hasPw {
		return PrivateKey{Path: path}, nil
	}
	from, val, ok := strings.Cut(pw, "=")
	if !ok || (from != "pass" && from != "file" && from != "env") {
		return PrivateKey{}, &KeyError{Arg: redactPass(s), Msg: "after the file comes the password as :pass=PASSWORD, :file=PASSWORD-FILE or :env=VARIABLE"}
	}
	if val == "" {
		return PrivateKey{}, &KeyError{Arg: redactPass(s), Msg: "empty password source after " + from + "="}
	}
	return PrivateKey{Path: path, PassFrom: from, Pass: val}, nil
}

func (k PrivateKey) password() ([]byte, error) {
	switch k.PassFrom {
	case "pass":
		return []byte(k.Pass), nil
	case "file":
		b, err := os.ReadFile(k.Pass)
		if err != nil {
			return nil, fmt.Errorf("password file of %s: %w", k.Path, err)
		}
		return []byte(strings.TrimRight(string(b), "\r\n")), nil
	case "env":
		v, ok := os.LookupEnv(k.Pass)
		if !ok {
			return nil, fmt.Errorf("password of %s: environment variable %s is not set", k.Path, k.Pass)
		}
		return []byte(v), nil
	}
	return nil, nil
}

func redactPass(s string) string {
	if i := strings.Index(s, ":pass="); i >= 0 {
		return s[:i] + ":pass=REDACTED"
	}
	return s
}

func shorten(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", `\0`), "?")
}

// maxKeyFile bounds a key or certificate file read into memory.
const maxKeyFile = 1 << 20

func readKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxKeyFile {
		return nil, fmt.Errorf("%s is %d bytes; a key file is at most %d", path, st.Size(), maxKeyFile)
	}
	return os.ReadFile(path)
}

// sec1ToPKCS8 rewrites an unencrypted PEM "EC PRIVATE KEY" (SEC 1, what
// openssl ecparam -genkey writes) as PKCS#8, which ocicrypt's PEM parser
// reads (it reads SEC 1 only as DER). Anything else is returned as is.
func sec1ToPKCS8(b []byte) []byte {
	blk, rest := pem.Decode(b)
	for blk != nil && blk.Type == "EC PARAMETERS" {
		blk, rest = pem.Decode(rest)
	}
	if blk == nil || blk.Type != "EC PRIVATE KEY" || len(blk.Headers) != 0 {
		return b
	}
	k, err := x509.ParseECPrivateKey(blk.Bytes)
	if err != nil {
		return b
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return b
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// EncryptConfig loads the recipients' keys.
func EncryptConfig(rs []Recipient) (*encconfig.EncryptConfig, error) {
	if len(rs) == 0 {
		return nil, errors.New("no encryption key; give one with --key jwe:pub.pem")
	}
	var pubs, certs [][]byte
	for _, r := range rs {
		b, err := readKeyFile(r.Path)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", r, err)
		}
		switch r.Scheme {
		case JWE:
			if !encutils.IsPublicKey(b) {
				return nil, fmt.Errorf("--key %s: %s is not a public key (RSA or EC; PEM, DER or JWK); for a certificate use pkcs7:", r, r.Path)
			}
			pubs = append(pubs, b)
		case PKCS7:
			if !encutils.IsCertificate(b) {
				return nil, fmt.Errorf("--key %s: %s is not an X.509 certificate (PEM or DER)", r, r.Path)
			}
			certs = append(certs, b)
		}
	}
	var ccs []encconfig.CryptoConfig
	if len(pubs) > 0 {
		cc, err := encconfig.EncryptWithJwe(pubs)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	if len(certs) > 0 {
		cc, err := encconfig.EncryptWithPkcs7(certs)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	return encconfig.CombineCryptoConfigs(ccs).EncryptConfig, nil
}

// DecryptConfig loads the private keys (and certificates, for pkcs7).
func DecryptConfig(keys []PrivateKey) (*encconfig.DecryptConfig, error) {
	if len(keys) == 0 {
		return nil, errors.New("no decryption key; give the private key file")
	}
	var privs, pws, certs [][]byte
	for _, k := range keys {
		b, err := readKeyFile(k.Path)
		if err != nil {
			return nil, fmt.Errorf("decryption key: %w", err)
		}
		if encutils.IsCertificate(b) {
			certs = append(certs, b)
			continue
		}
		pw, err := k.password()
		if err != nil {
			return nil, err
		}
		b = sec1ToPKCS8(b)
		ok, err := encutils.IsPrivateKey(b, pw)
		if err != nil && encutils.IsPasswordError(err) {
			return nil, fmt.Errorf("decryption key %s: %w; give its password as %s:pass=..., :file=... or :env=...", k.Path, err, k.Path)
		}
		if !ok {
			return nil, fmt.Errorf("decryption key %s is neither a private key (RSA or EC; PEM, DER or JWK) nor an X.509 certificate", k.Path)
		}
		privs, pws = append(privs, b), append(pws, pw)
	}
	if len(privs) == 0 {
		return nil, errors.New("no private key among the decryption keys (only certificates); add the private key file")
	}
	ccs := []encconfig.CryptoConfig{}
	cc, err := encconfig.DecryptWithPrivKeys(privs, pws)
	if err != nil {
		return nil, err
	}
	ccs = append(ccs, cc)
	if len(certs) > 0 {
		cc, err := encconfig.DecryptWithX509s(certs)
		if err != nil {
			return nil, err
		}
		ccs = append(ccs, cc)
	}
	return encconfig.CombineCryptoConfigs(ccs).DecryptConfig, nil
}
