package cli

import (
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/image/crypt"
)

// cryptFlags are the flags of encrypt and decrypt.
type cryptFlags struct {
	reportFlags
	registryFlags
	keys    []string
	layers  []int
	tempDir string
}

func (f *cryptFlags) add(cmd *cobra.Command, keyHelp string) {
	f.reportFlags.add(cmd, "text", "text", "json")
	f.registryFlags.add(cmd)
	fl := cmd.Flags()
	fl.StringArrayVar(&f.keys, "key", nil, keyHelp)
	addTempDir(fl, &f.tempDir)
}

// options makes the command's own temp directory (removed by done).
func (f *cryptFlags) options() (o crypt.Options, done func(), err error) {
	if err := f.check(); err != nil {
		return o, nil, err
	}
	if len(f.keys) == 0 {
		return o, nil, fmt.Errorf("give a key with --key")
	}
	if f.platform != "" {
		p, err := v1.ParsePlatform(f.platform)
		if err != nil {
			return o, nil, fmt.Errorf("--platform %q: %w", f.platform, err)
		}
		o.Platform = p
	}
	tmp, err := os.MkdirTemp(f.tempDir, "bulkhead-crypt-")
	if err != nil {
		return o, nil, fmt.Errorf("--temp-dir: %w", err)
	}
	o.TempDir, o.Insecure, o.Layers = tmp, f.insecure, f.layers
	return o, func() { os.RemoveAll(tmp) }, nil
}

func (f *cryptFlags) report(stdout io.Writer, verb string, rep *crypt.Report) error {
	return f.write(stdout, func(w io.Writer) error {
		if f.format == "json" {
			return writeJSON(w, rep)
		}
		for _, l := range rep.Layers {
			fmt.Fprintf(w, "%s layer %d: %s -> %s (%s)\n", verb, l.Index, l.From, l.To, l.MediaType)
		}
		_, err := fmt.Fprintf(w, "wrote %s (manifest %s)\n", rep.Dest, rep.Digest)
		return err
	})
}

const cryptRefs = `IMAGE is a registry reference, oci:DIR[:TAG], or an image archive
(docker-archive:FILE, oci-archive:FILE); DEST is a registry reference or
oci:DIR[:TAG] (created, or the image tagged TAG replaced).`

func newEncryptCmd(stdout, _ io.Writer) *cobra.Command {
	var f cryptFlags
	cmd := &cobra.Command{
		Use:   "encrypt --key jwe:pub.pem [--layer N ...] IMAGE DEST",
		Short: "Encrypt an image's layers (OCI image encryption, as skopeo and containerd imgcrypt read it)",
		Long: `Encrypt an image's layers for one or more recipients and write the image to DEST.

Each layer is encrypted with its own AES-256-CTR key (HMAC-SHA256
authenticated), wrapped for every --key in the layer's annotations
(org.opencontainers.image.enc.keys.jwe / .pkcs7, with .pubopts); the layer
media type gets "+encrypted" and the manifest becomes an OCI manifest. The
config and its diffIDs are unchanged. Keys:
  jwe:FILE     an RSA or EC public key (PEM, DER or JWK)
  pkcs7:FILE   an X.509 certificate (RSA)

` + cryptRefs,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, done, err := f.options()
			if err != nil {
				return err
			}
			defer done()
			var rs []crypt.Recipient
			for _, k := range f.keys {
				r, err := crypt.ParseRecipient(k)
				if err != nil {
					return fmt.Errorf("--key: %w", err)
				}
				rs = append(rs, r)
			}
			rep, err := crypt.Encrypt(cmd.Context(), args[0], args[1], rs, o)
			if err != nil {
				return err
			}
			return f.report(stdout, "encrypted", rep)
		},
	}
	f.add(cmd, "recipient: jwe:PUBLIC-KEY-FILE (RSA or EC) or pkcs7:CERT-FILE; repeatable, any one of them decrypts")
	cmd.Flags().IntSliceVar(&f.layers, "layer", nil, "encrypt only the layers of these indexes (0 is the base layer; repeatable; default: all)")
	return cmd
}

func newDecryptCmd(stdout, _ io.Writer) *cobra.Command {
	var f cryptFlags
	cmd := &cobra.Command{
		Use:   "decrypt --key priv.pem IMAGE DEST",
		Short: "Decrypt an image's encrypted layers (as skopeo copy --decryption-key does)",
		Long: `Decrypt every encrypted layer of IMAGE and write the plain image to DEST.

Each decrypted layer is checked against its HMAC, the digest recorded when it
was encrypted, and the config's diffID before anything is written.

` + cryptRefs,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, done, err := f.options()
			if err != nil {
				return err
			}
			defer done()
			keys, err := parsePrivateKeys("--key", f.keys)
			if err != nil {
				return err
			}
			rep, err := crypt.Decrypt(cmd.Context(), args[0], args[1], keys, o)
			if err != nil {
				return err
			}
			return f.report(stdout, "decrypted", rep)
		},
	}
	f.add(cmd, "private key: FILE, FILE:pass=PASSWORD, FILE:file=PASSWORD-FILE or FILE:env=VARIABLE (RSA or EC; PEM, DER or JWK); repeatable; for PKCS#7 give the certificate too")
	return cmd
}
