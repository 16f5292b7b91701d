// Package config runs the checks of configuration files: each kind of file
// (config/dockerfile, config/kubernetes) registers itself here with how to
// tell a file of its kind and how to check one, and Scan walks the paths it
// is given, detects each file's kind and runs its checker, streaming the
// findings.
package config

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/pflag"

	"github.com/bulkhead-sec/bulkhead/cel"
	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// Checker checks one file of its kind, handing its findings to emit as it
// goes (a manifest stream of many documents is checked one document at a
// time, and nothing of a document is held after it). An error says the
// file was not checked in full.
type Checker func(name string, data []byte, emit func([]finding.Finding)) error

// Kind is one kind of configuration file. A kind registers itself from its
// own package, with no edit here:
//
//	func init() { config.Register(config.Kind{Name: "kubernetes", Detect: ..., Setup: ...}) }
type Kind struct {
	Name string
	// Detect says whether a file is of this kind from its name and content
	// ("-" is stdin).
	Detect func(name string, data []byte) bool
	// Setup adds the kind's flags to a flag set and returns the function
	// that builds the checker once flags are parsed; pol is the --policy
	// CEL file (nil when none).
	Setup func(fs *pflag.FlagSet) func(pol *cel.Policy) (Checker, error)
}

var kinds = map[string]Kind{}

// Register adds a kind; registering a name twice panics.
func Register(k Kind) {
	if _, dup := kinds[k.Name]; dup {
		panic("config kind registered twice: " + k.Name)
	}
	kinds[k.Name] = k
}

// Lookup returns the registered kind of a name.
func Lookup(name string) (Kind, bool) {
	k, ok := kinds[name]
	return k, ok
}

// Names lists the registered kinds, sorted.
func Names() []string {
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Detect returns the kind of a file by its name and content, forced when
// forced is not empty, "" when no kind claims it. Kinds are asked in name
// order.
func Detect(name string, data []byte, forced string) string {
	if forced != "" {
		return forced
	}
	for _, n := range Names() {
		if k := kinds[n]; k.Detect != nil && k.Detect(name, data) {
			return n
		}
	}
	return ""
}

// MaxFile bounds what is read of one configuration file.
const MaxFile = 16 << 20

// Options say what Scan checks.
type Options struct {
	// Kind treats every input as this kind ("" detects); it must be
	// registered.
	Kind string
	// Checkers are the built checkers by kind name; nil runs no
	// misconfiguration checks.
	Checkers map[string]Checker
	// Secrets scans each file for secrets; nil scans none.
	Secrets *secret.Scanner
	// Stdin is read for the path "-".
	Stdin io.Reader
}

// Summary is what Scan saw besides findings.
type Summary struct {
	// Checked counts the files checked.
	Checked int
	// Warnings, in the order met, include every Unread entry: the
	// messages of Diagnostics.
	Warnings []string
	// Diagnostics are the Warnings with their codes (config.unreadable,
	// config.unknown-kind, secret.unreadable) and files.
	Diagnostics []diag.Diagnostic
	// Unread are the files that could not be read or checked in full.
	Unread []string
}

// Scan checks the paths (files, directories searched recursively with .git
// and node_modules skipped, or "-" for opts.Stdin), handing each file's
// findings to emit as they are made. A file that cannot be read, is over
// MaxFile, or fails its checker part-way is put in Summary.Unread and the
// scan goes on; an error is returned only for a path that does not exist,
// standard input that is too large or of no known kind, or ctx being done.
func Scan(ctx context.Context, paths []string, opts Options, emit func([]finding.Finding)) (Summary, error) {
	var sum Summary
	if opts.Kind != "" {
		if _, ok := kinds[opts.Kind]; !ok {
			return sum, fmt.Errorf("--type %q: use one of %s", opts.Kind, strings.Join(Names(), ", "))
		}
	}
	misconfig, secrets := opts.Checkers != nil, opts.Secrets != nil
	note := func(d diag.Diagnostic) {
		sum.Diagnostics = append(sum.Diagnostics, d)
		sum.Warnings = append(sum.Warnings, d.Message)
	}
	failed := func(name string, err error) {
		note(diag.New(diag.ConfigUnreadable, diag.Warning, err.Error()).At(diag.Location{Path: name}))
		sum.Unread = append(sum.Unread, err.Error())
	}
	check := func(name string, data []byte, kind string) {
		sum.Checked++
		// secret findings on a line a misconfiguration already reports as
		// a secret are dropped (BH-DF-009 on an ENV line, say)
		covered := map[string]bool{}
		if misconfig && kind != "" {
			c := opts.Checkers[kind]
			if c == nil {
				failed(name, fmt.Errorf("%s: no checker built for kind %s", name, kind))
			} else if err := c(name, data, func(fs []finding.Finding) {
				for _, h := range fs {
					if h.Location != nil && (h.ID == "BH-DF-009" || strings.Contains(strings.ToLower(h.Title), "secret")) {
						covered[coveredKey(h)] = true
					}
				}
				emit(fs)
			}); err != nil {
				// A file that could not be parsed to its end was not
				// checked in full: what follows the fault could hide
				// anything, so it fails the run like an unreadable file.
				if !strings.HasPrefix(err.Error(), name+":") {
					err = fmt.Errorf("%s: %w", name, err)
				}
				failed(name, err)
			}
		}
		if secrets && !secret.IsBinary(data) && !opts.Secrets.AllowedPath(name) {
			got, err := opts.Secrets.Scan(name, bytes.NewReader(data))
			if err != nil {
				note(diag.New(diag.SecretUnreadable, diag.Warning, err.Error()).At(diag.Location{Path: name}))
			}
			kept := got[:0]
			for _, a := range got {
				if a.Location == nil || !covered[coveredKey(a)] {
					kept = append(kept, a)
				}
			}
			emit(kept)
		}
	}
	for _, arg := range paths {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		if arg == "-" {
			stdin := opts.Stdin
			if stdin == nil {
				stdin = os.Stdin
			}
			data, err := io.ReadAll(io.LimitReader(stdin, MaxFile+1))
			if err != nil {
				return sum, fmt.Errorf("read standard input: %w", err)
			}
			if len(data) > MaxFile {
				return sum, fmt.Errorf("standard input is over %d bytes; split it into files of at most %d MiB", MaxFile, MaxFile>>20)
			}
			kind := Detect("-", data, opts.Kind)
			if kind == "" && !secrets {
				return sum, fmt.Errorf("cannot tell what standard input is; give --type %s", strings.Join(Names(), "|"))
			}
			check("-", data, kind)
			continue
		}
		files, err := listFiles(arg, opts.Kind)
		if err != nil {
			return sum, err
		}
		for _, cf := range files {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
			data, err := readFile(cf.name)
			if err != nil {
				failed(cf.name, err)
				continue
			}
			kind := cf.kind
			if kind == "" {
				kind = Detect(cf.name, data, opts.Kind)
			}
			// Outside an explicit file argument, only files of a known kind
			// are checked, for secrets too.
			if kind == "" && cf.kind == "" && arg != cf.name {
				continue
			}
			if kind == "" && misconfig {
				note(diag.Warnf(diag.ConfigUnknown, "%s: not a Dockerfile or manifest by its name and content; give --type %s to check it (secrets only)", cf.name, strings.Join(Names(), "|")).At(diag.Location{Path: cf.name}))
			}
			check(cf.name, data, kind)
		}
	}
	return sum, nil
}

// coveredKey is where a finding is, for dropping duplicate secret findings.
func coveredKey(f finding.Finding) string {
	return fmt.Sprintf("%s:%d", f.Location.Path, f.Location.StartLine)
}

type file struct {
	name, kind string
}

// listFiles lists the files under a path argument; a file named directly
// is always checked (its kind detected later, or forced).
func listFiles(arg, forced string) ([]file, error) {
	st, err := os.Stat(arg)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if !st.IsDir() {
		return []file{{name: arg, kind: forced}}, nil
	}
	var out []file
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
			out = append(out, file{name: p})
		}
		return nil
	})
	return out, err
}

func readFile(name string) ([]byte, error) {
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
	data, err := io.ReadAll(io.LimitReader(fh, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", name, err)
	}
	if len(data) > MaxFile {
		return nil, fmt.Errorf("config: %s is over %d bytes (%d MiB); skipped: split it into smaller files", name, MaxFile, MaxFile>>20)
	}
	return data, nil
}
