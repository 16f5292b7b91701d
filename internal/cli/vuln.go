package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/trace"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
)

// Scanner names for --scanners.
const (
	scannerVuln = "vuln"
)

// imageScanners are the scanners that ride the image walk, by --scanners
// name: a new one is one entry here (vuln runs on the inventory, after).
var imageScanners = map[string]func(f *scanFlags) scan.Scanner{
	"secret":    func(*scanFlags) scan.Scanner { return imagescan.New(secret.Default()) },
	"misconfig": func(*scanFlags) scan.Scanner { return audit.New() },
}

func knownScanner(s string) bool {
	_, ok := imageScanners[s]
	return ok || s == scannerVuln
}

func scannerNames() string {
	names := []string{scannerVuln}
	for n := range imageScanners {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// findingFlags are the flags of commands that report findings.
type findingFlags struct {
	scanners []string
	vulnFilterFlags
	exitCode exitCode
}

func (f *findingFlags) register(cmd *cobra.Command, defaultScanners []string) {
	cmd.Flags().StringSliceVar(&f.scanners, "scanners", defaultScanners, "scanners to run: "+scannerNames()+" (none: inventory only)")
	f.vulnFilterFlags.add(cmd)
	addExitCode(cmd, &f.exitCode, 0, "findings remain after filters, ignores and VEX (default 0: findings do not fail the run)")
}

// active returns the scanners asked for, checked.
func (f *findingFlags) active() ([]string, error) {
	var out []string
	for _, s := range f.scanners {
		s = strings.TrimSpace(strings.ToLower(s))
		switch {
		case s == "" || s == "none":
			continue
		case !knownScanner(s):
			return nil, fmt.Errorf("unknown scanner %q in --scanners (known: %s, none)", s, scannerNames())
		}
		out = append(out, s)
	}
	return out, nil
}

// matchOptions turns the flags into the pipeline's match options; nil
// when the vuln scanner is not among scanners.
func (f *findingFlags) matchOptions(scanners []string) (*pipeline.MatchOptions, error) {
	if !slices.Contains(scanners, scannerVuln) {
		return nil, nil
	}
	o := f.options()
	o.VEX = f.vex
	sev, err := parseSeverities(f.severity)
	if err != nil {
		return nil, err
	}
	o.Severities = sev
	return &o, nil
}

// findings runs the pipeline's stages after the walk (vuln) on an
// inventory read elsewhere (an SBOM).
func (f *findingFlags) findings(ctx context.Context, inv *inventory.Inventory, scanners []string) (*report.Result, error) {
	vulns, err := f.matchOptions(scanners)
	if err != nil {
		return nil, err
	}
	res, err := pipeline.Inventory(ctx, inv, pipeline.Options{Vulns: vulns})
	if err != nil {
		return nil, err
	}
	res.Scanners = scanners
	return res.Result, nil
}

// exit decides the exit code: --exit-code when findings remain after
// filters, ignores and VEX.
func (f *findingFlags) exit(res *report.Result) error {
	if f.exitCode != 0 && len(match.Active(res.Findings)) > 0 {
		return &exitError{code: int(f.exitCode), err: fmt.Errorf("%d findings (run with --format table to see them)", len(match.Active(res.Findings)))}
	}
	return nil
}

// writeResult writes a result in the chosen format to stdout or --output.
// writeResultRegion is writeResult in an execution-trace region
// ("write report"; BULKHEAD_TRACE).
func writeResultRegion(ctx context.Context, stdout io.Writer, format, output string, res *report.Result) (err error) {
	trace.WithRegion(ctx, "write report", func() { err = writeResult(stdout, format, output, res) })
	return err
}

func writeResult(stdout io.Writer, format, output string, res *report.Result) error {
	enc, ok := formats[format]
	if !ok {
		return checkFormat(format, formatNames())
	}
	return withOutput(stdout, output, "--output", func(w io.Writer) error {
		color := false
		if f, ok := w.(*os.File); ok {
			color = report.ColorEnabled(f)
		}
		if err := enc(w, res, color); err != nil {
			return fmt.Errorf("write %s report: %w", format, err)
		}
		return nil
	})
}
