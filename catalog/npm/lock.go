package npm

import (
	"bytes"
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

// LockfileCataloger is the name of the lockfile cataloger: the FoundBy of
// its packages.
const LockfileCataloger = "npm-lockfile"

// NewLock returns the cataloger of npm, yarn and pnpm lockfiles. It runs for
// source trees only: lockfiles declare what a project would install; in an
// image the installed node_modules tree is the truth. Lockfiles inside
// node_modules belong to installed packages' own development and are
// skipped, as syft does.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: PackageLock, Match: outsideNodeModules(PackageLock), MaxSize: MaxLockSize, Parse: catalog.ContextFunc(ParsePackageLock)},
		catalog.FileParser{What: Shrinkwrap, Match: outsideNodeModules(Shrinkwrap), MaxSize: MaxLockSize, Parse: catalog.ContextFunc(ParsePackageLock)},
		catalog.FileParser{What: YarnLock, Match: outsideNodeModules(YarnLock), MaxSize: MaxLockSize, Parse: catalog.ContextFunc(ParseYarnLock)},
		catalog.FileParser{What: PnpmLock, Match: outsideNodeModules(PnpmLock), MaxSize: MaxLockSize, Parse: catalog.ContextFunc(ParsePnpmLock)},
	)
}

func outsideNodeModules(names ...string) func(string) bool {
	base := catalog.BaseName(names...)
	return func(p string) bool {
		return base(p) && !strings.HasPrefix(p, "node_modules/") && !strings.Contains(p, "/node_modules/")
	}
}

// readAll reads a whole lockfile, up to MaxLockSize, without its byte-order
// mark.
func readAll(r io.Reader) ([]byte, error) {
	b, err := catalog.ReadLimited(r, MaxLockSize)
	if err != nil {
		return nil, err
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
