package python

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxLockfile is the largest lockfile read. The biggest real ones (uv.lock
// of large monorepos, with every wheel's hash) are a few megabytes.
const MaxLockfile = 64 << 20

// LockCataloger reads the pinned dependencies of Python lockfiles in source
// trees.
type LockCataloger struct{}

// NewLock returns the cataloger of Python lockfiles.
func NewLock() *LockCataloger { return &LockCataloger{} }

var (
	_ catalog.Cataloger = (*LockCataloger)(nil)
	_ catalog.Scoped    = (*LockCataloger)(nil)
)

// Name implements catalog.Cataloger.
func (*LockCataloger) Name() string { return "python-lock" }

// Scope implements catalog.Scoped.
func (*LockCataloger) Scope() catalog.Scope { return catalog.ScopeSource }

type lockKind int

const (
	notLock lockKind = iota
	requirementsTxt
	poetryLock
	pipfileLock
	uvLock
)

// kind names the lockfile format by file name, as syft's globs do:
// **/*requirements*.txt, **/poetry.lock, **/Pipfile.lock, **/uv.lock and
// **/*.py.lock (uv's PEP 723 script locks).
func kind(p string) lockKind {
	base := path.Base(p)
	switch {
	case base == "poetry.lock":
		return poetryLock
	case base == "Pipfile.lock":
		return pipfileLock
	case base == "uv.lock" || (strings.HasSuffix(base, ".py.lock") && len(base) > len(".py.lock")):
		return uvLock
	case strings.HasSuffix(base, ".txt") && strings.Contains(base, "requirements"):
		return requirementsTxt
	}
	return notLock
}

// Match implements catalog.Cataloger.
func (*LockCataloger) Match(p string) bool { return kind(p) != notLock }

// Parse implements catalog.Cataloger.
func (*LockCataloger) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	var (
		pkgs []inventory.Package
		err  error
	)
	switch kind(in.Path) {
	case requirementsTxt:
		pkgs, err = ParseRequirements(ctx, in.Reader)
	case poetryLock:
		pkgs, err = ParsePoetryLock(in.Reader)
	case pipfileLock:
		pkgs, err = ParsePipfileLock(in.Reader)
	case uvLock:
		pkgs, err = ParseUVLock(in.Reader)
	default:
		return nil, fmt.Errorf("%s: not a Python lockfile", in.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("python lockfile %s: %w", in.Path, err)
	}
	return pkgs, nil
}

// requirement is "name [extras] spec ; markers".
var requirement = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*)$`)

// ParseRequirements reads a pip requirements file and returns the
// requirements pinned to one version (== or ===). Ranges, URLs, editable
// installs, options and nested files (-r, -c) are skipped: they do not name
// a version, and another file's content is that file's to report.
func ParseRequirements(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxLockfile+1), 4096)
	var (
		pkgs    []inventory.Package
		logical strings.Builder
		n       int64
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
		if n += int64(len(line)); n > MaxLockfile {
			return nil, fmt.Errorf("over the %d-byte limit: this is not a requirements file bulkhead reads", MaxLockfile)
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
var comment = regexp.MustCompile(`(^|\s)#.*$`)

func parseRequirementLine(s string) (inventory.Package, bool) {
	s = strings.TrimSpace(comment.ReplaceAllString(s, ""))
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
	m := requirement.FindStringSubmatch(strings.TrimSpace(s))
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
	b, err := readAll(r, MaxLockfile, "poetry.lock")
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
	b, err := readAll(r, MaxLockfile, "Pipfile.lock")
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
	b, err := readAll(r, MaxLockfile, "uv.lock")
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
