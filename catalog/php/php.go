// Package php reads PHP Composer packages: composer.lock in source trees and
// vendor/composer/installed.json, the record of what Composer installed.
package php

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// MaxFileSize bounds composer.lock and installed.json. Large Drupal and
// Magento projects have files of a few megabytes.
const MaxFileSize = 64 << 20

// LockfileCataloger is the name of the composer.lock cataloger: the FoundBy
// of its packages.
const LockfileCataloger = "php-lockfile"

// NewLock returns the composer.lock cataloger, for source trees.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: "composer.lock", Match: catalog.BaseName("composer.lock"), MaxSize: MaxFileSize, Parse: catalog.ReaderFunc(ParseLock)})
}

// Installed reads vendor/composer/installed.json files.
type Installed struct{}

// NewInstalled returns the installed.json cataloger.
func NewInstalled() *Installed { return &Installed{} }

var (
	_ catalog.Cataloger = (*Installed)(nil)
	_ catalog.Scoped    = (*Installed)(nil)
)

// Name implements catalog.Cataloger.
func (*Installed) Name() string { return "composer-installed" }

// Scope implements catalog.Scoped: what Composer installed into an image.
func (*Installed) Scope() catalog.Scope { return catalog.ScopeImage }

// Match implements catalog.Cataloger.
func (*Installed) Match(p string) bool {
	return p == "vendor/composer/installed.json" || strings.HasSuffix(p, "/vendor/composer/installed.json")
}

// Parse implements catalog.Cataloger.
func (*Installed) Parse(_ context.Context, in catalog.Input) ([]inventory.Package, error) {
	pkgs, err := ParseInstalled(in.Reader)
	if err != nil {
		return nil, fmt.Errorf("installed.json %s: %w", in.Path, err)
	}
	return pkgs, nil
}

// entry is the part of a package record bulkhead keeps; composer.lock and
// installed.json share it.
type entry struct {
	Name    string          `json:"name"`
	Version string          `json:"version"`
	License json.RawMessage `json:"license"`
}

// ParseLock reads a composer.lock: "packages" and "packages-dev" (Dev).
// Syft reads only "packages"; development packages are installed by a plain
// `composer install` and are reported here, marked.
func ParseLock(r io.Reader) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxFileSize)
	if err != nil {
		return nil, err
	}
	var lf struct {
		Packages    []entry `json:"packages"`
		PackagesDev []entry `json:"packages-dev"`
	}
	if err := json.Unmarshal(data, &lf); err != nil {
		return nil, fmt.Errorf("parse JSON: %w (is it a composer.lock? `composer validate` checks it)", err)
	}
	pkgs := make([]inventory.Package, 0, len(lf.Packages)+len(lf.PackagesDev))
	for _, e := range lf.Packages {
		if p, ok := newPackage(e); ok {
			pkgs = append(pkgs, p)
		}
	}
	for _, e := range lf.PackagesDev {
		if p, ok := newPackage(e); ok {
			p.Dev = true
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}

// ParseInstalled reads vendor/composer/installed.json in either form:
// Composer 1 wrote an array of packages; Composer 2 writes an object with
// "packages", "dev" and "dev-package-names" (the packages installed only
// for development: Dev).
func ParseInstalled(r io.Reader) ([]inventory.Package, error) {
	data, err := catalog.ReadLimited(r, MaxFileSize)
	if err != nil {
		return nil, err
	}
	var entries []entry
	dev := map[string]bool{}
	switch trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(data, &entries); err != nil {
			return nil, fmt.Errorf("parse Composer 1 installed.json: %w", err)
		}
	default:
		var v2 struct {
			Packages        []entry  `json:"packages"`
			DevPackageNames []string `json:"dev-package-names"`
		}
		if err := json.Unmarshal(data, &v2); err != nil {
			return nil, fmt.Errorf("parse Composer 2 installed.json: %w", err)
		}
		entries = v2.Packages
		for _, n := range v2.DevPackageNames {
			dev[n] = true
		}
	}
	pkgs := make([]inventory.Package, 0, len(entries))
	for _, e := range entries {
		if p, ok := newPackage(e); ok {
			p.Dev = dev[e.Name]
			pkgs = append(pkgs, p)
		}
	}
	return pkgs, nil
}

func newPackage(e entry) (inventory.Package, bool) {
	if e.Name == "" || e.Version == "" {
		return inventory.Package{}, false
	}
	return inventory.Package{
		Name:     e.Name,
		Version:  e.Version,
		Type:     inventory.TypeComposer,
		PURL:     PURL(e.Name, e.Version),
		Licenses: licenses(e.License),
	}, true
}

// licenses reads "license": an array of SPDX identifiers (the schema), or a
// single string (older packages).
func licenses(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		out := list[:0]
		for _, l := range list {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && strings.TrimSpace(one) != "" {
		return []string{strings.TrimSpace(one)}
	}
	return nil
}

// PURL is the package URL of a Composer package: pkg:composer/vendor/name.
func PURL(name, version string) string {
	ns, n := "", name
	if i := strings.Index(name, "/"); i > 0 {
		ns, n = name[:i], name[i+1:]
	}
	return packageurl.NewPackageURL(packageurl.TypeComposer, ns, n, version, nil, "").ToString()
}
