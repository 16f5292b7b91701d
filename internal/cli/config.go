package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config"
	_ "github.com/bulkhead-sec/bulkhead/config/dockerfile" // registers the dockerfile kind
	_ "github.com/bulkhead-sec/bulkhead/config/kubernetes" // registers the kubernetes kind
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// maxConfigFile bounds what is read of one configuration file.
const maxConfigFile = config.MaxFile

type configFlags struct {
	reportFlags
	ignoreFile, policy, kind, secretConfig string
	severity, scanners                     []string
	exitCode                               exitCode
	skipUnreadable                         bool
}

// errConfigUnread is returned (exit code 1, after the report is written)
// when a file could not be read or checked in full and --skip-unreadable
// was not given.
var errConfigUnread = errors.New("not every file was checked")

func newConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	var f configFlags
	cmd := &cobra.Command{
		Use:   "config [flags] PATH...",
		Short: "Check Dockerfiles and Kubernetes manifests for misconfigurations and secrets",
		Long: `Check configuration files: Dockerfiles (Dockerfile, *.Dockerfile, Containerfile)
and the other registered kinds (` + strings.Join(config.Names(), ", ") + `).

PATH is a file, a directory (searched recursively; .git is skipped) or "-"
for standard input (give --type unless the content says what it is):

  bulkhead config .
  bulkhead config --format sarif -o out.sarif deploy/ Dockerfile
  helm template chart | bulkhead config -
  bulkhead config --type dockerfile - < Dockerfile`,
		Args: cobra.MinimumNArgs(1),
	}
	fl := cmd.Flags()
	f.reportFlags.add(cmd, "table", "table", "json", "sarif")
	addSeverity(fl, &f.severity)
	addExitCode(cmd, &f.exitCode, 0, "findings remain after filters and ignores (default 0: findings do not fail the run)")
	addIgnoreFile(fl, &f.ignoreFile)
	fl.StringVar(&f.policy, "policy", "", "YAML file of custom CEL checks; those of target dockerfile and kubernetes run here (imageconfig ones: bulkhead image --policy)")
	fl.StringVar(&f.kind, "type", "", "treat every input as this kind: "+strings.Join(config.Names(), ", ")+" (default: detect)")
	fl.StringSliceVar(&f.scanners, "scanners", []string{"misconfig", "secret"}, "misconfig (the kind's checks) and/or secret (secret rules over each file)")
	fl.StringVar(&f.secretConfig, "secret-config", "", "secret scanning config: allow-list of paths, rules, values (YAML)")
	fl.BoolVar(&f.skipUnreadable, "skip-unreadable", false, "warn about a file that cannot be read or checked in full (unreadable, not a regular file, over 16 MiB, over --max-objects, not parseable to its end) and exit 0; without it such a file fails the run with exit code 1")
	builders := map[string]func(*cel.Policy) (config.Checker, error){}
	for _, name := range config.Names() {
		k, _ := config.Lookup(name)
		builders[name] = k.Setup(fl)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runConfig(cmd, &f, builders, args, stdout, stderr)
	}
	return cmd
}

func runConfig(cmd *cobra.Command, f *configFlags, builders map[string]func(*cel.Policy) (config.Checker, error), args []string, stdout, stderr io.Writer) error {
	if err := f.check(); err != nil {
		return err
	}
	if f.kind != "" {
		if _, ok := config.Lookup(f.kind); !ok {
			return fmt.Errorf("--type %q: use one of %s", f.kind, strings.Join(config.Names(), ", "))
		}
	}
	misconfig, secrets := false, false
	for _, s := range f.scanners {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "misconfig", "config":
			misconfig = true
		case "secret":
			secrets = true
		case "", "none":
		default:
			return fmt.Errorf("--scanners %q: use misconfig, secret", s)
		}
	}
	var sevs map[finding.Severity]bool
	parsed, err := parseSeverities(f.severity)
	if err != nil {
		return err
	}
	for _, sev := range parsed {
		if sevs == nil {
			sevs = map[finding.Severity]bool{}
		}
		sevs[sev] = true
	}
	var pol *cel.Policy
	var polNotes []diag.Diagnostic
	if f.policy != "" {
		if !misconfig {
			return fmt.Errorf("--policy %s: its checks run with the misconfig scanner; add misconfig to --scanners", f.policy)
		}
		p, notes, err := loadCELPolicy(f.policy, "bulkhead config", "Dockerfiles and Kubernetes manifests", cel.Dockerfile, cel.Kubernetes)
		if err != nil {
			return err
		}
		pol, polNotes = p, notes
	}
	var checkers map[string]config.Checker
	if misconfig {
		checkers = map[string]config.Checker{}
	}
	for name, b := range builders {
		c, err := b(pol)
		if err != nil {
			return err
		}
		if misconfig {
			checkers[name] = c
		}
	}
	sc := secret.Default()
	if f.secretConfig != "" {
		cfg, err := secret.LoadConfig(f.secretConfig)
		if err != nil {
			return err
		}
		if sc, err = secret.New(cfg); err != nil {
			return err
		}
	}
	ign, err := match.LoadIgnoreFile(f.ignoreFile, f.ignoreFile == defaultIgnoreFile)
	if err != nil {
		return err
	}

	res := &report.Result{Inventory: &inventory.Inventory{Target: inventory.Target{Name: strings.Join(args, " "), Source: "config"}}}
	if misconfig {
		res.Scanners = append(res.Scanners, "misconfig")
	}
	if secrets {
		res.Scanners = append(res.Scanners, "secret")
	}
	res.Diagnose(polNotes...)
	// Findings go into a compact store as each file (each document of a
	// manifest stream) is checked: a stream of 100,000 pods has over a
	// million findings.
	store := report.NewStore()
	store.DropDescriptions = f.format == "table" || f.format == "sarif"
	res.Store = store
	now := time.Now()
	keep := func(fs []finding.Finding) {
		if sevs != nil {
			kept := fs[:0]
			for _, fd := range fs {
				if sevs[fd.Severity] {
					kept = append(kept, fd)
				}
			}
			fs = kept
		}
		ign.Apply(fs, now) // its warnings (expired entries) are taken once below
		store.AddAll(fs)
	}
	opts := config.Options{Kind: f.kind, Checkers: checkers, Stdin: cmd.InOrStdin()}
	if secrets {
		opts.Secrets = sc
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	sum, err := config.Scan(ctx, args, opts, keep)
	if err != nil {
		return err
	}
	res.Diagnose(sum.Diagnostics...)
	unread, checked := sum.Unread, sum.Checked
	if checked == 0 {
		res.Diagnose(diag.Warnf(diag.ConfigNothing, "no Dockerfile or manifest found in %s", strings.Join(args, " ")))
	}
	res.Diagnose(ign.Suppress(nil, now)...)
	store.Sort()
	if err := writeResult(stdout, f.format, f.output, res); err != nil {
		return err
	}
	if f.format != "table" {
		printDiagnostics(stderr, res.AllDiagnostics()...)
	}
	if len(unread) > 0 && !f.skipUnreadable {
		return fmt.Errorf("%w: %d could not be read or checked in full (%s); fix or remove them, or give --skip-unreadable to report them as warnings", errConfigUnread, len(unread), strings.Join(unread, "; "))
	}
	if n := store.Active(); f.exitCode != 0 && n > 0 {
		return &exitError{code: int(f.exitCode), err: fmt.Errorf("%d findings", n)}
	}
	return nil
}
