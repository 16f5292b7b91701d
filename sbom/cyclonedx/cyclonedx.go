// Package cyclonedx writes an inventory as a CycloneDX 1.6 JSON SBOM and
// reads CycloneDX JSON SBOMs (bulkhead's, syft's, trivy's, any 1.2–1.7
// document) back into inventory packages.
//
// Layout of what Encode writes:
//   - metadata.component is the scanned image (type "container", or "file"
//     for a directory scan): name, version = manifest digest, purl pkg:oci
//     when the repository and digest are known.
//   - one "operating-system" component for the detected OS;
//   - one "library" component per package, bom-ref = purl (with a
//     package-id qualifier when two packages share a purl);
//   - dependencies: the image depends on the OS and on every package.
//
// Facts CycloneDX has no field for are properties in the "bulkhead:"
// namespace, following syft ("syft:location:0:path") and trivy
// ("aquasecurity:trivy:LayerDigest"):
//
//	bulkhead:package:type            deb, apk, rpm
//	bulkhead:package:foundBy         cataloger name
//	bulkhead:package:sourceName      source package (dpkg Source, apk origin, rpm SOURCERPM name)
//	bulkhead:package:sourceVersion
//	bulkhead:package:arch, :epoch, :release, :modularityLabel
//	bulkhead:location:N:path         file the package was read from
//	bulkhead:location:N:layer:index  image layer that introduced it
//	bulkhead:location:N:layer:digest, :layer:diffID
//	bulkhead:os:*                    os-release fields of the OS component
//	bulkhead:image:*                 image facts on the metadata component
//	bulkhead:warning                 scan warnings (BOM metadata)
package cyclonedx

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/bulkhead-sec/bulkhead/internal/jsonstream"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
)

// Options configure Encode.
type Options = sbom.Options

// Property namespace and names.
const (
	ns = "bulkhead:"

	propType       = ns + "package:type"
	propFoundBy    = ns + "package:foundBy"
	propSrcName    = ns + "package:sourceName"
	propSrcVersion = ns + "package:sourceVersion"
	propArch       = ns + "package:arch"
	propEpoch      = ns + "package:epoch"
	propRelease    = ns + "package:release"
	propModularity = ns + "package:modularityLabel"
	propLocation   = ns + "location:" // + N + ":path" | ":layer:index" | ":layer:digest" | ":layer:diffID"

	propOSCodename   = ns + "os:codename"
	propOSName       = ns + "os:name"
	propOSPretty     = ns + "os:prettyName"
	propOSIDLike     = ns + "os:idLike"
	propOSDistroless = ns + "os:distroless"
	propOSSource     = ns + "os:source"

	propImageSource     = ns + "image:source"
	propImageDigest     = ns + "image:digest"
	propImageID         = ns + "image:imageID"
	propImageArch       = ns + "image:architecture"
	propImageOS         = ns + "image:os"
	propImageUser       = ns + "image:user"
	propImageSize       = ns + "image:size"
	propImageRepoTag    = ns + "image:repoTag"
	propImageRepoDigest = ns + "image:repoDigest"
	propImageLayer      = ns + "image:layer:" // + N + ":digest" | ":diffID"

	propWarning = ns + "warning"
)

// Encode writes inv as a CycloneDX 1.6 JSON document. Components follow the
// order of inv.Packages (call inv.Sort first for stable output).
func Encode(w io.Writer, inv *inventory.Inventory, opts Options) error {
	d, err := build(inv, opts)
	if err != nil {
		return err
	}
	return d.write(w)
}

// document is a BOM to write: the skeleton holds everything but the
// package components and the image's dependsOn list, which write encodes
// one at a time from the inventory (see jsonstream), so that memory stays
// that of the inventory however many packages there are. The bytes are
// what cyclonedx-go's encoder writes for the whole BOM, with SetPretty and
// no HTML escaping (purls and versions hold '&' and '+'); EncodeVersion's
// conversion changes nothing in a 1.6 BOM built here.
type document struct {
	bom  *cdx.BOM
	inv  *inventory.Inventory
	os   *cdx.Component // the OS component, first of the components
	refs []string       // bom-ref of each package
}

func build(inv *inventory.Inventory, opts Options) (*document, error) {
	if inv == nil {
		return nil, fmt.Errorf("encode CycloneDX: no inventory")
	}
	id, err := opts.UUID()
	if err != nil {
		return nil, err
	}
	bom := cdx.NewBOM()
	bom.JSONSchema = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	bom.SpecVersion = cdx.SpecVersion1_6
	bom.SerialNumber = "urn:uuid:" + id.String()

	seen := map[string]bool{}
	image := imageComponent(&inv.Target, seen)
	bom.Metadata = &cdx.Metadata{
		Timestamp: opts.Time().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type:      cdx.ComponentTypeApplication,
			Group:     "bulkhead-sec",
			Name:      "bulkhead",
			Version:   opts.Version(),
			Publisher: "bulkhead",
		}}},
		Component: image,
	}
	var warnings []cdx.Property
	for _, w := range inv.Warnings {
		warnings = append(warnings, cdx.Property{Name: propWarning, Value: w})
	}
	bom.Metadata.Properties = props(warnings)

	d := &document{bom: bom, inv: inv}
	if inv.OS != nil && inv.OS.ID != "" {
		c := osComponent(inv.OS, seen)
		d.os = &c
	}
	d.refs = packageRefs(inv.Packages, seen)
	// Placeholders, for write to replace with the components and refs.
	// With none, both are left out, as cyclonedx-go's EncodeVersion did
	// (its copy of the BOM drops empty lists).
	dependencies := []cdx.Dependency{{Ref: image.BOMRef}}
	if d.os != nil || len(inv.Packages) > 0 {
		bom.Components = &[]cdx.Component{{}}
		dependencies[0].Dependencies = &[]string{""}
	}
	bom.Dependencies = &dependencies
	return d, nil
}

func (d *document) write(w io.Writer) error {
	components := jsonstream.Slot{Key: "components", Depth: 1, Each: func(emit func(any) error) error {
		if d.os != nil {
			if err := emit(d.os); err != nil {
				return err
			}
		}
		licenses := sbom.LicenseCache{}
		for i := range d.inv.Packages {
			c := packageComponent(&d.inv.Packages[i], d.refs[i], licenses)
			if err := emit(&c); err != nil {
				return err
			}
		}
		return nil
	}}
	var slots []jsonstream.Slot
	if d.bom.Components != nil {
		slots = append(slots, components, jsonstream.Slot{Key: "dependsOn", Depth: 3, Each: func(emit func(any) error) error {
			if d.os != nil {
				if err := emit(d.os.BOMRef); err != nil {
					return err
				}
			}
			for _, r := range d.refs {
				if err := emit(r); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if err := jsonstream.Write(w, d.bom, slots...); err != nil {
		return fmt.Errorf("write CycloneDX document: %w", err)
	}
	return nil
}

func imageComponent(t *inventory.Target, seen map[string]bool) *cdx.Component {
	c := &cdx.Component{Type: cdx.ComponentTypeContainer, Name: t.Name, Version: t.Digest}
	if t.Source == "rootfs" || t.Source == "dir" {
		c.Type = cdx.ComponentTypeFile
	}
	if c.Name == "" {
		c.Name = "unknown"
	}
	if c.Version == "" {
		c.Version = t.ID
	}
	c.PackageURL = sbom.ImagePURL(*t)
	ref := c.PackageURL
	if ref == "" {
		ref = "bulkhead:target:" + c.Name
	}
	c.BOMRef = sbom.Unique(seen, ref, "#")

	var p []cdx.Property
	add := func(name, value string) {
		if value != "" {
			p = append(p, cdx.Property{Name: name, Value: value})
		}
	}
	add(propImageSource, t.Source)
	add(propImageDigest, t.Digest)
	add(propImageID, t.ID)
	add(propImageArch, t.Arch)
	add(propImageOS, t.OSName)
	add(propImageUser, t.User)
	if t.Size > 0 {
		add(propImageSize, strconv.FormatInt(t.Size, 10))
	}
	for _, r := range t.RepoTags {
		add(propImageRepoTag, r)
	}
	for _, r := range t.RepoDigests {
		add(propImageRepoDigest, r)
	}
	for _, l := range t.Layers {
		n := strconv.Itoa(l.Index)
		add(propImageLayer+n+":digest", l.Digest)
		add(propImageLayer+n+":diffID", l.DiffID)
	}
	c.Properties = props(p)
	return c
}

func osComponent(o *inventory.OS, seen map[string]bool) cdx.Component {
	ref := "os:" + o.ID
	if o.VersionID != "" {
		ref += "@" + o.VersionID
	}
	c := cdx.Component{
		BOMRef:      sbom.Unique(seen, ref, "#"),
		Type:        cdx.ComponentTypeOS,
		Name:        o.ID,
		Version:     o.VersionID,
		Description: o.PrettyName,
	}
	var p []cdx.Property
	add := func(name, value string) {
		if value != "" {
			p = append(p, cdx.Property{Name: name, Value: value})
		}
	}
	add(propOSName, o.Name)
	add(propOSPretty, o.PrettyName)
	add(propOSCodename, o.Codename)
	for _, l := range o.IDLike {
		add(propOSIDLike, l)
	}
	if o.Distroless {
		add(propOSDistroless, "true")
	}
	add(propOSSource, o.Source)
	c.Properties = props(p)
	return c
}

// packageRefs chooses each package's bom-ref: its purl when no other
// package has the same one, else the purl with a package-id qualifier (the
// form syft uses) derived from the package's key and locations, so that the
// refs are unique and stable from run to run.
func packageRefs(pkgs []inventory.Package, seen map[string]bool) []string {
	count := map[string]int{}
	for i := range pkgs {
		if pkgs[i].PURL != "" {
			count[pkgs[i].PURL]++
		}
	}
	refs := make([]string, len(pkgs))
	for i := range pkgs {
		p := &pkgs[i]
		ref := p.PURL
		switch {
		case ref == "":
			ref = "bulkhead:package:" + sbom.PackageHash(p)
		case count[ref] > 1 || seen[ref]:
			sep := "?"
			if strings.Contains(ref, "?") {
				sep = "&"
			}
			ref += sep + "package-id=" + sbom.PackageHash(p)
		}
		refs[i] = sbom.Unique(seen, ref, "-")
	}
	return refs
}

func packageComponent(p *inventory.Package, ref string, lc sbom.LicenseCache) cdx.Component {
	c := cdx.Component{
		BOMRef:     ref,
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: p.PURL,
		Licenses:   licenses(p.Licenses, lc),
		Publisher:  strings.TrimSpace(p.Maintainer),
	}
	if ct, ok := sbom.ParseMaintainer(p); ok && ct.Organization && ct.Name != "" {
		s := &cdx.OrganizationalEntity{Name: ct.Name}
		if ct.Email != "" {
			s.Contact = &[]cdx.OrganizationalContact{{Email: ct.Email}}
		}
		c.Supplier = s
	}
	var pr []cdx.Property
	add := func(name, value string) {
		if value != "" {
			pr = append(pr, cdx.Property{Name: name, Value: value})
		}
	}
	add(propType, p.Type)
	add(propFoundBy, p.FoundBy)
	add(propSrcName, p.SourceName)
	add(propSrcVersion, p.SourceVersion)
	add(propArch, p.Arch)
	if p.Epoch != nil {
		add(propEpoch, strconv.Itoa(*p.Epoch))
	}
	add(propRelease, p.Release)
	add(propModularity, p.Modularity)
	for i, l := range p.Locations {
		n := propLocation + strconv.Itoa(i) + ":"
		add(n+"path", l.Path)
		if l.Layer != nil {
			add(n+"layer:index", strconv.Itoa(l.Layer.Index))
			add(n+"layer:digest", l.Layer.Digest)
			add(n+"layer:diffID", l.Layer.DiffID)
		}
	}
	c.Properties = props(pr)
	return c
}

// licenses maps inventory licence strings to CycloneDX's licence choice,
// which is either a list of licences (each an SPDX id or a free-text name)
// or exactly one SPDX expression, never both. Lists of ids and names stay a
// list; a compound expression makes the whole set one expression when
// every entry is valid SPDX, and is written as a name otherwise so nothing
// is lost.
func licenses(in []string, lc sbom.LicenseCache) *cdx.Licenses {
	var parsed []sbom.License
	compound, allSPDX := false, true
	for _, s := range in {
		l := lc.Parse(s)
		switch l.Kind {
		case sbom.LicenseNone:
			continue
		case sbom.LicenseID:
			if !cdxLicenseIDs[l.Text] {
				// Newer than the CycloneDX 1.6 list: valid SPDX, but only
				// as an expression.
				l.Kind = sbom.LicenseExpression
				compound = true
			}
		case sbom.LicenseExpression:
			compound = true
		case sbom.LicenseName:
			allSPDX = false
		}
		parsed = append(parsed, l)
	}
	if len(parsed) == 0 {
		return nil
	}
	if compound && allSPDX {
		exprs := make([]string, len(parsed))
		for i, l := range parsed {
			exprs[i] = l.Text
		}
		return &cdx.Licenses{{Expression: sbom.JoinAnd(exprs)}}
	}
	out := make(cdx.Licenses, 0, len(parsed))
	for _, l := range parsed {
		if l.Kind == sbom.LicenseID {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{ID: l.Text}})
		} else {
			out = append(out, cdx.LicenseChoice{License: &cdx.License{Name: l.Text}})
		}
	}
	return &out
}

func props(p []cdx.Property) *[]cdx.Property {
	if len(p) == 0 {
		return nil
	}
	return &p
}
