package validate

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/package-url/packageurl-go"

	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
)

// Package is one package of a report.
type Package struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl,omitempty"`
}

// Mismatch is a package both sides list at different versions.
type Mismatch struct {
	Type  string   `json:"type"`
	Name  string   `json:"name"`
	SBOM  []string `json:"sbomVersions"`
	Image []string `json:"imageVersions"`
}

// Report is the outcome of validating one SBOM against one image.
type Report struct {
	SBOM        string       `json:"sbom"`
	Format      string       `json:"format"`
	SpecVersion string       `json:"specVersion"`
	Schema      SchemaResult `json:"schema"`
	// Describes is the target the SBOM says it describes, when it says.
	Describes string `json:"describes,omitempty"`
	Image     string `json:"image"`

	SBOMPackages  int `json:"sbomPackages"`
	ImagePackages int `json:"imagePackages"`
	Matched       int `json:"matched"`
	// Missing are in the image and not in the SBOM; Extra in the SBOM and
	// not in the image; Mismatched in both at different versions.
	Missing    []Package  `json:"missing"`
	Extra      []Package  `json:"extra"`
	Mismatched []Mismatch `json:"mismatched"`
	// Unverified are SBOM entries of kinds the image scan does not
	// catalogue (generic binaries, files, GitHub actions): neither right
	// nor wrong as far as this check can tell.
	Unverified []Package `json:"unverified,omitempty"`
	Warnings   []string  `json:"warnings,omitempty"`
}

// Passed reports whether the SBOM is schema-valid and matches the image.
func (r *Report) Passed() bool {
	return r.Schema.Valid && r.Complete()
}

// Complete reports whether the SBOM lists exactly the image's packages.
func (r *Report) Complete() bool {
	return len(r.Missing) == 0 && len(r.Extra) == 0 && len(r.Mismatched) == 0
}

// Decode reads a CycloneDX or SPDX JSON SBOM into an inventory.
func Decode(data []byte) (*inventory.Inventory, error) {
	if len(data) > sbom.MaxSize {
		return nil, fmt.Errorf("SBOM is over %d MiB", sbom.MaxSize>>20)
	}
	format, _, err := Detect(data)
	if err != nil {
		return nil, err
	}
	if format == CycloneDX {
		return cyclonedx.Decode(bytes.NewReader(data))
	}
	return spdx.Decode(bytes.NewReader(data))
}

// Validate checks an SBOM document (name is for the report) against its
// schema and against the inventory of the image it should describe. An
// error means the document could not be read at all; everything else is in
// the report.
func Validate(name string, data []byte, image *inventory.Inventory) (*Report, error) {
	if len(data) > sbom.MaxSize {
		return nil, fmt.Errorf("SBOM %s is over %d MiB", name, sbom.MaxSize>>20)
	}
	format, version, err := Detect(data)
	if err != nil {
		return nil, fmt.Errorf("SBOM %s: %w", name, err)
	}
	r := &Report{SBOM: name, Format: format, SpecVersion: version, Image: image.Target.Name}
	r.Schema, err = Schema(data)
	switch {
	case errors.Is(err, ErrUnsupported):
		// A version without an embedded schema fails the schema check,
		// and the completeness check still runs.
		r.Schema = SchemaResult{Schema: format + " " + version, Errors: []string{err.Error()}}
	case err != nil:
		return nil, fmt.Errorf("SBOM %s: %w", name, err)
	}
	inv, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("SBOM %s: %w", name, err)
	}
	r.Describes = describes(inv.Target)
	r.Warnings = append(r.Warnings, inv.Warnings...)
	if w := targetMismatch(inv.Target, image.Target); w != "" {
		r.Warnings = append(r.Warnings, w)
	}
	Completeness(r, inv.Packages, image.Packages)
	return r, nil
}

func describes(t inventory.Target) string {
	switch {
	case t.Name != "" && t.Digest != "":
		return t.Name + "@" + t.Digest
	case t.Name != "":
		return t.Name
	case t.ID != "":
		return t.ID
	}
	return t.Digest
}

// targetMismatch compares the image identity an SBOM records with the
// image's, where both sides have one of the same kind.
func targetMismatch(s, img inventory.Target) string {
	if s.ID != "" && img.ID != "" && s.ID != img.ID {
		return fmt.Sprintf("the SBOM describes image %s but the image scanned is %s", s.ID, img.ID)
	}
	return ""
}

// catalogued are the package types the image scan finds; SBOM entries of
// other types cannot be checked.
var catalogued = map[string]bool{
	inventory.TypeAPK: true, inventory.TypeDeb: true, inventory.TypeRPM: true,
	inventory.TypeGo: true, inventory.TypeNPM: true, inventory.TypePyPI: true,
	inventory.TypeMaven: true, inventory.TypeGem: true, inventory.TypeCargo: true,
	inventory.TypeComposer: true, inventory.TypeNuGet: true,
}

// osTypes are distribution packages: their purl namespace is the distro,
// which tools spell differently, and one image has one distro.
var osTypes = map[string]bool{inventory.TypeAPK: true, inventory.TypeDeb: true, inventory.TypeRPM: true}

type ident struct {
	typ, key, name string
}

// Identity is how a package is matched across documents: its purl without
// version, qualifiers and subpath (the distro namespace of OS packages
// dropped), else its type and name; names normalised where the ecosystem
// says they are case- or separator-insensitive.
func Identity(p *inventory.Package) (typ, key string) {
	id := identity(p)
	return id.typ, id.key
}

func identity(p *inventory.Package) ident {
	typ, ns, name := strings.ToLower(p.Type), "", p.Name
	if p.PURL != "" {
		if pu, err := packageurl.FromString(p.PURL); err == nil {
			typ, ns, name = strings.ToLower(pu.Type), pu.Namespace, pu.Name
		}
	}
	if osTypes[typ] {
		ns = ""
	}
	switch typ {
	case inventory.TypePyPI:
		name = pep503(name)
	case inventory.TypeNPM, inventory.TypeGem, inventory.TypeCargo, inventory.TypeNuGet, inventory.TypeComposer:
		name, ns = strings.ToLower(name), strings.ToLower(ns)
	case inventory.TypeMaven:
		// Maven coordinates are case-sensitive, but tools that read a
		// jar's manifest sometimes lower-case them.
		name, ns = strings.ToLower(name), strings.ToLower(ns)
	}
	key := typ + "/" + name
	if ns != "" {
		key = typ + "/" + ns + "/" + name
	}
	display := name
	if ns != "" {
		display = ns + "/" + name
	}
	return ident{typ: typ, key: key, name: display}
}

// pep503 normalises a Python distribution name.
func pep503(name string) string {
	var b strings.Builder
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '-' || c == '_' || c == '.' {
			sep = true
			continue
		}
		if sep && b.Len() > 0 {
			b.WriteByte('-')
		}
		sep = false
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// unknownVersion marks versions a tool could not tell.
func unknownVersion(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "", "UNKNOWN", "(DEVEL)", "NOASSERTION", "NONE":
		return true
	}
	return false
}

// NormalizeVersion spells a version the way both sides can compare: the
// Go toolchain's "go1.22.1" as "1.22.1", and a zero epoch dropped.
func NormalizeVersion(typ, name, v string) string {
	v = strings.TrimSpace(v)
	if typ == inventory.TypeGo && name == "stdlib" {
		v = strings.TrimPrefix(v, "go")
	}
	if typ == inventory.TypeDeb || typ == inventory.TypeRPM {
		v = strings.TrimPrefix(v, "0:")
	}
	return v
}

// sameVersion compares normalised versions; an epoch written by only one
// side is not held against it (trivy writes rpm epochs in the purl only).
func sameVersion(typ, a, b string) bool {
	if a == b {
		return true
	}
	if typ == inventory.TypeDeb || typ == inventory.TypeRPM {
		return dropEpoch(a) == dropEpoch(b) && (hasEpoch(a) != hasEpoch(b))
	}
	return false
}

func hasEpoch(v string) bool {
	i := strings.IndexByte(v, ':')
	return i > 0 && strings.Trim(v[:i], "0123456789") == ""
}

func dropEpoch(v string) string {
	if hasEpoch(v) {
		return v[strings.IndexByte(v, ':')+1:]
	}
	return v
}

type side struct {
	typ, name string
	versions  map[string]*inventory.Package // normalised version -> a package
	unknown   *inventory.Package            // a package whose version is not known
}

func group(ps []inventory.Package, unverified *[]Package) map[string]*side {
	out := map[string]*side{}
	for i := range ps {
		p := &ps[i]
		id := identity(p)
		if !catalogued[id.typ] {
			if unverified != nil {
				*unverified = append(*unverified, Package{Type: p.Type, Name: p.Name, Version: p.Version, PURL: p.PURL})
			}
			continue
		}
		s := out[id.key]
		if s == nil {
			s = &side{typ: id.typ, name: id.name, versions: map[string]*inventory.Package{}}
			out[id.key] = s
		}
		if unknownVersion(p.Version) {
			s.unknown = p
			continue
		}
		s.versions[NormalizeVersion(id.typ, p.Name, p.Version)] = p
	}
	return out
}

// Completeness compares an SBOM's packages with the image's and fills the
// report's counts and lists. A package is one identity at one version;
// several copies of one version count once (tools differ on whether they
// list each copy).
func Completeness(r *Report, sbomPkgs, imagePkgs []inventory.Package) {
	r.Missing, r.Extra, r.Mismatched = []Package{}, []Package{}, []Mismatch{}
	r.Unverified = nil
	gs := group(sbomPkgs, &r.Unverified)
	gi := group(imagePkgs, nil)
	count := func(m map[string]*side) int {
		n := 0
		for _, s := range m {
			n += len(s.versions)
			if s.unknown != nil && len(s.versions) == 0 {
				n++
			}
		}
		return n
	}
	r.SBOMPackages, r.ImagePackages = count(gs), count(gi)
	pkg := func(p *inventory.Package) Package {
		return Package{Type: p.Type, Name: p.Name, Version: p.Version, PURL: p.PURL}
	}
	for key, is := range gi {
		ss, ok := gs[key]
		if !ok {
			for _, v := range sortedVersions(is.versions) {
				r.Missing = append(r.Missing, pkg(is.versions[v]))
			}
			if is.unknown != nil && len(is.versions) == 0 {
				r.Missing = append(r.Missing, pkg(is.unknown))
			}
			continue
		}
		var onlyImg, onlySBOM []string
		for v := range is.versions {
			if findVersion(is.typ, ss.versions, v) {
				r.Matched++
			} else {
				onlyImg = append(onlyImg, v)
			}
		}
		for v := range ss.versions {
			if !findVersion(is.typ, is.versions, v) {
				onlySBOM = append(onlySBOM, v)
			}
		}
		sort.Strings(onlyImg)
		sort.Strings(onlySBOM)
		switch {
		case len(onlyImg) == 0 && len(onlySBOM) == 0:
			if len(is.versions) == 0 || len(ss.versions) == 0 {
				// A version unknown on one side: the package is there.
				r.Matched++
			}
		case len(onlySBOM) == 0 && ss.unknown != nil, len(onlyImg) == 0 && is.unknown != nil:
			// The other side lists the same package without a version.
			r.Matched += len(onlyImg) + len(onlySBOM)
		default:
			if len(onlyImg) > 0 && len(onlySBOM) > 0 {
				r.Mismatched = append(r.Mismatched, Mismatch{Type: is.typ, Name: is.name, SBOM: onlySBOM, Image: onlyImg})
				continue
			}
			for _, v := range onlyImg {
				r.Missing = append(r.Missing, pkg(is.versions[v]))
			}
			for _, v := range onlySBOM {
				r.Extra = append(r.Extra, pkg(ss.versions[v]))
			}
		}
	}
	for key, ss := range gs {
		if _, ok := gi[key]; ok {
			continue
		}
		for _, v := range sortedVersions(ss.versions) {
			r.Extra = append(r.Extra, pkg(ss.versions[v]))
		}
		if ss.unknown != nil && len(ss.versions) == 0 {
			r.Extra = append(r.Extra, pkg(ss.unknown))
		}
	}
	sortPkgs(r.Missing)
	sortPkgs(r.Extra)
	sortPkgs(r.Unverified)
	sort.Slice(r.Mismatched, func(i, j int) bool {
		if r.Mismatched[i].Type != r.Mismatched[j].Type {
			return r.Mismatched[i].Type < r.Mismatched[j].Type
		}
		return r.Mismatched[i].Name < r.Mismatched[j].Name
	})
}

func findVersion(typ string, m map[string]*inventory.Package, v string) bool {
	if _, ok := m[v]; ok {
		return true
	}
	for w := range m {
		if sameVersion(typ, v, w) {
			return true
		}
	}
	return false
}

func sortedVersions(m map[string]*inventory.Package) []string {
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func sortPkgs(ps []Package) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Type != ps[j].Type {
			return ps[i].Type < ps[j].Type
		}
		if ps[i].Name != ps[j].Name {
			return ps[i].Name < ps[j].Name
		}
		return ps[i].Version < ps[j].Version
	})
}
