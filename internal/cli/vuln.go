package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
	"github.com/bulkhead-sec/bulkhead/vulndb"
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
	scanners      []string
	severity      []string
	ignoreUnfixed bool
	exitCode      int
	ignoreFile    string
	vex           []string
	dbPath        string
	dbMaxAge      time.Duration
}

func (f *findingFlags) register(cmd *cobra.Command, defaultScanners []string) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.scanners, "scanners", defaultScanners, "scanners to run: "+scannerNames()+" (none: inventory only)")
	fl.StringSliceVar(&f.severity, "severity", nil, "report only these severities (CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN)")
	fl.BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "drop vulnerabilities that have no fixed version yet")
	fl.IntVar(&f.exitCode, "exit-code", 0, "exit with this code when findings remain after filters, ignores and VEX")
	fl.StringVar(&f.ignoreFile, "ignorefile", ".bulkheadignore", "ignore file (ids, optional package, expiry and reason); a missing default file is fine")
	fl.StringArrayVar(&f.vex, "vex", nil, "OpenVEX document whose not_affected/fixed statements suppress findings (repeatable)")
	fl.StringVar(&f.dbPath, "db", "", "vulnerability database (default: "+vulndb.DefaultPath()+", built from the bundled snapshot on first use)")
	f.dbMaxAge = vulndb.DefaultMaxAge
	fl.Var((*ageFlag)(&f.dbMaxAge), "db-max-age", "warn when the vulnerability database is older than this, e.g. 7d or 36h (0: never)")
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
	o := &pipeline.MatchOptions{DBPath: f.dbPath, MaxAge: f.dbMaxAge, IgnoreUnfixed: f.ignoreUnfixed,
		IgnoreFile: f.ignoreFile, IgnoreFileOptional: f.ignoreFile == ".bulkheadignore", VEX: f.vex}
	for _, s := range f.severity {
		sev, err := finding.ParseSeverity(s)
		if err != nil {
			return nil, fmt.Errorf("--severity: %w", err)
		}
		o.Severities = append(o.Severities, sev)
	}
	return o, nil
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
		return &exitError{code: f.exitCode, err: fmt.Errorf("%d findings (run with --format table to see them)", len(match.Active(res.Findings)))}
	}
	return nil
}

// writeResult writes a result in the chosen format to stdout or --output.
func writeResult(stdout io.Writer, format, output string, res *report.Result) error {
	enc, ok := formats[format]
	if !ok {
		return fmt.Errorf("unknown --format %q; use one of %s", format, strings.Join(formatNames(), ", "))
	}
	w := stdout
	if output != "" {
		out, err := os.Create(output)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		defer out.Close()
		w = out
	}
	color := false
	if f, ok := w.(*os.File); ok {
		color = report.ColorEnabled(f)
	}
	if err := enc(w, res, color); err != nil {
		return fmt.Errorf("write %s report: %w", format, err)
	}
	return nil
}

// warnOutsideTable prints a result's warnings on stderr for the formats
// that do not show them themselves (all but the table), unless quiet.
func warnOutsideTable(stderr io.Writer, format string, quiet bool, res *report.Result) {
	if quiet || format == "table" {
		return
	}
	for _, warn := range append(append([]string{}, res.Inventory.Warnings...), res.Warnings...) {
		fmt.Fprintln(stderr, "warning:", warn)
	}
}
