package python

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxLockfile is the largest lockfile read. The biggest real ones (uv.lock
// of large monorepos, with every wheel's hash) are a few megabytes.
const MaxLockfile = 64 << 20

// LockfileCataloger is the name of the Python lockfile cataloger: the
// FoundBy of its packages.
const LockfileCataloger = "python-lockfile"

// NewLock returns the cataloger of the pinned dependencies of Python
// lockfiles in source trees. Files are selected by name, as syft's globs
// do: **/*requirements*.txt, **/poetry.lock, **/Pipfile.lock, **/uv.lock
// and **/*.py.lock (uv's PEP 723 script locks).
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: "poetry.lock", Match: catalog.BaseName("poetry.lock"), MaxSize: MaxLockfile, Parse: catalog.ReaderFunc(ParsePoetryLock)},
		catalog.FileParser{What: "Pipfile.lock", Match: catalog.BaseName("Pipfile.lock"), MaxSize: MaxLockfile, Parse: catalog.ReaderFunc(ParsePipfileLock)},
		catalog.FileParser{What: "uv.lock", Match: catalog.BaseName("uv.lock", "?*.py.lock"), MaxSize: MaxLockfile, Parse: catalog.ReaderFunc(ParseUVLock)},
		catalog.FileParser{What: "requirements file", Match: catalog.BaseName("*requirements*.txt"), MaxSize: MaxLockfile, Parse: catalog.ContextFunc(ParseRequirements)},
	)
}

// readLock reads a whole lockfile, up to MaxLockfile, without its
// byte-order mark.
func readLock(r io.Reader) ([]byte, error) {
	b, err := catalog.ReadLimited(r, MaxLockfile)
	if err != nil {
		return nil, err
	}
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), nil
}

// requirement is "name [extras] spec ; markers".
var requirement = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$`)
})

// ParseRequirements reads a pip requirements file and returns the
// requirements pinned to one version (== or ===). Ranges, URLs, editable
// installs, options and nested files (-r, -c) are skipped: they do not name
// a version, and another file's content is that file's to report.
func ParseRequirements(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	br := bufio.NewReaderSize(catalog.LimitReader(r, MaxLockfile), 4096)
	var (
		pkgs    []inventory.Package
		logical strings.Builder
	)
	seen := map[string]bool{}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		line, long, err := readLine(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("read: %w", err)
		}
		if long {
			logical.Reset() // no real requirement is a megabyte long
			line = nil
		}
		s := strings.TrimRight(string(line), "\r\n")
		// A backslash at the end joins the next line (pip does this
		// before it strips comments).
		if strings.HasSuffix(s, `\`) && err == nil {
			if logical.Len() < MaxLine {
				logical.WriteString(strings.TrimSuffix(s, `\`))
				logical.WriteByte(' ')
			}
			continue
		}
		logical.WriteString(s)
		full := logical.String()
		logical.Reset()
		if p, ok := parseRequirementLine(full); ok && !seen[p.Name+"\x00"+p.Version] {
			seen[p.Name+"\x00"+p.Version] = true
			pkgs = append(pkgs, p)
		}
		if err != nil {
			break
		}
	}
	return pkgs, nil
}

// comment is pip's: a # at the start or after whitespace (a # inside a URL
// fragment is not one).
var comment = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(^|\s)#.*$`) })

func parseRequirementLine(s string) (inventory.Package, bool) {
	s = strings.TrimSpace(comment().ReplaceAllString(s, ""))
	if s == "" || strings.HasPrefix(s, "-") {
		return inventory.Package{}, false
	}
	// Per-requirement options (--hash, --config-settings, -C) follow the
	// requirement.
	if i := strings.Index(s, " -"); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i] // environment markers
	}
	m := requirement().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil || !validName(m[1]) {
		return inventory.Package{}, false
	}
	spec := strings.TrimSpace(m[2])
	var version string
	switch {
	case strings.HasPrefix(spec, "==="):
		version = spec[3:]
	case strings.HasPrefix(spec, "==") && !strings.HasPrefix(spec, "==="):
		version = spec[2:]
	default:
		return inventory.Package{}, false
	}
	version = strings.TrimSpace(version)
	if f := strings.Fields(version); len(f) > 0 {
		version = f[0]
	}
	// A wildcard, a second clause or an unexpanded variable is not one
	// version.
	if version == "" || strings.ContainsAny(version, "*,<>!=~$@") {
		return inventory.Package{}, false
	}
	return newPackage(m[1], version), true
}

type poetryFile struct {
	Package []struct {
		Name     string   `toml:"name"`
		Version  string   `toml:"version"`
		Category string   `toml:"category"`
		Groups   []string `toml:"groups"`
	} `toml:"package"`
}

// ParsePoetryLock reads a poetry.lock. Packages of the "dev" category
// (lock format 1.x) or outside the "main" group (format 2.1, which records
// groups) are marked Dev.
func ParsePoetryLock(r io.Reader) ([]inventory.Package, error) {
	b, err := readLock(r)
	if err != nil {
		return nil, err
	}
	var f poetryFile
	if err := toml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse TOML: %w", err)
	}
	var pkgs []inventory.Package
	for _, p := range f.Package {
		if !validName(p.Name) || p.Version == "" {
			continue
		}
		pkg := newPackage(p.Name, p.Version)
		pkg.Dev = p.Category == "dev" || (len(p.Groups) > 0 && !contains(p.Groups, "main"))
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

type pipfileEntry struct {
	Version string `json:"version"`
}

type pipfileFile struct {
	Default map[string]pipfileEntry `json:"default"`
	Develop map[string]pipfileEntry `json:"develop"`
}

// ParsePipfileLock reads a Pipfile.lock. Packages of "develop" that are not
// also in "default" are marked Dev. Entries without a version (VCS and
// path dependencies) are skipped.
func ParsePipfileLock(r io.Reader) ([]inventory.Package, error) {
	b, err := readLock(r)
	if err != nil {
		return nil, err
	}
	var f pipfileFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	var pkgs []inventory.Package
	add := func(section map[string]pipfileEntry, dev bool) {
		names := make([]string, 0, len(section))
		for n := range section {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(section[n].Version, "=="), "="))
			if !validName(n) || v == "" || strings.ContainsAny(v, " *,<>!~") {
				continue
			}
			if dev {
				if _, ok := f.Default[n]; ok {
					continue
				}
			}
			p := newPackage(n, v)
			p.Dev = dev
			pkgs = append(pkgs, p)
		}
	}
	add(f.Default, false)
	add(f.Develop, true)
	return pkgs, nil
}

type uvFile struct {
	Package []struct {
		Name    string            `toml:"name"`
		Version string            `toml:"version"`
		Source  map[string]string `toml:"source"`
	} `toml:"package"`
}

// ParseUVLock reads a uv.lock. The project's own packages (source
// editable or virtual: the workspace root and members) are marked Main.
// Packages without a version (a virtual root with a dynamic version) are
// skipped.
func ParseUVLock(r io.Reader) ([]inventory.Package, error) {
	b, err := readLock(r)
	if err != nil {
		return nil, err
	}
	var f uvFile
	if err := toml.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse TOML: %w", err)
	}
	var pkgs []inventory.Package
	for _, p := range f.Package {
		if !validName(p.Name) || p.Version == "" {
			continue
		}
		pkg := newPackage(p.Name, p.Version)
		_, editable := p.Source["editable"]
		_, virtual := p.Source["virtual"]
		pkg.Main = editable || virtual
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}
