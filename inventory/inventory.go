// Package inventory holds what a scan found: the operating system and the
// packages installed in an image or a file tree, with where each was found.
//
// It is plain data (JSON-serialisable) so that SBOM writers, the
// vulnerability matcher, reports and the admission server all share it.
package inventory

import (
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/diag"
)

// Package types. Each cataloger sets one; purls and vulnerability ecosystems
// are derived from it.
const (
	TypeAPK = "apk"
	TypeDeb = "deb"
	TypeRPM = "rpm"

	// Language ecosystems use their purl type names.
	TypeGo       = "golang"
	TypeNPM      = "npm"
	TypePyPI     = "pypi"
	TypeMaven    = "maven"
	TypeGem      = "gem"
	TypeCargo    = "cargo"
	TypeComposer = "composer"
	TypeNuGet    = "nuget"
)

// Location says where a package was found: the file that recorded it and the
// image layer that introduced the package.
type Location struct {
	// Path of the file the package was read from, absolute within the image
	// ("/var/lib/dpkg/status").
	Path string `json:"path"`
	// Layer that introduced the package (the lowest layer from which the package,
	// at this version, has stayed installed). Empty for a directory scan.
	Layer *Layer `json:"layer,omitempty"`
}

// Layer identifies one image layer.
type Layer struct {
	Index     int    `json:"index"`
	Digest    string `json:"digest,omitempty"` // compressed blob digest
	DiffID    string `json:"diffID,omitempty"` // uncompressed digest
	CreatedBy string `json:"createdBy,omitempty"`
}

// Package is one installed package.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"` // full version as the ecosystem writes it (rpm: [epoch:]version-release)
	Type    string `json:"type"`    // TypeAPK, TypeDeb, TypeRPM, ...
	PURL    string `json:"purl,omitempty"`

	Arch    string `json:"arch,omitempty"`
	Epoch   *int   `json:"epoch,omitempty"`   // rpm and dpkg epoch when present
	Release string `json:"release,omitempty"` // rpm release

	// SourceName and SourceVersion name the source package the binary package
	// was built from (dpkg Source:, apk origin, rpm SOURCERPM); vulnerability
	// advisories for distros are usually keyed by it.
	SourceName    string `json:"sourceName,omitempty"`
	SourceVersion string `json:"sourceVersion,omitempty"`

	Licenses   []string `json:"licenses,omitempty"`
	Maintainer string   `json:"maintainer,omitempty"` // dpkg Maintainer, apk maintainer, rpm vendor
	Modularity string   `json:"modularityLabel,omitempty"`
	// Dev marks a development-only dependency (lockfiles that say so).
	Dev bool `json:"dev,omitempty"`
	// Main marks the main module of a binary or project (Go main module,
	// the root of a lockfile), as opposed to its dependencies.
	Main bool `json:"main,omitempty"`

	// FoundBy names the cataloger that produced the package.
	FoundBy   string     `json:"foundBy"`
	Locations []Location `json:"locations"`
}

// Key identifies a package within one inventory.
func (p *Package) Key() string {
	return p.Type + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch
}

// OS is the detected operating system.
type OS struct {
	ID         string   `json:"id"`                   // os-release ID: debian, alpine, rhel, ...
	VersionID  string   `json:"versionID,omitempty"`  // os-release VERSION_ID: 12, 3.20.3, 9.4
	Codename   string   `json:"codename,omitempty"`   // VERSION_CODENAME: bookworm
	Name       string   `json:"name,omitempty"`       // NAME
	PrettyName string   `json:"prettyName,omitempty"` // PRETTY_NAME
	IDLike     []string `json:"idLike,omitempty"`
	Distroless bool     `json:"distroless,omitempty"`
	// Source names the file the decision was taken from.
	Source string `json:"source,omitempty"`
}

// Inventory is the result of cataloguing one target.
type Inventory struct {
	Target   Target    `json:"target"`
	OS       *OS       `json:"os,omitempty"`
	Packages []Package `json:"packages"`
	// Warnings are the messages of the problems met (Diagnostics'
	// messages, and any warning decoded from a document without codes).
	Warnings []string `json:"warnings,omitempty"`
	// Diagnostics are the problems met with their codes, severities and
	// locations; add them with Diagnose, which keeps Warnings in step.
	Diagnostics []diag.Diagnostic `json:"diagnostics,omitempty"`
	// Incomplete names the package files left out, in whole or in part,
	// because they are over a limit for hostile input (also among the
	// warnings): the inventory does not show all the image holds.
	Incomplete []string `json:"incomplete,omitempty"`
}

// Target describes what was scanned.
type Target struct {
	Name   string  `json:"name"`             // what the user asked for
	Source string  `json:"source"`           // registry, docker-archive, oci-archive, oci-layout, daemon, rootfs, dir
	Digest string  `json:"digest,omitempty"` // manifest digest
	ID     string  `json:"imageID,omitempty"`
	Arch   string  `json:"architecture,omitempty"`
	OSName string  `json:"os,omitempty"`
	Layers []Layer `json:"layers,omitempty"`
	Size   int64   `json:"size,omitempty"` // sum of compressed layer sizes
	// Config carries the image configuration fields reports need.
	User        string            `json:"user,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	RepoTags    []string          `json:"repoTags,omitempty"`
	RepoDigests []string          `json:"repoDigests,omitempty"`
}

// DiffIDs are the image's layer diffIDs in order (the config's
// rootfs.diff_ids), which base-image detection compares with a catalog.
// Layers without one (a rootfs or directory target) are left out.
func (t Target) DiffIDs() []string {
	var ids []string
	for _, l := range t.Layers {
		if l.DiffID != "" {
			ids = append(ids, l.DiffID)
		}
	}
	return ids
}

// Sort orders packages by type, name, version and arch so output is stable.
func (inv *Inventory) Sort() {
	sort.SliceStable(inv.Packages, func(i, j int) bool {
		a, b := &inv.Packages[i], &inv.Packages[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		if a.Arch != b.Arch {
			return a.Arch < b.Arch
		}
		return firstPath(a) < firstPath(b)
	})
}

func firstPath(p *Package) string {
	if len(p.Locations) == 0 {
		return ""
	}
	return p.Locations[0].Path
}

// NameVersions returns "name version" lines of packages of one type, sorted:
// the shape native tools (dpkg-query, rpm -qa, apk) print and tests compare.
func (inv *Inventory) NameVersions(typ string) []string {
	var out []string
	for _, p := range inv.Packages {
		if typ == "" || p.Type == typ {
			out = append(out, p.Name+" "+p.Version)
		}
	}
	sort.Strings(out)
	return out
}

// Distro returns the purl "distro" qualifier value for the OS
// ("debian-12", "alpine-3.20.3"), or "" when unknown.
func (o *OS) Distro() string {
	if o == nil || o.ID == "" {
		return ""
	}
	if o.VersionID == "" {
		return o.ID
	}
	return o.ID + "-" + o.VersionID
}

// Family reports whether the OS is id or derives from it (ID_LIKE).
func (o *OS) Family(id string) bool {
	if o == nil {
		return false
	}
	if strings.EqualFold(o.ID, id) {
		return true
	}
	for _, l := range o.IDLike {
		if strings.EqualFold(l, id) {
			return true
		}
	}
	return false
}

// Diagnose adds diagnostics, and the messages of those that are not
// notes (diag.Info) to Warnings.
func (inv *Inventory) Diagnose(ds ...diag.Diagnostic) {
	inv.Diagnostics = append(inv.Diagnostics, ds...)
	inv.Warnings = append(inv.Warnings, diag.Warnings(ds)...)
}

// AllDiagnostics are the Diagnostics, then a warning of code
// diag.Unclassified for each of Warnings that is not one of their messages
// (a warning set or decoded without a code).
func (inv *Inventory) AllDiagnostics() []diag.Diagnostic {
	return diag.Merge(inv.Diagnostics, inv.Warnings)
}
