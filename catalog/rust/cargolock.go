// Package rust reads Rust crates: Cargo.lock files, and the dependency list
// cargo-auditable embeds in binaries.
package rust

import (
	"errors"
	"fmt"
	"io"

	"github.com/BurntSushi/toml"
	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxLockSize bounds a Cargo.lock. The largest real ones (rustc's own, a
// few thousand crates) are well under 1 MB.
const MaxLockSize = 32 << 20

// LockfileCataloger is the name of the Cargo.lock cataloger: the FoundBy
// of its packages.
const LockfileCataloger = "rust-lockfile"

// NewLock returns the Cargo.lock cataloger. It runs for images too: a
// Cargo.lock is a source-tree file, but images built with `COPY . .` carry
// it next to the binary it describes; syft and Trivy read it in images too.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeAll,
		catalog.FileParser{What: "Cargo.lock", Match: catalog.BaseName("Cargo.lock"), MaxSize: MaxLockSize, Parse: catalog.ReaderFunc(ParseLock)})
}

type lockFile struct {
	Package []struct {
		Name    string `toml:"name"`
		Version string `toml:"version"`
		Source  string `toml:"source"`
	} `toml:"package"`
}

// ParseLock reads a Cargo.lock (formats v1 to v4): one package per
// [[package]] table. Packages without a source are the workspace's own
// crates and path dependencies: they get no purl, since a cargo purl without
// a repository means a crate on crates.io (as syft decides), and a crate of
// the same name there is another crate.
func ParseLock(r io.Reader) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxLockSize)
	if err != nil {
		return nil, err
	}
	var lf lockFile
	if err := toml.Unmarshal(data, &lf); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("parse TOML at line %d: %s (run `cargo generate-lockfile` to rewrite it)", pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("parse TOML: %w", err)
	}
	pkgs := make([]inventory.Package, 0, len(lf.Package))
	for _, p := range lf.Package {
		if p.Name == "" || p.Version == "" {
			continue
		}
		pkg := inventory.Package{Name: p.Name, Version: p.Version, Type: inventory.TypeCargo}
		if p.Source != "" {
			pkg.PURL = PURL(p.Name, p.Version)
		}
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

// PURL is the package URL of a crate on crates.io.
func PURL(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypeCargo, "", name, version, nil, "").ToString()
}
