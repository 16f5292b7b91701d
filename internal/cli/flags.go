package cli

// Flag groups. Every flag that more than one command takes is declared
// here, once: one spelling, one default, one help text. A command adds the
// groups it takes (add) and reads them back through their methods, which
// check the values. docs/flags.md is generated from the result
// (TestFlagsDoc fails when it is stale).

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/image/crypt"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// The help of the flags declared outside a group.
const (
	helpInsecure = "allow plain HTTP and unverified TLS for registries"
	helpQuiet    = "no progress display"
	helpCacheDir = "keep scans by digest in this directory between runs (survives restarts)"
)

// reportFlags are --format/-f and --output/-o: which report, and where.
type reportFlags struct {
	format string
	output string
	names  []string
}

// add declares --format (names are the formats the command writes, def
// the default) and --output.
func (r *reportFlags) add(cmd *cobra.Command, def string, names ...string) {
	r.names = names
	fl := cmd.Flags()
	fl.StringVarP(&r.format, "format", "f", def, "output format: "+strings.Join(names, ", "))
	fl.StringVarP(&r.output, "output", "o", "", "write the report to this file instead of standard output (- for standard output)")
}

// check says whether --format names a format of the command.
func (r *reportFlags) check() error {
	return checkFormat(r.format, r.names)
}

func checkFormat(format string, names []string) error {
	if !slices.Contains(names, format) {
		return fmt.Errorf("unknown --format %q; use one of %s", format, strings.Join(names, ", "))
	}
	return nil
}

// write runs fn on standard output or the --output file.
func (r *reportFlags) write(stdout io.Writer, fn func(w io.Writer) error) error {
	return withOutput(stdout, r.output, "--output", fn)
}

// openOutput opens the file a report goes to: standard output for "" and
// "-", else the file, created with its parent directories. flag names the
// flag in errors. close closes the file (nothing for standard output).
func openOutput(stdout io.Writer, path, flag string) (w io.Writer, close func() error, err error) {
	if path == "" || path == "-" {
		return stdout, func() error { return nil }, nil
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("%s %s: %w", flag, path, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", flag, err)
	}
	return f, f.Close, nil
}

// withOutput runs fn on the output openOutput opens and closes it; the
// first error wins, so a report that could not be flushed is an error.
func withOutput(stdout io.Writer, path, flag string, fn func(w io.Writer) error) error {
	w, closeOut, err := openOutput(stdout, path, flag)
	if err != nil {
		return err
	}
	err = fn(w)
	if cerr := closeOut(); err == nil && cerr != nil {
		err = fmt.Errorf("%s %s: %w", flag, path, cerr)
	}
	return err
}

// writeJSON is how every command writes JSON: indented by two spaces, no
// HTML escaping, one trailing newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON report: %w", err)
	}
	return nil
}

// registryFlags reach images in registries.
type registryFlags struct {
	platform string
	insecure bool
}

func (f *registryFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.platform, "platform", "", "platform to pick from a multi-platform image, os/arch[/variant] (default: the host's)")
	addInsecure(cmd, &f.insecure)
}

// addInsecure declares --insecure, and each old spelling as a hidden alias
// that says it is deprecated.
func addInsecure(cmd *cobra.Command, p *bool, oldNames ...string) {
	cmd.Flags().BoolVar(p, "insecure", false, helpInsecure)
	for _, old := range oldNames {
		addDeprecatedBool(cmd, p, old, "--insecure")
	}
}

// deprecatedFlag is a hidden old spelling of a flag: it sets what the new
// one sets and says so on standard error (not through cobra, which would
// print on standard output, where reports go).
type deprecatedFlag struct {
	cmd      *cobra.Command
	old, now string
	value    pflag.Value
	isBool   bool
}

func (d *deprecatedFlag) String() string { return d.value.String() }
func (d *deprecatedFlag) Type() string   { return d.value.Type() }
func (d *deprecatedFlag) IsBoolFlag() bool {
	return d.isBool
}
func (d *deprecatedFlag) Set(s string) error {
	warnf(d.cmd.ErrOrStderr(), diag.CLIDeprecatedFlag, "--%s is deprecated and will be removed; use %s", d.old, d.now)
	return d.value.Set(s)
}

func addDeprecated(cmd *cobra.Command, old, now string, value pflag.Value, isBool bool) {
	f := cmd.Flags().VarPF(&deprecatedFlag{cmd: cmd, old: old, now: now, value: value, isBool: isBool}, old, "", "deprecated: use "+now)
	if isBool {
		f.NoOptDefVal = "true"
	}
	f.Hidden = true
}

func addDeprecatedBool(cmd *cobra.Command, p *bool, old, now string) {
	addDeprecated(cmd, old, now, (*boolValue)(p), true)
}

// boolValue is a bool flag value (pflag's own is unexported).
type boolValue bool

func (b *boolValue) String() string { return strconv.FormatBool(bool(*b)) }
func (b *boolValue) Type() string   { return "bool" }
func (b *boolValue) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b = boolValue(v)
	return nil
}

// imageFlags are how the commands that scan images reach and walk them.
type imageFlags struct {
	registryFlags
	tempDir string
	quiet   bool
	// decryptionKeys decrypt encrypted layers (--decryption-key).
	decryptionKeys []string
}

// add declares the registry flags and --decryption-key (withRegistry:
// commands that take images, not directories) and --temp-dir, --quiet.
func (f *imageFlags) add(cmd *cobra.Command, withRegistry bool) {
	fl := cmd.Flags()
	if withRegistry {
		f.registryFlags.add(cmd)
		fl.StringArrayVar(&f.decryptionKeys, "decryption-key", nil, "private key that decrypts the image's encrypted layers (OCI image encryption, as skopeo and bulkhead encrypt write it): FILE, FILE:pass=PASSWORD, FILE:file=PASSWORD-FILE or FILE:env=VARIABLE; repeatable (PKCS#7: give the recipient's certificate too). Without it an image with encrypted layers is an error")
	}
	addTempDir(fl, &f.tempDir)
	fl.BoolVarP(&f.quiet, "quiet", "q", false, helpQuiet)
}

// addDBRepository is where the vulnerability database is updated from
// (db update, and the server's scheduled updates).
func addDBRepository(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "db-repository", vulndb.DefaultBaseURL, "base URL of the OSV bucket or a mirror of its layout")
}

// addTempDir declares --temp-dir.
func addTempDir(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "temp-dir", "", "where scans keep their temporary files (default $TMPDIR)")
}

// decrypter loads the --decryption-key keys (nil when none were given).
func (f *imageFlags) decrypter() (image.LayerDecrypter, error) {
	if len(f.decryptionKeys) == 0 {
		return nil, nil
	}
	keys, err := parsePrivateKeys("--decryption-key", f.decryptionKeys)
	if err != nil {
		return nil, err
	}
	d, err := crypt.NewDecrypter(keys)
	if err != nil {
		return nil, fmt.Errorf("--decryption-key: %w", err)
	}
	return d, nil
}

func parsePrivateKeys(flag string, args []string) ([]crypt.PrivateKey, error) {
	var keys []crypt.PrivateKey
	for _, a := range args {
		k, err := crypt.ParsePrivateKey(a)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// dbFlags choose the vulnerability database.
type dbFlags struct {
	path   string
	maxAge time.Duration
}

const helpDB = "vulnerability database file (default %s, built from the bundled snapshot on first use; $BULKHEAD_CACHE_DIR moves the cache)"

// add declares --db and, withAge, --db-max-age on fl (a command's flags,
// or the persistent flags of a command group).
func (f *dbFlags) add(fl *pflag.FlagSet, withAge bool) {
	fl.StringVar(&f.path, "db", "", fmt.Sprintf(helpDB, vulndb.DefaultPath()))
	if withAge {
		f.addMaxAge(fl)
	}
}

func (f *dbFlags) addMaxAge(fl *pflag.FlagSet) {
	f.maxAge = vulndb.DefaultMaxAge
	fl.Var((*ageFlag)(&f.maxAge), "db-max-age", "warn when the vulnerability data is older than this, e.g. 7d or 36h (0: never)")
}

// dbPath is --db or the default path.
func (f *dbFlags) dbPath() string {
	if f.path != "" {
		return f.path
	}
	return vulndb.DefaultPath()
}

// matchFlags choose the vulnerability database and what counts.
type matchFlags struct {
	dbFlags
	ignoreUnfixed bool
	ignoreFile    string
}

const defaultIgnoreFile = ".bulkheadignore"

func (f *matchFlags) add(cmd *cobra.Command) {
	f.dbFlags.add(cmd.Flags(), true)
	fl := cmd.Flags()
	fl.BoolVar(&f.ignoreUnfixed, "ignore-unfixed", false, "drop vulnerabilities that have no fixed version yet")
	addIgnoreFile(fl, &f.ignoreFile)
}

func addIgnoreFile(fl *pflag.FlagSet, p *string) {
	fl.StringVar(p, "ignorefile", defaultIgnoreFile, "ignore file whose entries (ids, optional package, expiry and reason) suppress findings; a missing default file is fine")
}

func addSeverity(fl *pflag.FlagSet, p *[]string) {
	fl.StringSliceVar(p, "severity", nil, "report only these severities (CRITICAL,HIGH,MEDIUM,LOW,UNKNOWN)")
}

// parseSeverities checks --severity.
func parseSeverities(in []string) ([]finding.Severity, error) {
	var out []finding.Severity
	for _, s := range in {
		sev, err := finding.ParseSeverity(s)
		if err != nil {
			return nil, fmt.Errorf("--severity: %w", err)
		}
		out = append(out, sev)
	}
	return out, nil
}

// options are the pipeline's match options of the flags.
func (f *matchFlags) options() pipeline.MatchOptions {
	return pipeline.MatchOptions{DBPath: f.path, MaxAge: f.maxAge, IgnoreUnfixed: f.ignoreUnfixed,
		IgnoreFile: f.ignoreFile, IgnoreFileOptional: f.ignoreFile == defaultIgnoreFile}
}

// vulnFilterFlags are the match flags plus what filters findings.
type vulnFilterFlags struct {
	matchFlags
	severity []string
	vex      []string
}

func (f *vulnFilterFlags) add(cmd *cobra.Command) {
	f.matchFlags.add(cmd)
	fl := cmd.Flags()
	addSeverity(fl, &f.severity)
	fl.StringArrayVar(&f.vex, "vex", nil, "OpenVEX document whose not_affected/fixed statements suppress findings (repeatable)")
}

// exitCode is --exit-code: the status a failed check exits with.
type exitCode int

func (e *exitCode) String() string { return strconv.Itoa(int(*e)) }
func (e *exitCode) Type() string   { return "int" }
func (e *exitCode) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 255 {
		return fmt.Errorf("%q is not an exit status (0 to 255)", s)
	}
	*e = exitCode(n)
	return nil
}

// addExitCode declares --exit-code. The commands whose job is a check
// (gate, compare --fail-on-new, sbom validate) fail with 1 by default; the
// scanning commands report and fail only when --exit-code is given
// (README, "Exit codes").
func addExitCode(cmd *cobra.Command, p *exitCode, def int, when string) {
	*p = exitCode(def)
	cmd.Flags().Var(p, "exit-code", "exit status when "+when)
}

// databaseFlag is --database: bulkhead server's store.
type databaseFlag struct {
	dsn string
}

func (f *databaseFlag) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.dsn, "database", "", "bulkhead server's database: postgres://USER@HOST/DB, or a SQLite file (default bulkhead-server.db in the cache directory, $BULKHEAD_CACHE_DIR)")
}

// source is --database ("" : the default SQLite file).
func (f *databaseFlag) source() string { return f.dsn }

// serverClientFlags make a command a client of bulkhead server: --server
// and --token (default $BULKHEAD_TOKEN, never shown in help).
type serverClientFlags struct {
	url   string
	token string
}

// add declares --server and --token, once for every command that talks to
// bulkhead server.
func (f *serverClientFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.url, "server", "", "bulkhead server at this URL (https://HOST:PORT). image and sbom: match there instead of a local vulnerability database (scan locally, upload the inventory, report the server's findings); runtime: keep learned profiles and image file lists there (--profiles and --image-index then hold local copies, used when the server cannot be reached)")
	fl.StringVar(&f.token, "token", "", "bulkhead server API token (default $BULKHEAD_TOKEN)")
}

// tokenValue is --token or $BULKHEAD_TOKEN.
func (f *serverClientFlags) tokenValue() string {
	if f.token != "" {
		return f.token
	}
	return os.Getenv("BULKHEAD_TOKEN")
}

// addTLSFiles declares --tls-cert and --tls-key, the serving certificate
// of the commands that serve HTTPS (both re-read the files when they
// change).
func addTLSFiles(fl *pflag.FlagSet, cert, key *string) {
	fl.StringVar(cert, "tls-cert", "", "serving certificate (PEM; re-read when the file changes)")
	fl.StringVar(key, "tls-key", "", "serving key (PEM; re-read when the file changes)")
}
