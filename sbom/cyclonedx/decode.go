package cyclonedx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
)

// FoundBy is the FoundBy of packages read from a CycloneDX SBOM that does
// not name the cataloger that found them.
const FoundBy = "sbom-cyclonedx"

// maxDepth bounds how deep nested components are followed.
const maxDepth = 64

// Properties other tools write that Decode understands.
const (
	syftFoundBy   = "syft:package:foundBy"
	syftType      = "syft:package:type"
	syftLocation  = "syft:location:" // + N + ":path" | ":layerID"
	syftDistroID  = "syft:distro:id"
	syftDistroVer = "syft:distro:versionID"
	syftPretty    = "syft:distro:prettyName"

	trivy            = "aquasecurity:trivy:"
	trivyPkgType     = trivy + "PkgType"
	trivySrcName     = trivy + "SrcName"
	trivySrcVersion  = trivy + "SrcVersion"
	trivySrcRelease  = trivy + "SrcRelease"
	trivySrcEpoch    = trivy + "SrcEpoch"
	trivyFilePath    = trivy + "FilePath"
	trivyLayerDigest = trivy + "LayerDigest"
	trivyLayerDiffID = trivy + "LayerDiffID"
	trivyImageID     = trivy + "ImageID"
	trivyRepoTag     = trivy + "RepoTag"
	trivyRepoDigest  = trivy + "RepoDigest"
)

// Decode reads a CycloneDX JSON SBOM into an inventory: the described image
// as the target, the operating-system component as the OS (or the OS named
// by the packages' purl distro qualifier), and every library, application
// or framework component, nested ones included, as a package. A package's
// type, version and arch come from its purl. Documents larger than
// sbom.MaxSize are refused.
func Decode(r io.Reader) (inv *inventory.Inventory, err error) {
	// cyclonedx-go's custom unmarshallers are not all hardened against
	// hostile input: a panic in them is a malformed document, not a crash.
	defer func() {
		if p := recover(); p != nil {
			inv, err = nil, fmt.Errorf("read CycloneDX: malformed document (CycloneDX library: %v)", p)
		}
	}()
	b, err := sbom.ReadAll(r, "CycloneDX")
	if err != nil {
		return nil, err
	}
	var head struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion any    `json:"specVersion"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '<' {
			return nil, fmt.Errorf("read CycloneDX: this is XML; bulkhead reads CycloneDX JSON (convert it with cyclonedx-cli)")
		}
		return nil, fmt.Errorf("read CycloneDX: not a JSON document: %w", err)
	}
	if head.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("read CycloneDX: bomFormat is %q, not %q: is this a CycloneDX JSON SBOM?", head.BOMFormat, cdx.BOMFormat)
	}
	if v, _ := head.SpecVersion.(string); !strings.HasPrefix(v, "1.") {
		return nil, fmt.Errorf("read CycloneDX: specVersion %v is not supported (bulkhead reads CycloneDX 1.x)", head.SpecVersion)
	}
	// Only the sections an inventory needs are decoded, so a document whose
	// other sections (declarations, formulation, vulnerabilities) are newer
	// or odder than the library's model still yields its packages.
	var doc struct {
		Metadata   *cdx.Metadata    `json:"metadata"`
		Components *[]cdx.Component `json:"components"`
	}
	var warnings []diag.Diagnostic
	if err := json.Unmarshal(b, &doc); err != nil {
		// A field of some component does not fit the library's model (it
		// happens with new spec versions): read component by component,
		// keeping only the fields an inventory needs from the odd ones.
		var raw struct {
			Metadata   json.RawMessage   `json:"metadata"`
			Components []json.RawMessage `json:"components"`
		}
		if err2 := json.Unmarshal(b, &raw); err2 != nil {
			return nil, fmt.Errorf("read CycloneDX %v document: %w", head.SpecVersion, err2)
		}
		doc.Metadata = nil
		if len(raw.Metadata) > 0 {
			var m cdx.Metadata
			if err := json.Unmarshal(raw.Metadata, &m); err != nil {
				warnings = append(warnings, diag.Warnf(diag.SBOMMetadataUnread, "metadata not read: %v", err))
			} else {
				doc.Metadata = &m
			}
		}
		cs, err := lenientComponents(raw.Components, 0, &warnings)
		if err != nil {
			return nil, fmt.Errorf("read CycloneDX %v document: %w", head.SpecVersion, err)
		}
		doc.Components = &cs
	}
	bom := cdx.BOM{Metadata: doc.Metadata, Components: doc.Components}
	inv = fromBOM(&bom)
	inv.Diagnose(warnings...)
	return inv, nil
}

// lenientFields are the component fields Decode uses.
var lenientFields = []string{"bom-ref", "type", "name", "version", "group", "purl", "licenses",
	"properties", "publisher", "supplier", "author", "description"}

// lenientComponents decodes components one by one; a component the library
// cannot decode whole is decoded from the fields Decode uses only.
func lenientComponents(raws []json.RawMessage, depth int, warnings *[]diag.Diagnostic) ([]cdx.Component, error) {
	if depth > maxDepth {
		return nil, nil
	}
	out := make([]cdx.Component, 0, len(raws))
	for _, raw := range raws {
		var c cdx.Component
		if err := json.Unmarshal(raw, &c); err == nil {
			out = append(out, c)
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("component is not an object: %w", err)
		}
		keep := map[string]json.RawMessage{}
		for _, f := range lenientFields {
			if v, ok := m[f]; ok {
				keep[f] = v
			}
		}
		b, _ := json.Marshal(keep)
		c = cdx.Component{}
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("component %s: %w", m["name"], err)
		}
		*warnings = append(*warnings, diag.Warnf(diag.SBOMPartialComponent, "component %s: read its identity only (the rest does not fit CycloneDX 1.6)", m["name"]).At(diag.Location{Object: c.Name}))
		if sub, ok := m["components"]; ok {
			var subs []json.RawMessage
			if err := json.Unmarshal(sub, &subs); err != nil {
				return nil, fmt.Errorf("components of %s: %w", m["name"], err)
			}
			children, err := lenientComponents(subs, depth+1, warnings)
			if err != nil {
				return nil, err
			}
			c.Components = &children
		}
		out = append(out, c)
	}
	return out, nil
}

type decoder struct {
	inv *inventory.Inventory
}

func fromBOM(bom *cdx.BOM) *inventory.Inventory {
	d := &decoder{inv: &inventory.Inventory{Target: inventory.Target{Source: "sbom"}, Packages: []inventory.Package{}}}
	if m := bom.Metadata; m != nil {
		if m.Component != nil {
			d.target(m.Component)
			d.components(m.Component.Components, 1)
		}
		for _, p := range deref(m.Properties) {
			if p.Name == propWarning {
				d.inv.Warnings = append(d.inv.Warnings, p.Value)
			}
		}
	}
	d.components(bom.Components, 0)
	if d.inv.OS == nil {
		d.inv.OS = sbom.OSFromPURLs(d.inv.Packages)
	}
	return d.inv
}

func (d *decoder) components(cs *[]cdx.Component, depth int) {
	if cs == nil {
		return
	}
	if depth > maxDepth {
		d.inv.Diagnose(diag.Warnf(diag.SBOMTooDeep, "components nested deeper than %d levels were not read", maxDepth))
		return
	}
	for i := range *cs {
		c := &(*cs)[i]
		switch c.Type {
		case cdx.ComponentTypeOS:
			if d.inv.OS == nil {
				d.inv.OS = osFrom(c)
			}
		case cdx.ComponentTypeLibrary, cdx.ComponentTypeApplication, cdx.ComponentTypeFramework, "":
			if p, ok := d.pkg(c); ok {
				d.inv.Packages = append(d.inv.Packages, p)
			}
		}
		d.components(c.Components, depth+1)
	}
}

// properties indexes a component's properties by name.
type properties map[string][]string

func propsOf(c *cdx.Component) properties {
	m := properties{}
	for _, p := range deref(c.Properties) {
		m[p.Name] = append(m[p.Name], p.Value)
	}
	return m
}

func (m properties) get(names ...string) string {
	for _, n := range names {
		if v := m[n]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

// indexed returns the values of "<prefix>N:<field>" properties by N, in
// order of N.
func (m properties) indexed(prefix string) []indexedProps {
	byN := map[int]map[string]string{}
	for name, vs := range m {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok || len(vs) == 0 {
			continue
		}
		ns, field, ok := strings.Cut(rest, ":")
		n, err := strconv.Atoi(ns)
		if !ok || err != nil || n < 0 {
			continue
		}
		if byN[n] == nil {
			byN[n] = map[string]string{}
		}
		byN[n][field] = vs[0]
	}
	keys := make([]int, 0, len(byN))
	for n := range byN {
		keys = append(keys, n)
	}
	sort.Ints(keys)
	out := make([]indexedProps, len(keys))
	for i, n := range keys {
		out[i] = indexedProps{n, byN[n]}
	}
	return out
}

// indexedProps are the fields of one "<prefix>N:" group.
type indexedProps struct {
	n int
	f map[string]string
}

func (d *decoder) pkg(c *cdx.Component) (inventory.Package, bool) {
	pr := propsOf(c)
	var p inventory.Package
	if c.PackageURL != "" {
		fromPURL, err := sbom.FromPURL(c.PackageURL)
		if err != nil {
			d.inv.Diagnose(diag.Warnf(diag.SBOMBadPURL, "component %q: %v (kept without purl)", c.Name, err).At(diag.Location{Object: c.Name}))
		} else {
			p = fromPURL
		}
	}
	if c.Name != "" {
		p.Name = c.Name
	}
	if p.Name == "" {
		return p, false
	}
	if p.Version == "" {
		p.Version = c.Version
	}
	if t := pr.get(propType); t != "" {
		p.Type = t
	} else if p.Type == "" {
		p.Type = pr.get(syftType, trivyPkgType)
	}
	if a := pr.get(propArch); a != "" {
		p.Arch = a
	}
	if e := pr.get(propEpoch); e != "" {
		if n, err := strconv.Atoi(e); err == nil {
			p.Epoch = &n
		}
	}
	p.Release = pr.get(propRelease)
	p.Modularity = pr.get(propModularity)
	if s := pr.get(propSrcName, trivySrcName); s != "" {
		p.SourceName = s
		p.SourceVersion = pr.get(propSrcVersion)
		if p.SourceVersion == "" {
			p.SourceVersion = trivySource(pr)
		}
	}
	p.FoundBy = pr.get(propFoundBy, syftFoundBy)
	if p.FoundBy == "" {
		p.FoundBy = FoundBy
	}
	p.Licenses = licensesFrom(c.Licenses)
	p.Maintainer = maintainerFrom(c)
	p.Locations = locationsFrom(pr)
	return p, true
}

// trivySource joins trivy's split source version fields the way the
// package's ecosystem writes a version: [epoch:]version[-release].
func trivySource(pr properties) string {
	v := pr.get(trivySrcVersion)
	if v == "" {
		return ""
	}
	if r := pr.get(trivySrcRelease); r != "" {
		v += "-" + r
	}
	if e := pr.get(trivySrcEpoch); e != "" && e != "0" {
		v = e + ":" + v
	}
	return v
}

func licensesFrom(ls *cdx.Licenses) []string {
	var out []string
	if ls == nil {
		return nil
	}
	for _, l := range *ls {
		switch {
		case l.Expression != "":
			out = append(out, sbom.SplitAnd(l.Expression)...)
		case l.License != nil && l.License.ID != "":
			out = append(out, l.License.ID)
		case l.License != nil && l.License.Name != "":
			out = append(out, l.License.Name)
		}
	}
	return out
}

func maintainerFrom(c *cdx.Component) string {
	if c.Publisher != "" {
		return c.Publisher
	}
	if s := c.Supplier; s != nil && s.Name != "" {
		for _, ct := range deref(s.Contact) {
			if ct.Email != "" {
				return s.Name + " <" + ct.Email + ">"
			}
		}
		return s.Name
	}
	return c.Author
}

func locationsFrom(pr properties) []inventory.Location {
	var out []inventory.Location
	for _, g := range pr.indexed(propLocation) {
		f := g.f
		l := inventory.Location{Path: f["path"]}
		if f["layer:index"] != "" || f["layer:digest"] != "" || f["layer:diffID"] != "" {
			l.Layer = &inventory.Layer{Digest: f["layer:digest"], DiffID: f["layer:diffID"]}
			l.Layer.Index, _ = strconv.Atoi(f["layer:index"])
		}
		out = append(out, l)
	}
	if len(out) > 0 {
		return out
	}
	for _, g := range pr.indexed(syftLocation) {
		f := g.f
		l := inventory.Location{Path: f["path"]}
		if id := f["layerID"]; id != "" {
			// syft's layerID is the layer's diffID; the index is unknown.
			l.Layer = &inventory.Layer{Index: -1, DiffID: id}
		}
		out = append(out, l)
	}
	if len(out) > 0 {
		return out
	}
	path, digest, diffID := pr.get(trivyFilePath), pr.get(trivyLayerDigest), pr.get(trivyLayerDiffID)
	if path == "" && digest == "" && diffID == "" {
		return nil
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path // trivy writes paths relative to the image root
	}
	l := inventory.Location{Path: path}
	if digest != "" || diffID != "" {
		l.Layer = &inventory.Layer{Index: -1, Digest: digest, DiffID: diffID}
	}
	return []inventory.Location{l}
}

func osFrom(c *cdx.Component) *inventory.OS {
	pr := propsOf(c)
	o := &inventory.OS{
		ID:         strings.ToLower(c.Name),
		VersionID:  c.Version,
		Codename:   pr.get(propOSCodename),
		Name:       pr.get(propOSName),
		PrettyName: pr.get(propOSPretty, syftPretty),
		IDLike:     pr[propOSIDLike],
		Distroless: pr.get(propOSDistroless) == "true",
		Source:     pr.get(propOSSource),
	}
	if id := pr.get(syftDistroID); id != "" {
		o.ID = id
	}
	if v := pr.get(syftDistroVer); v != "" {
		o.VersionID = v
	}
	if o.PrettyName == "" {
		o.PrettyName = c.Description
	}
	return o
}

func (d *decoder) target(c *cdx.Component) {
	pr := propsOf(c)
	t := &d.inv.Target
	t.Name = c.Name
	if s := pr.get(propImageSource); s != "" {
		t.Source = s
	}
	t.Digest = pr.get(propImageDigest)
	if t.Digest == "" && strings.HasPrefix(c.Version, "sha256:") {
		t.Digest = c.Version
	}
	t.ID = pr.get(propImageID, trivyImageID)
	t.Arch = pr.get(propImageArch)
	t.OSName = pr.get(propImageOS)
	t.User = pr.get(propImageUser)
	t.Size, _ = strconv.ParseInt(pr.get(propImageSize), 10, 64)
	t.RepoTags = append(pr[propImageRepoTag], pr[trivyRepoTag]...)
	t.RepoDigests = append(pr[propImageRepoDigest], pr[trivyRepoDigest]...)
	for _, g := range pr.indexed(propImageLayer) {
		t.Layers = append(t.Layers, inventory.Layer{Index: g.n, Digest: g.f["digest"], DiffID: g.f["diffID"]})
	}
}

func deref[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}
