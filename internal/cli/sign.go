package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// cosignRegistryFlags are cosign's registry flags.
type cosignRegistryFlags struct {
	allowInsecure bool
	allowHTTP     bool
}

func (r *cosignRegistryFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&r.allowInsecure, "allow-insecure-registry", false, "allow plain HTTP and unverified TLS for the registry (cosign's flag)")
	fl.BoolVar(&r.allowHTTP, "allow-http-registry", false, "allow plain HTTP for the registry (cosign's flag)")
	fl.BoolVar(&r.allowInsecure, "insecure", false, helpInsecure)
}

func (r *cosignRegistryFlags) options(ctx context.Context) sign.Options {
	insecure := r.allowInsecure || r.allowHTTP
	o := sign.Options{Remote: image.RemoteOptions(ctx, image.Options{Insecure: r.allowInsecure})}
	if insecure {
		o.Name = append(o.Name, name.Insecure)
	}
	return o
}

// parseAnnotations reads -a key=value flags.
func parseAnnotations(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("annotation %q: use -a key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

// errNoTlogUpload is the answer to a transparency-log request: bulkhead
// signs offline, as cosign does with --tlog-upload=false. Verification
// without the log is sign.TLogInsecureIgnore (--insecure-ignore-tlog).
var errNoTlogUpload = errors.New("bulkhead cannot upload to a transparency log (Rekor) yet; sign offline with --tlog-upload=false, as with cosign")

func newGenerateKeyPairCmd(stdout, stderr io.Writer) *cobra.Command {
	var prefix, kms string
	var force bool
	cmd := &cobra.Command{
		Use:   "generate-key-pair",
		Short: "Write an ECDSA P-256 key pair in cosign's format (cosign.key, cosign.pub), or create one in a KMS",
		Long: `Write a new ECDSA P-256 key pair to cosign.key (encrypted: scrypt and
nacl/secretbox over PKCS#8, the "ENCRYPTED SIGSTORE PRIVATE KEY" cosign writes)
and cosign.pub (PKIX PEM) in the current directory. The password comes from
COSIGN_PASSWORD (which may be empty) or a prompt.

With --kms URI the key is created in the KMS instead (ECDSA P-256; an existing
key of that name is kept, as cosign does) and only its public key is written,
to cosign.pub: awskms://[ENDPOINT]/alias/NAME, gcpkms://projects/.../cryptoKeys/KEY,
azurekms://VAULT/KEY, hashivault://KEY. Sign with --key URI, verify with
--key URI or the exported public key.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			privPath, pubPath := prefix+".key", prefix+".pub"
			if kms != "" {
				if _, err := os.Stat(pubPath); err == nil && !force {
					return fmt.Errorf("%s exists; remove it or pass --force", pubPath)
				}
				pub, err := key.GenerateKMS(cmd.Context(), kms)
				if err != nil {
					return err
				}
				if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
					return fmt.Errorf("write public key: %w", err)
				}
				fmt.Fprintf(stderr, "Key %s is in the KMS\nPublic key written to %s\n", key.Redact(kms), pubPath)
				return nil
			}
			if !force {
				for _, p := range []string{privPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s exists; remove it or pass --force", p)
					}
				}
			}
			pw, err := key.Password(stderr)(true)
			if err != nil {
				return err
			}
			priv, pub, err := key.Generate(pw)
			if err != nil {
				return err
			}
			if err := os.WriteFile(privPath, priv, 0o600); err != nil {
				return fmt.Errorf("write private key: %w", err)
			}
			if err := os.WriteFile(pubPath, pub, 0o644); err != nil {
				return fmt.Errorf("write public key: %w", err)
			}
			fmt.Fprintf(stderr, "Private key written to %s\nPublic key written to %s\n", privPath, pubPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "name of the key files without .key/.pub")
	cmd.Flags().StringVar(&kms, "kms", "", "create the key in this KMS (awskms://, gcpkms://, azurekms://, hashivault://) and write only its public key")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "overwrite existing key files")
	return cmd
}

func newSignCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		reg       cosignRegistryFlags
		keyRef    string
		anns      []string
		tlog      bool
		newBundle bool
	)
	cmd := &cobra.Command{
		Use:   "sign --key KEY [flags] IMAGE...",
		Short: "Sign images with a key, in cosign's layouts",
		Long: `Sign the manifest digest of each image (a tag is resolved first) with a
cosign key. By default the signature goes to cosign's legacy layout (the
sha256-<hex>.sig tag, appended to the signatures already there), which cosign v2
and v3 verify; --new-bundle-format pushes a Sigstore bundle as an OCI referrer,
as cosign v3 does.

KEY is a file (cosign.key) or env://NAME, whose password comes from
COSIGN_PASSWORD or a prompt, or a KMS URI (awskms://, gcpkms://, azurekms://,
hashivault://), where the KMS signs the digest and the private key never
leaves it. Signing is offline: pass --tlog-upload=false.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tlog {
				return errNoTlogUpload
			}
			a, err := parseAnnotations(anns)
			if err != nil {
				return err
			}
			s, err := key.LoadPrivate(cmd.Context(), keyRef, key.Password(stderr))
			if err != nil {
				return err
			}
			o := sign.SignOptions{Options: reg.options(cmd.Context()), Annotations: a, Layout: sign.Legacy}
			if newBundle {
				o.Layout = sign.Bundle
			}
			for _, ref := range args {
				t, err := sign.Resolve(cmd.Context(), ref, o.Options)
				if err != nil {
					return err
				}
				if err := sign.SignImage(cmd.Context(), t, s, o); err != nil {
					return fmt.Errorf("sign %s: %w", t.Digest, err)
				}
				fmt.Fprintf(stderr, "Signed %s (%s layout)\n", t.Digest, o.Layout)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyRef, "key", "", "private key: a file (cosign.key), env://NAME or a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)")
	fl.StringArrayVarP(&anns, "annotations", "a", nil, "key=value annotation to sign into the payload (repeatable)")
	fl.BoolVar(&tlog, "tlog-upload", true, "upload to a transparency log (not supported yet: pass --tlog-upload=false)")
	fl.BoolVar(&newBundle, "new-bundle-format", false, "store a Sigstore bundle as an OCI referrer (cosign v3's layout) instead of the .sig tag")
	reg.register(cmd)
	cmd.MarkFlagRequired("key")
	return cmd
}

// verifyFlags are shared by verify and verify-attestation.
type verifyFlags struct {
	reg        cosignRegistryFlags
	keyRef     string
	policy     string
	anns       []string
	ignoreTlog bool
	layout     string
}

func (f *verifyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.keyRef, "key", "", "public key: a file (cosign.pub), env://NAME or a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)")
	fl.StringVar(&f.policy, "policy", "", "policy file mapping image globs to trusted keys and required attestations (instead of --key)")
	fl.StringArrayVarP(&f.anns, "annotations", "a", nil, "key=value annotation the signed payload must carry (repeatable)")
	fl.BoolVar(&f.ignoreTlog, "insecure-ignore-tlog", false, "accept signatures without a checked transparency log entry (needed today: bulkhead cannot check Rekor yet, so without it every signature is rejected); with --policy, for every rule")
	fl.StringVar(&f.layout, "layout", "", "look only at this layout: legacy (.sig/.att tags) or bundle (OCI referrers); default both")
	f.reg.register(cmd)
}

// options maps the flags onto sign's options; the transparency-log choice
// is sign's (required unless --insecure-ignore-tlog), the same the gate and
// the webhook make from a policy's transparencyLog.
func (f *verifyFlags) options(ctx context.Context) (sign.VerifyOptions, error) {
	var o sign.VerifyOptions
	a, err := parseAnnotations(f.anns)
	if err != nil {
		return o, err
	}
	o = sign.VerifyOptions{Options: f.reg.options(ctx), Annotations: a}
	if f.ignoreTlog {
		o.TLog = sign.TLogInsecureIgnore
	}
	switch f.layout {
	case "":
	case string(sign.Legacy), string(sign.Bundle):
		o.Layouts = []sign.Layout{sign.Layout(f.layout)}
	default:
		return o, fmt.Errorf("--layout %q: use legacy or bundle", f.layout)
	}
	return o, nil
}

func newVerifyCmd(stdout, stderr io.Writer) *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify (--key KEY | --policy FILE) [flags] IMAGE...",
		Short: "Verify image signatures (cosign legacy and bundle layouts)",
		Long: `Verify that each image's digest carries a signature made with KEY, in
either of cosign's layouts, and that the signed payload carries the -a
annotations. With --policy, the keys and required attestations come from the
policy whose image globs match. The verified payloads are printed as JSON.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if (f.keyRef == "") == (f.policy == "") {
				return errors.New("give --key or --policy")
			}
			o, err := f.options(ctx)
			if err != nil {
				return err
			}
			var pol *sign.Policy
			var v *key.Verifier
			if f.policy != "" {
				if pol, err = sign.LoadPolicy(f.policy); err != nil {
					return err
				}
			} else if v, err = key.LoadPublic(ctx, f.keyRef, key.Password(stderr)); err != nil {
				return err
			}
			var out []any
			for _, ref := range args {
				t, err := sign.Resolve(ctx, ref, o.Options)
				if err != nil {
					return err
				}
				if pol != nil {
					res, err := pol.Verify(ctx, t, o, key.Password(stderr))
					if err != nil {
						return fmt.Errorf("%s: %w", t.Digest, err)
					}
					for _, r := range res {
						fmt.Fprintf(stderr, "Verified %s: policy %s, signed by %s, %d attestation(s)\n", t.Digest, r.Rule, r.Key, len(r.Attestations))
						if r.TransparencyLog == sign.TLogIgnoreName {
							fmt.Fprintf(stderr, "  - No transparency log was checked (%s)\n", tlogSource(f.ignoreTlog))
						}
						out = append(out, r)
					}
					continue
				}
				sigs, err := sign.VerifySignatures(ctx, t, v, o)
				if err != nil {
					return err
				}
				fmt.Fprintf(stderr, "Verification for %s --\nThe following checks were performed on each of these signatures:\n", t.Digest)
				fmt.Fprintln(stderr, "  - The signatures were verified against the specified public key")
				fmt.Fprintln(stderr, "  - The signed payload names the image digest (and carries the required annotations)")
				fmt.Fprintln(stderr, "  - No transparency log was checked (--insecure-ignore-tlog)")
				for _, s := range sigs {
					out = append(out, s)
				}
			}
			return writeJSON(stdout, out)
		},
	}
	f.register(cmd)
	return cmd
}

// tlogSource names where the choice to ignore the log was written.
func tlogSource(flag bool) string {
	if flag {
		return "--insecure-ignore-tlog"
	}
	return "the policy says transparencyLog: ignore"
}

func newAttestCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		reg       cosignRegistryFlags
		keyRef    string
		typ       string
		predicate string
		tlog      bool
		newBundle bool
		replace   bool
	)
	cmd := &cobra.Command{
		Use:   "attest --key KEY --type TYPE --predicate FILE [flags] IMAGE",
		Short: "Attach a signed in-toto attestation (SBOM, vulnerability report, OpenVEX) to an image",
		Long: `Wrap FILE in an in-toto statement about the image digest, sign it as a DSSE
envelope and store it as cosign does: a layer of the sha256-<hex>.att tag by
default, or a Sigstore bundle pushed as an OCI referrer with --new-bundle-format.

TYPE is one of ` + strings.Join(sign.PredicateTypes(), ", ") + ` or a predicate
type URI; vuln takes cosign's vuln predicate or wraps any JSON report (such as
bulkhead image --format json) as its scanner result.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tlog {
				return errNoTlogUpload
			}
			if predicate == "" {
				return errors.New("--predicate FILE is required")
			}
			pred, err := readPredicate(predicate)
			if err != nil {
				return err
			}
			s, err := key.LoadPrivate(cmd.Context(), keyRef, key.Password(stderr))
			if err != nil {
				return err
			}
			ro := reg.options(cmd.Context())
			t, err := sign.Resolve(cmd.Context(), args[0], ro)
			if err != nil {
				return err
			}
			return attach(cmd.Context(), stderr, t, s, ro, typ, pred, newBundle, replace)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyRef, "key", "", "private key: a file (cosign.key), env://NAME or a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)")
	fl.StringVar(&typ, "type", "custom", "predicate type: "+strings.Join(sign.PredicateTypes(), ", ")+" or a URI")
	fl.StringVar(&predicate, "predicate", "", "the predicate file (an SBOM, a report, an OpenVEX document; - for stdin)")
	fl.BoolVar(&tlog, "tlog-upload", true, "upload to a transparency log (not supported yet: pass --tlog-upload=false)")
	fl.BoolVar(&newBundle, "new-bundle-format", false, "store a Sigstore bundle as an OCI referrer (cosign v3's layout) instead of the .att tag")
	fl.BoolVar(&replace, "replace", false, "replace earlier .att attestations of the same predicate type")
	reg.register(cmd)
	cmd.MarkFlagRequired("key")
	return cmd
}

// attach signs and stores one attestation.
func attach(ctx context.Context, stderr io.Writer, t *sign.Target, s *key.Signer, ro sign.Options, typ string, pred []byte, newBundle, replace bool) error {
	o := sign.AttestOptions{
		Options:          ro,
		Layout:           sign.Legacy,
		Replace:          replace,
		StatementOptions: sign.StatementOptions{Type: typ, Predicate: pred, ScannerURI: "https://github.com/bulkhead-sec/bulkhead", ScannerVersion: Version},
	}
	if newBundle {
		o.Layout = sign.Bundle
	}
	if err := sign.AttestImage(ctx, t, s, o); err != nil {
		return fmt.Errorf("attest %s: %w", t.Digest, err)
	}
	fmt.Fprintf(stderr, "Attached a %s attestation to %s (%s layout)\n", typ, t.Digest, o.Layout)
	return nil
}

// maxPredicate bounds a predicate file (SBOMs of large images are tens of
// MB).
const maxPredicate = 128 << 20

func readPredicate(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read predicate: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxPredicate+1))
	if err != nil {
		return nil, fmt.Errorf("read predicate %s: %w", path, err)
	}
	if len(b) > maxPredicate {
		return nil, fmt.Errorf("predicate %s is over %d MiB", path, maxPredicate>>20)
	}
	return b, nil
}

func newVerifyAttestationCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		f         verifyFlags
		typ       string
		statement bool
	)
	cmd := &cobra.Command{
		Use:   "verify-attestation --key KEY --type TYPE [flags] IMAGE",
		Short: "Verify an image's attestations and print the verified predicate",
		Long: `Verify the image's attestations of TYPE (both cosign layouts) with KEY and print
each verified predicate as JSON, one per line (--statement prints the whole
in-toto statement). An SBOM taken this way can be scanned with
bulkhead sbom FILE.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if f.policy != "" {
				return errors.New("--policy belongs to bulkhead verify; give --key here")
			}
			o, err := f.options(ctx)
			if err != nil {
				return err
			}
			if o.PredicateType, err = sign.PredicateType(typ); err != nil {
				return err
			}
			v, err := key.LoadPublic(ctx, f.keyRef, key.Password(stderr))
			if err != nil {
				return err
			}
			t, err := sign.Resolve(ctx, args[0], o.Options)
			if err != nil {
				return err
			}
			atts, err := sign.VerifyAttestations(ctx, t, v, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(stderr, "Verified %d %s attestation(s) of %s\n", len(atts), typ, t.Digest)
			for _, a := range atts {
				b := a.Predicate
				if statement {
					b = a.Payload
				}
				if _, err := stdout.Write(append(append([]byte{}, b...), '\n')); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&typ, "type", "custom", "predicate type: "+strings.Join(sign.PredicateTypes(), ", ")+" or a URI")
	cmd.Flags().BoolVar(&statement, "statement", false, "print the whole in-toto statement, not only the predicate")
	cmd.MarkFlagRequired("key")
	return cmd
}
