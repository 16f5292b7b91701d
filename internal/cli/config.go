package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/config/dockerfile"
	"github.com/bulkhead-sec/bulkhead/config/kubernetes"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// configChecker checks one file of its kind, handing its findings to emit
// as it goes (a manifest stream of many documents is checked one document
// at a time, and nothing of a document is held after it).
type configChecker func(name string, data []byte, emit func([]finding.Finding)) error

// configKind is one kind of configuration file `bulkhead config` checks.
// A kind plugs in with one line in its own file, no edit here:
//
//	var _ = registerConfigKind(configKind{Name: "kubernetes", Detect: ..., Setup: ...})
type configKind struct {
	Name string
	// Detect says whether a file is of this kind from its name and content
	// ("-" is stdin).
	Detect func(name string, data []byte) bool
	// Setup adds the kind's flags to the command and returns the function
	// that builds the checker once flags are parsed; pol is the --policy
	// CEL file (nil when none).
	Setup func(fs *pflag.FlagSet) func(pol *cel.Policy) (configChecker, error)
}

// configKinds are the registered kinds, by name.
var configKinds = map[string]configKind{}

func registerConfigKind(k configKind) bool {
	if _, dup := configKinds[k.Name]; dup {
		panic("config kind registered twice: " + k.Name)
	}
	configKinds[k.Name] = k
	return true
}

var _ = registerConfigKind(configKind{Name: "dockerfile", Detect: isDockerfileName, Setup: setupDockerfileKind})

// isDockerfileName recognises Dockerfile, Dockerfile.prod, app.Dockerfile,
// Containerfile and their lower-case spellings.
func isDockerfileName(name string, _ []byte) bool {
	base := strings.ToLower(filepath.Base(name))
	for _, n := range []string{"dockerfile", "containerfile"} {
		if base == n || strings.HasPrefix(base, n+".") || strings.HasSuffix(base, "."+n) {
			// Dockerfile.dockerignore is the ignore file, not a Dockerfile.
			return !strings.HasSuffix(base, ".dockerignore")
		}
	}
	return false
}

func setupDockerfileKind(fl *pflag.FlagSet) func(pol *cel.Policy) (configChecker, error) {
	var digest string
	fl.StringVar(&digest, "digest-severity", "", "severity of BH-DF-008 (FROM without a digest): CRITICAL, HIGH, MEDIUM, LOW or OFF (default LOW)")
	return func(pol *cel.Policy) (configChecker, error) {
		opts := dockerfile.Options{}
		switch strings.ToUpper(digest) {
		case "":
		case "OFF", "NONE":
			opts.Disable = append(opts.Disable, "BH-DF-008")
		default:
			sev, err := finding.ParseSeverity(digest)
			if err != nil {
				return nil, fmt.Errorf("--digest-severity: %w", err)
			}
			opts.Severity = map[string]finding.Severity{"BH-DF-008": sev}
		}
		checks := pol.ForTarget(cel.Dockerfile)
		return func(name string, data []byte, emit func([]finding.Finding)) error {
			f, err := dockerfile.Parse(name, bytes.NewReader(data))
			if err != nil {
				return err
			}
			if name != "-" {
				f.SetDockerignore(dockerfile.DockerignoreBeside(name))
			}
			emit(dockerfile.Lint(f, opts))
			if len(checks) > 0 {
				more, err := celDockerfile(f, checks)
				emit(more)
				if err != nil {
					return err
				}
			}
			return nil
		}, nil
	}
}

// celDockerfile runs the policy's dockerfile checks: a place with a line
// reports the instruction there, one without reports the final FROM.
func celDockerfile(f *dockerfile.File, checks []*cel.Check) ([]finding.Finding, error) {
	vars := map[string]any{"file": f.Map()}
	byLine := map[int]*dockerfile.Instruction{}
	for si := range f.Stages {
		st := &f.Stages[si]
		byLine[st.From.StartLine] = &st.From
		for ii := range st.Instructions {
			byLine[st.Instructions[ii].StartLine] = &st.Instructions[ii]
		}
	}
	for i := range f.MetaArgs {
		byLine[f.MetaArgs[i].StartLine] = &f.MetaArgs[i]
	}
	var out []finding.Finding
	for _, c := range checks {
		places, err := c.Eval(vars)
		if err != nil {
			return out, fmt.Errorf("%s: %w", f.Path, err)
		}
		for _, p := range places {
			in := byLine[p.Line]
			if in == nil {
				if final := f.Final(); final != nil {
					in = &final.From
				} else {
					in = &dockerfile.Instruction{StartLine: p.Line, EndLine: p.Line}
				}
			}
			out = append(out, dockerfile.NewFinding(f, in, c.ID, c.SeverityLevel(), c.Title, c.Message, c.Fix, c.Link))
		}
	}
	return out, nil
}

// maxConfigFile bounds what is read of one configuration file.
const maxConfigFile = 16 << 20

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
and the other registered kinds (` + strings.Join(configKindNames(), ", ") + `).

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
	fl.StringVar(&f.kind, "type", "", "treat every input as this kind: "+strings.Join(configKindNames(), ", ")+" (default: detect)")
	fl.StringSliceVar(&f.scanners, "scanners", []string{"misconfig", "secret"}, "misconfig (the kind's checks) and/or secret (secret rules over each file)")
	fl.StringVar(&f.secretConfig, "secret-config", "", "secret scanning config: allow-list of paths, rules, values (YAML)")
	fl.BoolVar(&f.skipUnreadable, "skip-unreadable", false, "warn about a file that cannot be read or checked in full (unreadable, not a regular file, over 16 MiB, over --max-objects, not parseable to its end) and exit 0; without it such a file fails the run with exit code 1")
	builders := map[string]func(*cel.Policy) (configChecker, error){}
	for _, name := range configKindNames() {
		builders[name] = configKinds[name].Setup(fl)
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		return runConfig(cmd, &f, builders, args, stdout, stderr)
	}
	return cmd
}

func configKindNames() []string {
	names := make([]string, 0, len(configKinds))
	for n := range configKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

type configFile struct {
	name, kind string
}

func runConfig(cmd *cobra.Command, f *configFlags, builders map[string]func(*cel.Policy) (configChecker, error), args []string, stdout, stderr io.Writer) error {
	if err := f.check(); err != nil {
		return err
	}
	if f.kind != "" {
		if _, ok := configKinds[f.kind]; !ok {
			return fmt.Errorf("--type %q: use one of %s", f.kind, strings.Join(configKindNames(), ", "))
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
	var polNotes []string
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
	checkers := map[string]configChecker{}
	for name, b := range builders {
		c, err := b(pol)
		if err != nil {
			return err
		}
		checkers[name] = c
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
	res.Warnings = append(res.Warnings, polNotes...)
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
	var unread []string
	failed := func(err error) {
		res.Warnings = append(res.Warnings, err.Error())
		unread = append(unread, err.Error())
	}
	checked := 0
	check := func(name string, data []byte, kind string) {
		checked++
		// secret findings on a line a misconfiguration already reports as
		// a secret are dropped (BH-DF-009 on an ENV line, say)
		covered := map[string]bool{}
		if misconfig && kind != "" {
			err := checkers[kind](name, data, func(fs []finding.Finding) {
				for _, h := range fs {
					if h.Location != nil && (h.ID == "BH-DF-009" || strings.Contains(strings.ToLower(h.Title), "secret")) {
						covered[coveredKey(h)] = true
					}
				}
				keep(fs)
			})
			// A file that could not be parsed to its end was not checked in
			// full: what follows the fault could hide anything, so it fails
			// the run like an unreadable file does.
			if errors.Is(err, kubernetes.ErrTooManyObjects) {
				failed(err)
			} else if err != nil {
				if !strings.HasPrefix(err.Error(), name+":") {
					err = fmt.Errorf("%s: %w", name, err)
				}
				failed(err)
			}
		}
		if secrets && !secret.IsBinary(data) && !sc.AllowedPath(name) {
			got, err := sc.Scan(name, bytes.NewReader(data))
			if err != nil {
				res.Warnings = append(res.Warnings, err.Error())
			}
			kept := got[:0]
			for _, a := range got {
				if a.Location == nil || !covered[coveredKey(a)] {
					kept = append(kept, a)
				}
			}
			keep(kept)
		}
	}
	for _, arg := range args {
		if arg == "-" {
			data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxConfigFile+1))
			if err != nil {
				return fmt.Errorf("read standard input: %w", err)
			}
			if len(data) > maxConfigFile {
				return fmt.Errorf("standard input is over %d bytes; split it into files of at most %d MiB", maxConfigFile, maxConfigFile>>20)
			}
			kind := detectKind("-", data, f.kind)
			if kind == "" && !secrets {
				return fmt.Errorf("cannot tell what standard input is; give --type %s", strings.Join(configKindNames(), "|"))
			}
			check("-", data, kind)
			continue
		}
		files, err := configFiles(arg, f.kind)
		if err != nil {
			return err
		}
		for _, cf := range files {
			data, err := readConfigFile(cf.name)
			if err != nil {
				failed(err)
				continue
			}
			kind := cf.kind
			if kind == "" {
				kind = detectKind(cf.name, data, f.kind)
			}
			// Outside an explicit file argument, only files of a known kind
			// are checked, for secrets too.
			if kind == "" && cf.kind == "" && arg != cf.name {
				continue
			}
			if kind == "" && misconfig {
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: not a Dockerfile or manifest by its name and content; give --type %s to check it (secrets only)", cf.name, strings.Join(configKindNames(), "|")))
			}
			check(cf.name, data, kind)
		}
	}
	if checked == 0 {
		res.Warnings = append(res.Warnings, "no Dockerfile or manifest found in "+strings.Join(args, " "))
	}
	res.Warnings = append(res.Warnings, ign.Apply(nil, now)...)
	store.Sort()
	if err := writeResult(stdout, f.format, f.output, res); err != nil {
		return err
	}
	if f.format != "table" {
		for _, w := range res.Warnings {
			fmt.Fprintln(stderr, "warning:", w)
		}
	}
	if len(unread) > 0 && !f.skipUnreadable {
		return fmt.Errorf("%w: %d could not be read or checked in full (%s); fix or remove them, or give --skip-unreadable to report them as warnings", errConfigUnread, len(unread), strings.Join(unread, "; "))
	}
	if n := store.Active(); f.exitCode != 0 && n > 0 {
		return &exitError{code: int(f.exitCode), err: fmt.Errorf("%d findings", n)}
	}
	return nil
}

// coveredKey is where a finding is, for dropping duplicate secret findings.
func coveredKey(f finding.Finding) string {
	return fmt.Sprintf("%s:%d", f.Location.Path, f.Location.StartLine)
}

func detectKind(name string, data []byte, forced string) string {
	if forced != "" {
		return forced
	}
	for _, n := range configKindNames() {
		if k := configKinds[n]; k.Detect != nil && k.Detect(name, data) {
			return n
		}
	}
	return ""
}

// configFiles lists the files under a path argument; a file named directly
// is always checked (its kind detected later, or forced by --type).
func configFiles(arg, forced string) ([]configFile, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !st.IsDir() {
		return []configFile{{name: arg, kind: forced}}, nil
	}
	var out []configFile
	err = filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %s: %w", p, err)
		}
		if d.IsDir() {
			if d.Name() == ".git" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			out = append(out, configFile{name: p})
		}
		return nil
	})
	return out, err
}

func readConfigFile(name string) ([]byte, error) {
	// a FIFO or device named on the command line would block or never end
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("config: %s is not a regular file (%s); skipped", name, st.Mode().Type())
	}
	fh, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", name, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("config: %s is over %d bytes (%d MiB); skipped: split it into smaller files", name, maxConfigFile, maxConfigFile>>20)
	}
	return data, nil
}
