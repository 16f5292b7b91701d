package golang

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/mod/modfile"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxModFileSize bounds a go.mod. The largest real ones (Kubernetes,
// Grafana) are under 100 KB.
const MaxModFileSize = 8 << 20

// LockfileCataloger is the name of the go.mod cataloger: the FoundBy of
// its packages. go.mod is not a lockfile, but it is what Go has in its
// place: the exact versions a build selects (minimal version selection).
const LockfileCataloger = "go-lockfile"

// NewLock returns the cataloger of go.mod files in source trees. It runs
// for source trees only: a go.mod declares what a build would use; in an
// image the binaries say what was used.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: "go.mod", Match: catalog.BaseName("go.mod"), MaxSize: MaxModFileSize, Parse: parseModFile})
}

func parseModFile(_ context.Context, path string, r io.Reader) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxModFileSize)
	if err != nil {
		return nil, err
	}
	return ParseModFile(path, data)
}

// ParseModFile reads a go.mod: the module itself (Main, without a version:
// a source tree has none) and every required module, with the file's
// replace directives applied as the go command applies them (a replacement
// without an old version applies to every version, one with a version only
// to that version). Indirect requirements are listed like direct ones: they
// are built in just the same; inventory.Package has no field for the
// distinction yet.
func ParseModFile(name string, data []byte) ([]inventory.Package, error) {
	f, err := modfile.Parse(name, data, nil)
	if err != nil {
		return nil, fmt.Errorf("parse: %w (is it a go.mod? `go mod edit -json` shows what the go command makes of it)", err)
	}
	var pkgs []inventory.Package
	if f.Module != nil && f.Module.Mod.Path != "" {
		p := newPackage(f.Module.Mod.Path, "")
		p.Main = true
		pkgs = append(pkgs, p)
	}
	byPath := map[string]*modfile.Replace{}
	byVersion := map[[2]string]*modfile.Replace{}
	for _, r := range f.Replace {
		if r.Old.Version == "" {
			byPath[r.Old.Path] = r
		} else {
			byVersion[[2]string{r.Old.Path, r.Old.Version}] = r
		}
	}
	seen := map[[2]string]bool{}
	for _, r := range f.Require {
		p, v := r.Mod.Path, r.Mod.Version
		rep := byVersion[[2]string{p, v}]
		if rep == nil {
			rep = byPath[p]
		}
		if rep != nil {
			if IsLocalPath(rep.New.Path) {
				// A directory: keep the module's path (the one a
				// vulnerability database knows); the directory has
				// no version.
				v = rep.New.Version
			} else {
				p, v = rep.New.Path, rep.New.Version
			}
		}
		if k := [2]string{p, v}; !seen[k] {
			seen[k] = true
			pkgs = append(pkgs, newPackage(p, v))
		}
	}
	return pkgs, nil
}
