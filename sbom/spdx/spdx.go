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
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	v23 "github.com/spdx/tools-golang/spdx/v2/v2_3"

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
	doc, err := build(inv, opts)
	if err != nil {
		return err
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return fmt.Errorf("write SPDX document: %w", err)
	}
	return nil
}

func build(inv *inventory.Inventory, opts Options) (*v23.Document, error) {
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
	doc.Packages = append(doc.Packages, root)
	rel := func(a common.ElementID, typ string, b common.ElementID) {
		doc.Relationships = append(doc.Relationships, &v23.Relationship{
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
		doc.Packages = append(doc.Packages, p)
		rel(root.PackageSPDXIdentifier, common.TypeRelationshipContains, p.PackageSPDXIdentifier)
	}

	lic := newLicenses()
	for i := range inv.Packages {
		p := pkg(&inv.Packages[i], ids, lic)
		doc.Packages = append(doc.Packages, p)
		rel(root.PackageSPDXIdentifier, common.TypeRelationshipContains, p.PackageSPDXIdentifier)
	}
	doc.OtherLicenses = lic.others
	return doc, nil
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

func pkg(ip *inventory.Package, ids map[string]bool, lic *licenses) *v23.Package {
	id := "Package-" + idString(ip.Type+"-"+ip.Name) + "-" + sbom.PackageHash(ip)
	p := &v23.Package{
		PackageName:             ip.Name,
		PackageSPDXIdentifier:   uniqueID(ids, id),
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
