package golang

import (
	"context"
	"fmt"
	"io"
	"path"

	"golang.org/x/mod/modfile"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxModFileSize bounds a go.mod. The largest real ones (Kubernetes,
// Grafana) are under 100 KB.
const MaxModFileSize = 8 << 20

// ModFile reads the requirements of go.mod files in source trees.
type ModFile struct{}

// NewModFile returns the go.mod cataloger.
func NewModFile() *ModFile { return &ModFile{} }

var (
	_ catalog.Cataloger = (*ModFile)(nil)
	_ catalog.Scoped    = (*ModFile)(nil)
)

// Name implements catalog.Cataloger.
func (*ModFile) Name() string { return "go-mod" }

// Scope implements catalog.Scoped: a go.mod declares what a build would
// use; in an image the binaries say what was used.
func (*ModFile) Scope() catalog.Scope { return catalog.ScopeSource }

// Match implements catalog.Cataloger.
func (*ModFile) Match(p string) bool { return path.Base(p) == "go.mod" }

// Parse implements catalog.Cataloger.
func (*ModFile) Parse(_ context.Context, in catalog.Input) ([]inventory.Package, error) {
	data, err := io.ReadAll(io.LimitReader(in.Reader, MaxModFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", in.Path, err)
	}
	if len(data) > MaxModFileSize {
		return nil, fmt.Errorf("go.mod %s is over %d bytes: not a real go.mod", in.Path, MaxModFileSize)
	}
	pkgs, err := ParseModFile(in.Path, data)
	if err != nil {
		return nil, fmt.Errorf("go.mod %s: %w", in.Path, err)
	}
	return pkgs, nil
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
