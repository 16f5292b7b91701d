package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom/validate"
)

func newSBOMValidateCmd(stdout, stderr io.Writer) *cobra.Command {
	var (
		f        imageFlags
		file     string
		r        reportFlags
		exitCode exitCode
	)
	cmd := &cobra.Command{
		Use:   "validate --sbom FILE [flags] [IMAGE]",
		Short: "Check an SBOM against its schema and against what is really in the image",
		Long: `Check an SBOM (CycloneDX 1.4-1.7 or SPDX 2.3 JSON, from bulkhead, syft,
trivy or anything else):

  schema        valid against the format's published JSON schema (embedded;
                no network)
  completeness  with IMAGE: the image is scanned and compared with the SBOM:
                packages missing from the SBOM, packages the SBOM lists that
                are not in the image, and versions that differ (matched by
                purl without version and qualifiers, else type and name)

Exits with --exit-code (default 1) when the SBOM fails either check, for CI.
SBOM entries of kinds the scan does not catalogue (files, generic binaries)
are listed as unverified and do not fail the check. (Reading the SBOM from a
verified attestation instead of --sbom is planned with image signing.)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := r.check(); err != nil {
				return err
			}
			if file == "" {
				return fmt.Errorf("name the SBOM with --sbom FILE")
			}
			data, err := readSBOMBytes(file)
			if err != nil {
				return err
			}
			var rep *validate.Report
			if len(args) == 1 {
				s, err := scanImageRef(cmd.Context(), args[0], &f, nil, stderr)
				if err != nil {
					return err
				}
				rep, err = validate.Validate(file, data, s.Inventory)
				if err != nil {
					return err
				}
			} else {
				rep, err = validate.Validate(file, data, &inventory.Inventory{})
				if err != nil {
					return err
				}
				// No image: schema only.
				rep.Missing, rep.Extra, rep.Mismatched, rep.Unverified, rep.Matched, rep.ImagePackages = nil, nil, nil, nil, 0, 0
			}
			err = r.write(stdout, func(w io.Writer) error {
				if r.format == "json" {
					return writeJSON(w, rep)
				}
				return validateTable(w, rep, len(args) == 1)
			})
			if err != nil {
				return err
			}
			if !rep.Passed() {
				var why []string
				if !rep.Schema.Valid {
					why = append(why, "not valid against "+rep.Schema.Schema)
				}
				if n := len(rep.Missing); n > 0 {
					why = append(why, fmt.Sprintf("%d packages missing", n))
				}
				if n := len(rep.Extra); n > 0 {
					why = append(why, fmt.Sprintf("%d packages not in the image", n))
				}
				if n := len(rep.Mismatched); n > 0 {
					why = append(why, fmt.Sprintf("%d version mismatches", n))
				}
				return &exitError{code: int(exitCode), err: fmt.Errorf("SBOM %s fails: %s", file, strings.Join(why, ", "))}
			}
			return nil
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&file, "sbom", "", "the SBOM to check (CycloneDX or SPDX JSON; - for standard input)")
	r.add(cmd, "table", "table", "json")
	addExitCode(cmd, &exitCode, 1, "the SBOM fails a check")
	return cmd
}

func readSBOMBytes(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		file, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("read SBOM: %w", err)
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSBOM+1))
	if err != nil {
		return nil, fmt.Errorf("read SBOM %s: %w", path, err)
	}
	if len(data) > maxSBOM {
		return nil, fmt.Errorf("SBOM %s is over %d MiB", path, maxSBOM>>20)
	}
	return data, nil
}

func validateTable(w io.Writer, r *validate.Report, withImage bool) error {
	fmt.Fprintf(w, "SBOM:    %s (%s %s)\n", termSafe(r.SBOM), r.Format, termSafe(r.SpecVersion))
	if r.Describes != "" {
		fmt.Fprintf(w, "Describes: %s\n", termSafe(r.Describes))
	}
	if r.Schema.Valid {
		fmt.Fprintf(w, "Schema:  valid (%s)\n", r.Schema.Schema)
	} else {
		fmt.Fprintf(w, "Schema:  INVALID against %s\n", r.Schema.Schema)
		for _, e := range r.Schema.Errors {
			fmt.Fprintf(w, "  %s\n", termSafe(e))
		}
		if r.Schema.More > 0 {
			fmt.Fprintf(w, "  ... and %d more\n", r.Schema.More)
		}
	}
	if !withImage {
		fmt.Fprintln(w, "Completeness: not checked (name an IMAGE to compare the SBOM with)")
		return nil
	}
	status := "complete"
	if !r.Complete() {
		status = "INCOMPLETE OR WRONG"
	}
	fmt.Fprintf(w, "Image:   %s\nCompleteness: %s: %d of %d image packages match; SBOM lists %d (%d missing, %d not in the image, %d version mismatches, %d unverified)\n",
		termSafe(r.Image), status, r.Matched, r.ImagePackages, r.SBOMPackages, len(r.Missing), len(r.Extra), len(r.Mismatched), len(r.Unverified))
	for _, p := range r.Missing {
		fmt.Fprintf(w, "  missing from the SBOM:  %s %s %s\n", p.Type, termSafe(p.Name), termSafe(p.Version))
	}
	for _, p := range r.Extra {
		fmt.Fprintf(w, "  not in the image:       %s %s %s\n", p.Type, termSafe(p.Name), termSafe(p.Version))
	}
	for _, m := range r.Mismatched {
		fmt.Fprintf(w, "  version mismatch:       %s %s: SBOM %s, image %s\n", m.Type, termSafe(m.Name), termSafe(strings.Join(m.SBOM, ", ")), termSafe(strings.Join(m.Image, ", ")))
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", termSafe(warn))
	}
	return nil
}
