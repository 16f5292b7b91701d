package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
)

// maxSBOM bounds an SBOM read into memory.
const maxSBOM = 512 << 20

func newSBOMCmd(stdout, stderr io.Writer) *cobra.Command {
	var f scanFlags
	var att verifyFlags
	var fromAttestation bool
	cmd := &cobra.Command{
		Use:   "sbom [flags] FILE | sbom --from-attestation --key KEY --insecure-ignore-tlog IMAGE",
		Short: "Scan an existing SBOM (CycloneDX or SPDX JSON, from bulkhead, syft or trivy) for vulnerabilities",
		Long: `Scan an existing SBOM for vulnerabilities. FILE is a CycloneDX or SPDX JSON document
(bulkhead's, syft's, trivy's; - for stdin). With --from-attestation, IMAGE's SBOM is
taken from a signed attestation verified with --key (cosign layouts) instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			scanners, err := f.active()
			if err != nil {
				return err
			}
			var inv *inventory.Inventory
			if fromAttestation {
				inv, err = sbomFromAttestation(cmd.Context(), stderr, &att, args[0])
			} else {
				inv, err = readSBOM(args[0])
			}
			if err != nil {
				return err
			}
			var res *report.Result
			if f.server.url != "" {
				// As bulkhead image --server: upload the inventory, report
				// the server's findings; no local vulnerability database.
				vulns, err := f.matchOptions(scanners)
				if err != nil {
					return err
				}
				res = &report.Result{Inventory: inv}
				if err := f.server.match(cmd.Context(), res, vulns); err != nil {
					return err
				}
				res.Scanners = scanners
			} else if res, err = f.findings(cmd.Context(), inv, scanners); err != nil {
				return err
			}
			if err := writeResult(stdout, f.format, f.output, res); err != nil {
				return err
			}
			warnOutsideTable(stderr, f.format, f.quiet, res)
			return f.exit(res)
		},
	}
	f.register(cmd, false)
	f.server.add(cmd.Flags())
	cmd.Flags().BoolVar(&fromAttestation, "from-attestation", false, "take the SBOM from IMAGE's verified CycloneDX/SPDX attestation")
	att.register(cmd)
	cmd.AddCommand(newSBOMValidateCmd(stdout, stderr))
	return cmd
}

// readSBOM decodes a CycloneDX or SPDX JSON document, told apart by their
// marker fields.
func readSBOM(path string) (*inventory.Inventory, error) {
	data, err := readSBOMBytes(path)
	if err != nil {
		return nil, err
	}
	var probe struct {
		BOMFormat   string `json:"bomFormat"`
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("SBOM %s is not JSON: %w (CycloneDX and SPDX JSON are read)", path, err)
	}
	var inv *inventory.Inventory
	switch {
	case strings.EqualFold(probe.BOMFormat, "CycloneDX"):
		inv, err = cyclonedx.Decode(bytes.NewReader(data))
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-"):
		inv, err = spdx.Decode(bytes.NewReader(data))
	default:
		return nil, fmt.Errorf("%s is neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON", path)
	}
	if err != nil {
		return nil, fmt.Errorf("decode SBOM %s: %w", path, err)
	}
	if inv.Target.Name == "" {
		inv.Target.Name = path
	}
	return inv, nil
}
