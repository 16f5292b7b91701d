package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
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

// openDB opens the vulnerability database, building it from the bundled
// snapshot when none exists yet.
func openDB(path string, warn func(string)) (*vulndb.DB, error) {
	db, built, err := vulndb.OpenForScan(path)
	if err != nil {
		return nil, err
	}
	if built {
		warn(fmt.Sprintf("no vulnerability database at %s: built it from the snapshot bundled in this binary", db.Path()))
	}
	return db, nil
}

// dbInfo describes the data a scan used: the ecosystems it looked up
// (vulndb.Tracked.Used; none: the whole database), dated by the oldest of
// them. Data older than maxAge, or undated, is a warning, never silent.
func dbInfo(db *vulndb.DB, used []string, maxAge time.Duration, warn func(string)) (*report.DBInfo, error) {
	st, err := db.Status()
	if err != nil {
		return nil, err
	}
	age, err := db.DataAge(used)
	if err != nil {
		return nil, err
	}
	if err := age.CheckAge(maxAge); err != nil {
		var stale *vulndb.StaleError
		if !errors.As(err, &stale) {
			return nil, err
		}
		warn(err.Error())
	}
	info := &report.DBInfo{Source: age.Oldest.Source, UpdatedAt: age.Oldest.AsOf, Age: ageText(age.Oldest), Records: st.Records, OldestEcosystem: age.Oldest.Ecosystem}
	for _, e := range age.Ecosystems {
		info.Ecosystems = append(info.Ecosystems, report.DBEcosystem{Name: e.Ecosystem, UpdatedAt: e.AsOf, Kind: e.Kind, Source: e.Source})
	}
	return info, nil
}

// ageText is a freshness's age in words ("unknown" when undated).
func ageText(f vulndb.Freshness) string {
	if !f.Known() {
		return "unknown"
	}
	return humanDuration(f.Age())
}

// findings runs the inventory scanners (vuln) and adds the findings the
// walk's scanners already made.
func (f *findingFlags) findings(ctx context.Context, inv *inventory.Inventory, scanners []string, walked []finding.Finding) (*report.Result, error) {
	res := &report.Result{Inventory: inv, Scanners: scanners, Findings: walked}
	warn := func(s string) { res.Warnings = append(res.Warnings, s) }
	for _, s := range scanners {
		if s != scannerVuln {
			continue
		}
		db, err := openDB(f.dbPath, warn)
		if err != nil {
			return nil, err
		}
		defer db.Close()
		opts := match.Options{IgnoreUnfixed: f.ignoreUnfixed, Warn: warn}
		for _, s := range f.severity {
			sev, err := finding.ParseSeverity(s)
			if err != nil {
				return nil, fmt.Errorf("--severity: %w", err)
			}
			opts.Severities = append(opts.Severities, sev)
		}
		ign, err := match.LoadIgnoreFile(f.ignoreFile, f.ignoreFile == ".bulkheadignore")
		if err != nil {
			return nil, err
		}
		opts.Ignore = ign
		for _, p := range f.vex {
			doc, err := match.LoadVEX(p)
			if err != nil {
				return nil, err
			}
			opts.VEX = append(opts.VEX, doc)
		}
		tr := db.Track()
		fs, err := match.Match(ctx, inv, tr, opts)
		if err != nil {
			return nil, err
		}
		res.Findings = append(res.Findings, fs...)
		// The age of the data this scan used, not the database's newest.
		if res.DB, err = dbInfo(db, tr.Used(), f.dbMaxAge, warn); err != nil {
			return nil, err
		}
	}
	match.Sort(res.Findings)
	return res, nil
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
