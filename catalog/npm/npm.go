// Package npm reads JavaScript packages: the package.json of every package
// installed in a node_modules tree (project or global), the package.json of
// applications and tarball-installed tools in images, and the lockfiles of
// npm (package-lock.json, npm-shrinkwrap.json), yarn (classic and berry) and
// pnpm (pnpm-lock.yaml) in source trees.
//
// Three catalogers, because the three kinds of file answer different
// questions for different targets:
//   - New ("npm"): node_modules/<name>/package.json and
//     node_modules/@scope/<name>/package.json, for images and source trees:
//     what is installed.
//   - NewManifest ("npm-manifest"): any other package.json outside
//     node_modules, for images only: the application itself (/app/package.json)
//     and tools unpacked from a tarball (/opt/yarn-v1.22.22/package.json).
//     syft reports these in images; in a source tree they are the project's
//     own manifests, which the lockfile describes better.
//   - NewLock ("npm-lockfile"): lockfiles, for source trees.
package npm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Bounds on hostile input.
const (
	// MaxManifestSize is the largest package.json read. Real ones are a
	// few kilobytes; npm 2-4 copied the README into installed manifests,
	// which reaches some hundreds of kilobytes.
	MaxManifestSize = 16 << 20
	// MaxLockSize is the largest lockfile read. The package-lock.json of a
	// big monorepo is some tens of megabytes.
	MaxLockSize = 256 << 20
	// MaxPackages is the most packages read from one lockfile: the limit
	// shared by the catalogers of package databases.
	MaxPackages = catalog.DefaultMaxPackages
	// maxNameLen bounds package names: npm allows 214 characters.
	maxNameLen = 512
)

// maxPackages is the limit in force: catalog.MaxPackagesOr(0) (MaxPackages,
// or BULKHEAD_MAX_PACKAGES), lowered by tests.
var maxPackages = catalog.MaxPackagesOr(0)

const manifestName = "package.json"

// Installed reads package.json files of packages installed in node_modules.
type Installed struct{}

// New returns the cataloger of installed packages (node_modules).
func New() *Installed { return &Installed{} }

var (
	_ catalog.Cataloger = (*Installed)(nil)
	_ catalog.Scoped    = (*Installed)(nil)
)

// Name implements catalog.Cataloger.
func (*Installed) Name() string { return "npm" }

// Scope implements catalog.Scoped: node_modules trees are installed packages
// wherever they are found, in an image or beside a project's source.
func (*Installed) Scope() catalog.Scope { return catalog.ScopeAll }

// Match implements catalog.Cataloger. It takes only the package.json at the
// root of an installed package: node_modules/<name>/package.json or
// node_modules/@scope/<name>/package.json, at any depth. Other package.json
// files inside a package are not packages: test fixtures
// (resolve/test/resolver/baz/package.json), module-type markers
// (tslib/modules/package.json: {"type":"module"}) and entry-point proxies
// (rxjs/ajax/package.json, named "rxjs/ajax", without a version). node
// itself finds a package only at these paths.
func (*Installed) Match(path string) bool { return IsInstalledManifest(path) }

// IsInstalledManifest reports whether path (slash-separated, relative or
// absolute) is the package.json at the root of a package in node_modules.
func IsInstalledManifest(path string) bool {
	dir, ok := strings.CutSuffix(path, "/"+manifestName)
	if !ok {
		return false
	}
	parent, base := splitLast(dir)
	if base == "" || base[0] == '.' {
		return false // .bin, .cache, .pnpm, .store: npm's and pnpm's own dirs
	}
	if isNodeModules(parent) {
		return base[0] != '@' // a scope directory holds packages, it is not one
	}
	grand, scope := splitLast(parent)
	return len(scope) > 1 && scope[0] == '@' && isNodeModules(grand)
}

// splitLast splits a path at its last slash.
func splitLast(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

func isNodeModules(dir string) bool {
	return dir == "node_modules" || strings.HasSuffix(dir, "/node_modules")
}

// Parse implements catalog.Cataloger.
func (*Installed) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	return parseManifestInput(in)
}

// Manifest reads package.json files outside node_modules in images.
type Manifest struct{}

// NewManifest returns the cataloger of application and tool manifests in
// images (package.json outside node_modules).
func NewManifest() *Manifest { return &Manifest{} }

var (
	_ catalog.Cataloger = (*Manifest)(nil)
	_ catalog.Scoped    = (*Manifest)(nil)
)

// Name implements catalog.Cataloger.
func (*Manifest) Name() string { return "npm-manifest" }

// Scope implements catalog.Scoped.
func (*Manifest) Scope() catalog.Scope { return catalog.ScopeImage }

// Match implements catalog.Cataloger: package.json anywhere outside
// node_modules (inside it, Installed decides).
func (*Manifest) Match(path string) bool {
	if path != manifestName && !strings.HasSuffix(path, "/"+manifestName) {
		return false
	}
	return !strings.HasPrefix(path, "node_modules/") && !strings.Contains(path, "/node_modules/")
}

// Parse implements catalog.Cataloger.
func (*Manifest) Parse(ctx context.Context, in catalog.Input) ([]inventory.Package, error) {
	return parseManifestInput(in)
}

func parseManifestInput(in catalog.Input) ([]inventory.Package, error) {
	if in.Size > MaxManifestSize {
		return nil, fmt.Errorf("package.json %s: %d bytes, more than the %d a package manifest can sensibly have", in.Path, in.Size, MaxManifestSize)
	}
	p, ok, err := ParseManifest(in.Reader)
	if err != nil {
		return nil, fmt.Errorf("package.json %s: %w", in.Path, err)
	}
	if !ok {
		return nil, nil
	}
	return []inventory.Package{p}, nil
}

// manifest is the part of a package.json bulkhead reads.
type manifest struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	License  json.RawMessage `json:"license"`
	Licenses json.RawMessage `json:"licenses"`
}

// ParseManifest reads one package.json. ok is false when the file names no
// package: no name or no version (module-type markers, entry-point proxies,
// private workspaces without a version). A version-less package cannot be
// matched against advisories; syft reports it with version "UNKNOWN".
func ParseManifest(r io.Reader) (pkg inventory.Package, ok bool, err error) {
	b, err := catalog.ReadLimited(r, MaxManifestSize)
	if err != nil {
		return pkg, false, err
	}
	// Some packages ship a UTF-8 byte-order mark; node strips it too.
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		var ute *json.UnmarshalTypeError
		if !errors.As(err, &ute) {
			return pkg, false, fmt.Errorf("invalid JSON: %w", err)
		}
		// A name or version of the wrong type: not a package.
		return pkg, false, nil
	}
	name, version := strings.TrimSpace(m.Name), strings.TrimSpace(m.Version)
	if !validName(name) || !validVersion(version) {
		return pkg, false, nil
	}
	pkg = newPackage(name, version)
	pkg.Licenses = licenses(m.License, m.Licenses)
	return pkg, true, nil
}

// validName accepts what npm could have installed: a name, or @scope/name,
// without whitespace or control characters. Entry-point proxies such as
// "rxjs/ajax" are not packages.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	rest := name
	if name[0] == '@' {
		scope, n, ok := strings.Cut(name[1:], "/")
		if !ok || scope == "" || n == "" {
			return false
		}
		rest = n
	}
	return !strings.Contains(rest, "/")
}

func validVersion(v string) bool {
	if v == "" || len(v) > maxNameLen || !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// newPackage returns an npm package with its purl.
func newPackage(name, version string) inventory.Package {
	return inventory.Package{Name: name, Version: version, Type: inventory.TypeNPM, PURL: PURL(name, version)}
}

// PURL returns the package URL of an npm package: pkg:npm/name@version, or
// pkg:npm/%40scope/name@version for a scoped one.
func PURL(name, version string) string {
	ns := ""
	if strings.HasPrefix(name, "@") {
		if s, n, ok := strings.Cut(name, "/"); ok {
			ns, name = s, n
		}
	}
	return packageurl.NewPackageURL(packageurl.TypeNPM, ns, name, version, nil, "").ToString()
}

// licenseObject is the deprecated {"type": "MIT", "url": "..."} form.
type licenseObject struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

// licenses reads the licence of a manifest or lockfile entry in each form
// npm has accepted: an SPDX expression string; an object with a type; an
// array of those (tv4 1.3.0 has one under "license"); and the deprecated
// "licenses" array, read only when "license" says nothing.
func licenses(license, legacy json.RawMessage) []string {
	if out := licenseValues(license); len(out) > 0 {
		return out
	}
	return licenseValues(legacy)
}

func licenseValues(raw json.RawMessage) []string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return appendLicense(nil, s)
	}
	var o licenseObject
	if raw[0] == '{' && json.Unmarshal(raw, &o) == nil {
		return appendLicense(nil, licenseOfObject(o))
	}
	var arr []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &arr) != nil {
		return nil
	}
	var out []string
	for _, e := range arr {
		var s string
		if json.Unmarshal(e, &s) == nil {
			out = appendLicense(out, s)
			continue
		}
		var o licenseObject
		if json.Unmarshal(e, &o) == nil {
			out = appendLicense(out, licenseOfObject(o))
		}
	}
	return out
}

func licenseOfObject(o licenseObject) string {
	if o.Type != "" {
		return o.Type
	}
	return o.Name
}

func appendLicense(out []string, s string) []string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 4096 {
		return out
	}
	for _, have := range out {
		if have == s {
			return out
		}
	}
	return append(out, s)
}
