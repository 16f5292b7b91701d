// Package spdx writes an inventory as an SPDX 2.3 JSON document and reads
// SPDX 2.x JSON documents (bulkhead's, syft's, trivy's, any tool's) back
// into inventory packages through their purl external references.
//
// Layout of what Encode writes:
//   - the document DESCRIBES a root package for the image (purpose
//     CONTAINER, version = manifest digest, SHA256 checksum and pkg:oci
//     purl when known);
//   - the root CONTAINS an OPERATING-SYSTEM package and every package;
//   - each package has a purl external reference (PACKAGE-MANAGER), the
//     declared licence when the packager's string can be written as an
//     SPDX expression (free text becomes a LicenseRef- with its text in
//     hasExtractedLicensingInfos), NOASSERTION for the concluded licence
//     (bulkhead does not analyse files), and the maintainer as supplier
//     when it fits the "Person: name (email)" / "Organization: name" grammar.
package spdx

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/github/go-spdx/v2/spdxexp/spdxlicenses"
	"github.com/spdx/tools-golang/spdx/v2/common"
	v23 "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/bulkhead-sec/bulkhead/internal/jsonstream"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
)

// Options configure Encode.
type Options = sbom.Options

// NamespaceBase prefixes document namespaces. SPDX needs a unique absolute
// URI per document; it need not resolve.
const NamespaceBase = "https://bulkhead-sec.github.io/spdx/"

const noAssertion = "NOASSERTION"

// Encode writes inv as an SPDX 2.3 JSON document. Packages follow the order
// of inv.Packages (call inv.Sort first for stable output).
func Encode(w io.Writer, inv *inventory.Inventory, opts Options) error {
	d, err := build(inv, opts)
	if err != nil {
		return err
	}
	return d.write(w)
}

// streamDoc is an SPDX document to write: the skeleton holds the document's
// own fields, the root and OS packages and their relationships, and the
// licences the packages refer to; write encodes the inventory's packages
// and their CONTAINS relationships one at a time (see jsonstream), so that
// memory stays that of the inventory however many packages there are. The
// bytes are what tools-golang's spdxjson.Write gives for the whole
// document, indented by two spaces without HTML escaping.
type streamDoc struct {
	doc *v23.Document
	inv *inventory.Inventory
	// head are the packages and relationships before the inventory's.
	head    []*v23.Package
	headRel []*v23.Relationship
	root    common.ElementID
	ids     []common.ElementID // SPDX id of each inventory package
	lic     *licenses
}

func (d *streamDoc) write(w io.Writer) error {
	packages := jsonstream.Slot{Key: "packages", Depth: 1, Each: func(emit func(any) error) error {
		for _, p := range d.head {
			if err := emit(p); err != nil {
				return err
			}
		}
		for i := range d.inv.Packages {
			if err := emit(pkg(&d.inv.Packages[i], d.ids[i], d.lic)); err != nil {
				return err
			}
		}
		return nil
	}}
	relationships := jsonstream.Slot{Key: "relationships", Depth: 1, Each: func(emit func(any) error) error {
		for _, r := range d.headRel {
			if err := emit(r); err != nil {
				return err
			}
		}
		for _, id := range d.ids {
			if err := emit(contains(d.root, id)); err != nil {
				return err
			}
		}
		return nil
	}}
	slots := []jsonstream.Slot{packages, relationships}
	if len(d.lic.others) > 0 {
		// One per distinct free-text licence: as many as the packages
		// in a hostile database.
		slots = append(slots, jsonstream.Slot{Key: "hasExtractedLicensingInfos", Depth: 1, Each: func(emit func(any) error) error {
			for _, o := range d.lic.others {
				if err := emit(o); err != nil {
					return err
				}
			}
			return nil
		}})
	}
	if err := jsonstream.Write(w, d.doc, slots...); err != nil {
		return fmt.Errorf("write SPDX document: %w", err)
	}
	return nil
}

func contains(a, b common.ElementID) *v23.Relationship {
	return &v23.Relationship{RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: common.TypeRelationshipContains}
}

func build(inv *inventory.Inventory, opts Options) (*streamDoc, error) {
	if inv == nil {
		return nil, fmt.Errorf("encode SPDX: no inventory")
	}
	id, err := opts.UUID()
	if err != nil {
		return nil, err
	}
	t := &inv.Target
	name := t.Name
	if name == "" {
		name = "unknown"
	}
	ns := NamespaceBase + idString(sourceKind(t)) + "/" + idString(name)
	if h, ok := strings.CutPrefix(t.Digest, "sha256:"); ok && len(h) >= 12 {
		ns += "-" + h[:12]
	}
	ns += "-" + id.String()

	doc := &v23.Document{
		SPDXVersion:       v23.Version,
		DataLicense:       v23.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: ns,
		CreationInfo: &v23.CreationInfo{
			Creators: []common.Creator{
				{CreatorType: "Organization", Creator: "bulkhead-sec"},
				{CreatorType: "Tool", Creator: "bulkhead-" + opts.Version()},
			},
			Created:            opts.Time().Format(time.RFC3339),
			LicenseListVersion: licenseListVersion(),
		},
	}
	ids := map[string]bool{"DOCUMENT": true}

	root := rootPackage(t, name, ids)
	d := &streamDoc{doc: doc, inv: inv, root: root.PackageSPDXIdentifier, head: []*v23.Package{root}, lic: newLicenses()}
	rel := func(a common.ElementID, typ string, b common.ElementID) {
		d.headRel = append(d.headRel, &v23.Relationship{
			RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: typ,
		})
	}
	rel("DOCUMENT", common.TypeRelationshipDescribe, root.PackageSPDXIdentifier)

	if o := inv.OS; o != nil && o.ID != "" {
		p := &v23.Package{
			PackageName:             o.ID,
			PackageSPDXIdentifier:   uniqueID(ids, "OperatingSystem-"+idString(o.ID+"-"+o.VersionID)),
			PackageVersion:          o.VersionID,
			PackageDownloadLocation: noAssertion,
			PackageDescription:      o.PrettyName,
			PrimaryPackagePurpose:   "OPERATING_SYSTEM",
		}
		d.head = append(d.head, p)
		rel(root.PackageSPDXIdentifier, common.TypeRelationshipContains, p.PackageSPDXIdentifier)
	}

	// A first pass gives every package its id and defines the LicenseRef-
	// entries, which come after the packages in the document; write then
	// builds each package again, one at a time, from the same caches.
	d.ids = make([]common.ElementID, len(inv.Packages))
	for i := range inv.Packages {
		ip := &inv.Packages[i]
		d.ids[i] = uniqueID(ids, "Package-"+idString(ip.Type+"-"+ip.Name)+"-"+sbom.PackageHash(ip))
		d.lic.declared(ip.Licenses)
	}
	// Placeholders, for write to replace.
	if len(d.lic.others) > 0 {
		doc.OtherLicenses = d.lic.others[:1]
	}
	doc.Packages = []*v23.Package{root}
	doc.Relationships = d.headRel[:1]
	return d, nil
}

// licenseListVersion is the SPDX licence list the expressions were checked
// against, as "major.minor".
func licenseListVersion() string {
	v := spdxlicenses.LicenseListVersion()
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		return parts[0] + "." + parts[1]
	}
	return v
}

func sourceKind(t *inventory.Target) string {
	if t.Source == "" {
		return "image"
	}
	return t.Source
}

func rootPackage(t *inventory.Target, name string, ids map[string]bool) *v23.Package {
	p := &v23.Package{
		PackageName:             name,
		PackageSPDXIdentifier:   uniqueID(ids, "DocumentRoot-"+idString(sourceKind(t)+"-"+name)),
		PackageVersion:          t.Digest,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
	}
	if t.Source == "rootfs" || t.Source == "dir" {
		p.PrimaryPackagePurpose = "FILE"
	}
	if h, ok := strings.CutPrefix(t.Digest, "sha256:"); ok && h != "" {
		p.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: h}}
	}
	if u := sbom.ImagePURL(*t); u != "" {
		p.PackageExternalReferences = []*v23.PackageExternalReference{{
			Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: u,
		}}
	}
	return p
}

func pkg(ip *inventory.Package, id common.ElementID, lic *licenses) *v23.Package {
	p := &v23.Package{
		PackageName:             ip.Name,
		PackageSPDXIdentifier:   id,
		PackageVersion:          ip.Version,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  lic.declared(ip.Licenses),
		PackageSourceInfo:       sourceInfo(ip),
	}
	if ct, ok := sbom.ParseMaintainer(ip); ok {
		if typ, v, ok := ct.SPDX(); ok {
			p.PackageSupplier = &common.Supplier{SupplierType: typ, Supplier: v}
		}
	}
	if ip.PURL != "" {
		p.PackageExternalReferences = []*v23.PackageExternalReference{{
			Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: ip.PURL,
		}}
	}
	return p
}

// sourceInfo tells a reader where the package was found and what it was
// built from: SPDX has no fields for either.
func sourceInfo(p *inventory.Package) string {
	var parts []string
	for _, l := range p.Locations {
		s := "acquired package info from " + l.Path
		if p.FoundBy != "" {
			s = p.FoundBy + " " + s
		}
		if l.Layer != nil {
			s += fmt.Sprintf(" in layer %d", l.Layer.Index)
			if l.Layer.DiffID != "" {
				s += " (" + l.Layer.DiffID + ")"
			}
		}
		parts = append(parts, s)
	}
	if p.SourceName != "" {
		s := "built from source package " + p.SourceName
		if p.SourceVersion != "" {
			s += " " + p.SourceVersion
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// licenses turns inventory licence strings into SPDX declared licences,
// collecting the LicenseRef- entries the document must define.
type licenses struct {
	cache  sbom.LicenseCache
	refs   map[string]string // free text -> LicenseRef id
	used   map[string]bool
	others []*v23.OtherLicense
}

func newLicenses() *licenses {
	return &licenses{cache: sbom.LicenseCache{}, refs: map[string]string{}, used: map[string]bool{}}
}

// declared is the SPDX expression for a package's licences, all of which
// apply (joined with AND); NOASSERTION when there are none.
func (l *licenses) declared(in []string) string {
	var exprs []string
	for _, s := range in {
		pl := l.cache.Parse(s)
		switch pl.Kind {
		case sbom.LicenseNone:
			continue
		case sbom.LicenseName:
			exprs = append(exprs, l.ref(pl.Text))
		default:
			exprs = append(exprs, pl.Text)
		}
	}
	if len(exprs) == 0 {
		return noAssertion
	}
	return sbom.JoinAnd(exprs)
}

// ref returns the LicenseRef- id for a free-text licence, defining it the
// first time ("GPLv2+" becomes LicenseRef-GPLv2-plus).
func (l *licenses) ref(text string) string {
	if r, ok := l.refs[text]; ok {
		return r
	}
	base := "LicenseRef-" + idString(strings.ReplaceAll(text, "+", "-plus"))
	r := base
	for n := 2; l.used[r]; n++ {
		r = fmt.Sprintf("%s-%d", base, n)
	}
	l.used[r] = true
	l.refs[text] = r
	l.others = append(l.others, &v23.OtherLicense{
		LicenseIdentifier: r,
		ExtractedText:     text,
		LicenseName:       text,
		LicenseComment:    "licence named by the package manager, not an SPDX licence expression",
	})
	return r
}

// idString reduces s to SPDX's idstring alphabet [A-Za-z0-9.-].
func idString(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.'
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" {
		return "x"
	}
	return out
}

func uniqueID(ids map[string]bool, id string) common.ElementID {
	return common.ElementID(sbom.Unique(ids, id, "-"))
}
