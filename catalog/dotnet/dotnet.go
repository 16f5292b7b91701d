// Package dotnet reads NuGet packages of .NET applications: the *.deps.json
// a published application carries, and in source trees packages.lock.json
// and packages.config.
package dotnet

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxFileSize bounds the files read. deps.json of large ASP.NET
// applications are around a megabyte.
const MaxFileSize = 64 << 20

// Deps reads *.deps.json files.
type Deps struct{}

// NewDeps returns the deps.json cataloger.
func NewDeps() *Deps { return &Deps{} }

// LockfileCataloger is the name of the cataloger of packages.lock.json and
// packages.config: the FoundBy of their packages.
const LockfileCataloger = "dotnet-lockfile"

// NewLock returns the cataloger of the NuGet files of source trees:
// packages.lock.json and packages.config.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: "packages.lock.json", Match: catalog.BaseName("packages.lock.json"), MaxSize: MaxFileSize, Parse: catalog.ReaderFunc(ParseLock)},
		catalog.FileParser{What: "packages.config", Match: catalog.BaseName("packages.config"), MaxSize: MaxFileSize, Parse: catalog.ReaderFunc(ParseConfig)},
	)
}

var _ catalog.Scoped = (*Deps)(nil)

// Name implements catalog.Cataloger.
func (*Deps) Name() string { return "dotnet-deps" }

// Scope implements catalog.Scoped: a published application carries its
// deps.json, in images and in build output alike.
func (*Deps) Scope() catalog.Scope { return catalog.ScopeAll }

// Match implements catalog.Cataloger.
func (*Deps) Match(p string) bool {
	b := path.Base(p)
	return len(b) > len(".deps.json") && strings.HasSuffix(b, ".deps.json")
}

// Parse implements catalog.Cataloger.
func (*Deps) Parse(_ context.Context, in catalog.Input) ([]inventory.Package, error) {
	root := strings.TrimSuffix(path.Base(in.Path), ".deps.json")
	pkgs, err := ParseDeps(in.Reader, root)
	if err != nil {
		return nil, fmt.Errorf("deps.json %s: %w", in.Path, err)
	}
	return pkgs, nil
}

// ParseDeps reads a deps.json: the "libraries" of type "package", named by
// their "Name/Version" keys. Project references and reference assemblies
// are not NuGet packages and are left out; the application itself (the
// project named like the file, "root" for MyApp.deps.json, as syft decides)
// is reported as Main, without a purl: it is not on nuget.org, and a
// package there of the same name is another package.
func ParseDeps(r io.Reader, root string) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxFileSize)
	if err != nil {
		return nil, err
	}
	var df struct {
		Libraries map[string]struct {
			Type string `json:"type"`
		} `json:"libraries"`
	}
	if err := json.Unmarshal(data, &df); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if df.Libraries == nil {
		return nil, errors.New(`no "libraries": not a .NET deps.json`)
	}
	var pkgs []inventory.Package
	for key, lib := range df.Libraries {
		name, version, ok := strings.Cut(key, "/")
		if !ok || name == "" || version == "" {
			continue
		}
		switch {
		case lib.Type == "package":
			pkgs = append(pkgs, newPackage(name, version))
		case lib.Type == "project" && root != "" && name == root:
			pkgs = append(pkgs, inventory.Package{Name: name, Version: version, Type: inventory.TypeNuGet, Main: true})
		}
	}
	return dedupe(pkgs), nil
}

// ParseLock reads a packages.lock.json: the resolved version of every
// package of every target framework, once each. Entries of type "Project"
// are project references, not packages.
func ParseLock(r io.Reader) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxFileSize)
	if err != nil {
		return nil, err
	}
	var lf struct {
		Dependencies map[string]map[string]struct {
			Type     string `json:"type"`
			Resolved string `json:"resolved"`
		} `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &lf); err != nil {
		return nil, fmt.Errorf("parse JSON: %w", err)
	}
	if lf.Dependencies == nil {
		return nil, errors.New(`no "dependencies": not a NuGet packages.lock.json`)
	}
	var pkgs []inventory.Package
	for _, deps := range lf.Dependencies {
		for name, d := range deps {
			if strings.EqualFold(d.Type, "Project") || name == "" || d.Resolved == "" {
				continue
			}
			pkgs = append(pkgs, newPackage(name, d.Resolved))
		}
	}
	return dedupe(pkgs), nil
}

// ParseConfig reads a packages.config: one <package id version> element per
// package; developmentDependency="true" marks a Dev package.
func ParseConfig(r io.Reader) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxFileSize)
	if err != nil {
		return nil, err
	}
	var pc struct {
		XMLName  xml.Name `xml:"packages"`
		Packages []struct {
			ID      string `xml:"id,attr"`
			Version string `xml:"version,attr"`
			Dev     string `xml:"developmentDependency,attr"`
		} `xml:"package"`
	}
	if err := xml.Unmarshal(data, &pc); err != nil {
		return nil, fmt.Errorf("parse XML: %w (is it a NuGet packages.config?)", err)
	}
	var pkgs []inventory.Package
	for _, p := range pc.Packages {
		id, v := strings.TrimSpace(p.ID), strings.TrimSpace(p.Version)
		if id == "" || v == "" {
			continue
		}
		pkg := newPackage(id, v)
		pkg.Dev = strings.EqualFold(strings.TrimSpace(p.Dev), "true")
		pkgs = append(pkgs, pkg)
	}
	return pkgs, nil
}

// dedupe keeps one package per case-insensitive name and version (NuGet ids
// are case-insensitive), in a stable order; of two spellings the first in
// byte order is kept, so output does not depend on map order.
func dedupe(pkgs []inventory.Package) []inventory.Package {
	sort.Slice(pkgs, func(i, j int) bool {
		a, b := strings.ToLower(pkgs[i].Name), strings.ToLower(pkgs[j].Name)
		if a != b {
			return a < b
		}
		if pkgs[i].Version != pkgs[j].Version {
			return pkgs[i].Version < pkgs[j].Version
		}
		return pkgs[i].Name < pkgs[j].Name
	})
	out := pkgs[:0]
	for i, p := range pkgs {
		if i > 0 && strings.EqualFold(p.Name, out[len(out)-1].Name) && p.Version == out[len(out)-1].Version {
			continue
		}
		out = append(out, p)
	}
	return out
}

func newPackage(name, version string) inventory.Package {
	return inventory.Package{Name: name, Version: version, Type: inventory.TypeNuGet, PURL: PURL(name, version)}
}

// PURL is the package URL of a NuGet package: pkg:nuget/Name@Version.
func PURL(name, version string) string {
	return packageurl.NewPackageURL(packageurl.TypeNuget, "", name, version, nil, "").ToString()
}
