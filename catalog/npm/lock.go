package npm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Lockfile names.
const (
	PackageLock = "package-lock.json"
	Shrinkwrap  = "npm-shrinkwrap.json"
	YarnLock    = "yarn.lock"
	PnpmLock    = "pnpm-lock.yaml"
)

// Lock reads npm, yarn and pnpm lockfiles.
type Lock struct{}

// NewLock returns the lockfile cataloger.
func NewLock() *Lock { return &Lock{} }

var (
	_ catalog.Cataloger = (*Lock)(nil)
	_ catalog.Scoped    = (*Lock)(nil)
)

// Name implements catalog.Cataloger.
func (*Lock) Name() string { return "npm-lock" }

// Scope implements catalog.Scoped: lockfiles declare what a project would
// install; in an image the installed node_modules tree is the truth.
func (*Lock) Scope() catalog.Scope { return catalog.ScopeSource }

// Match implements catalog.Cataloger. Lockfiles inside node_modules belong to
// installed packages' own development and are skipped, as syft does.
func (*Lock) Match(path string) bool {
	return lockKind(path) != "" && !strings.HasPrefix(path, "node_modules/") && !strings.Contains(path, "/node_modules/")
}

func lockKind(path string) string {
	_, base := splitLast(path)
	switch base {
	case PackageLock, Shrinkwrap, YarnLock, PnpmLock:
		return base
	}
	return ""
}

// Parse implements catalog.Cataloger.
func (*Lock) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	kind := lockKind(strings.TrimPrefix(in.Path, "/"))
	if kind == "" {
		return nil, fmt.Errorf("%s: not an npm, yarn or pnpm lockfile", in.Path)
	}
	if in.Size > MaxLockSize {
		return nil, fmt.Errorf("%s %s: %d bytes, more than the %d bytes bulkhead reads from a lockfile", kind, in.Path, in.Size, MaxLockSize)
	}
	var (
		pkgs []inventory.Package
		err  error
	)
	switch kind {
	case PackageLock, Shrinkwrap:
		pkgs, err = ParsePackageLock(ctx, in.Reader)
	case YarnLock:
		pkgs, err = ParseYarnLock(ctx, in.Reader)
	case PnpmLock:
		pkgs, err = ParsePnpmLock(ctx, in.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, in.Path, err)
	}
	return pkgs, nil
}

// readAll reads a whole lockfile, up to MaxLockSize.
func readAll(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxLockSize+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(b) > MaxLockSize {
		return nil, fmt.Errorf("more than %d bytes: too large for a lockfile", MaxLockSize)
	}
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), nil
}

// collector gathers lockfile packages, once per name, version and flags,
// and bounds their number.
type collector struct {
	pkgs []inventory.Package
	seen map[string]int // name@version -> index in pkgs
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

// add records a package. A package listed more than once (npm v1's nested
// copies, yarn's specifier groups) is one package; it is dev-only when every
// listing is.
func (c *collector) add(name, version string, dev, main bool, lic []string) error {
	name, version = strings.TrimSpace(name), strings.TrimSpace(version)
	if !validName(name) || !validVersion(version) {
		return nil
	}
	k := name + "@" + version
	if i, ok := c.seen[k]; ok {
		p := &c.pkgs[i]
		p.Dev = p.Dev && dev
		p.Main = p.Main || main
		if len(p.Licenses) == 0 {
			p.Licenses = lic
		}
		return nil
	}
	if err := catalog.CheckPackageCount(len(c.pkgs), maxPackages, "lockfile"); err != nil {
		return err
	}
	p := newPackage(name, version)
	p.Dev, p.Main, p.Licenses = dev, main, lic
	c.seen[k] = len(c.pkgs)
	c.pkgs = append(c.pkgs, p)
	return nil
}
