package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
	"github.com/bulkhead-sec/bulkhead/sign"
	"github.com/bulkhead-sec/bulkhead/sign/key"
)

// attestFlags let `bulkhead image` attach its result as a signed
// attestation in one go.
type attestFlags struct {
	typ       string
	keyRef    string
	tlog      bool
	newBundle bool
}

func (a *attestFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&a.typ, "attest", "", "after the scan, attach its result to the image as a signed attestation: cyclonedx, spdxjson or vuln (registry images)")
	fl.StringVar(&a.keyRef, "attest-key", "", "private key for --attest: a file (cosign.key), env://NAME or a KMS URI (awskms://, gcpkms://, azurekms://, hashivault://)")
	fl.BoolVar(&a.tlog, "tlog-upload", true, "with --attest: upload to a transparency log (not supported yet: pass --tlog-upload=false)")
	fl.BoolVar(&a.newBundle, "new-bundle-format", false, "with --attest: store a Sigstore bundle as an OCI referrer instead of the .att tag")
}

// attestResult signs the scan's result and attaches it to the image.
func (a *attestFlags) attestResult(ctx context.Context, stderr io.Writer, img *image.Image, insecure bool, res *report.Result) error {
	if a.typ == "" {
		return nil
	}
	if img.Source != image.SourceRegistry {
		return fmt.Errorf("--attest needs an image in a registry (this one came from %s)", img.Source)
	}
	if a.keyRef == "" {
		return errors.New("--attest needs --attest-key")
	}
	if a.tlog {
		return errNoTlogUpload
	}
	var buf bytes.Buffer
	var err error
	switch a.typ {
	case "cyclonedx":
		err = cyclonedx.EncodeWithVulnerabilities(&buf, res.Inventory, res.Findings, sbom.Options{ToolVersion: Version})
	case "spdxjson":
		err = spdx.Encode(&buf, res.Inventory, sbom.Options{ToolVersion: Version})
	case "vuln":
		err = report.ResultJSON(&buf, res)
	default:
		return fmt.Errorf("--attest %q: use cyclonedx, spdxjson or vuln", a.typ)
	}
	if err != nil {
		return err
	}
	s, err := key.LoadPrivate(ctx, a.keyRef, key.Password(stderr))
	if err != nil {
		return err
	}
	reg := cosignRegistryFlags{allowInsecure: insecure}
	ro := reg.options(ctx)
	ref := img.Name
	if img.Digest.Hex != "" {
		// Attest exactly what was scanned, even if the tag moved since.
		if r, err := image.ParseReference(img.Name, insecure); err == nil {
			ref = r.Context().Digest(img.Digest.String()).String()
		}
	}
	t, err := sign.Resolve(ctx, ref, ro)
	if err != nil {
		return err
	}
	return attach(ctx, stderr, t, s, ro, a.typ, buf.Bytes(), a.newBundle, false)
}

// sbomFromAttestation verifies an image's SBOM attestation (CycloneDX, else
// SPDX) and decodes the SBOM it carries.
func sbomFromAttestation(ctx context.Context, stderr io.Writer, f *verifyFlags, ref string) (*inventory.Inventory, error) {
	o, err := f.options(ctx)
	if err != nil {
		return nil, err
	}
	v, err := key.LoadPublic(ctx, f.keyRef, key.Password(stderr))
	if err != nil {
		return nil, err
	}
	t, err := sign.Resolve(ctx, ref, o.Options)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, typ := range []string{"cyclonedx", "spdxjson"} {
		if o.PredicateType, err = sign.PredicateType(typ); err != nil {
			return nil, err
		}
		atts, err := sign.VerifyAttestations(ctx, t, v, o)
		if err != nil {
			lastErr = err
			continue
		}
		pred := atts[len(atts)-1].Predicate
		var inv *inventory.Inventory
		if typ == "cyclonedx" {
			inv, err = cyclonedx.Decode(bytes.NewReader(pred))
		} else {
			inv, err = spdx.Decode(bytes.NewReader(pred))
		}
		if err != nil {
			return nil, fmt.Errorf("decode the %s SBOM attested for %s: %w", typ, t.Digest, err)
		}
		inv.Target.Name = ref
		inv.Target.Digest = t.Digest.DigestStr()
		fmt.Fprintf(stderr, "using the %s SBOM from a verified attestation of %s\n", typ, t.Digest)
		return inv, nil
	}
	return nil, fmt.Errorf("no verified SBOM attestation for %s: %w", ref, lastErr)
}
