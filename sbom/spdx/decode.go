package spdx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	v23 "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/bulkhead-sec/bulkhead/diag"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/sbom"
)

// FoundBy is the FoundBy of packages read from an SPDX document.
const FoundBy = "sbom-spdx"

// Decode reads an SPDX 2.1–2.3 JSON document into an inventory. The
// described container package becomes the target, an OPERATING-SYSTEM
// package the OS (or the OS named by the purls' distro qualifier), and
// every other package a package, typed and versioned by its purl external
// reference when it has one. Documents larger than sbom.MaxSize are refused.
func Decode(r io.Reader) (*inventory.Inventory, error) {
	b, err := sbom.ReadAll(r, "SPDX")
	if err != nil {
		return nil, err
	}
	var head map[string]json.RawMessage
	if err := json.Unmarshal(b, &head); err != nil {
		if t := bytes.TrimSpace(b); len(t) > 0 && !bytes.HasPrefix(t, []byte("{")) {
			return nil, fmt.Errorf("read SPDX: not a JSON document (bulkhead reads SPDX JSON; convert tag-value or RDF with the SPDX tools)")
		}
		return nil, fmt.Errorf("read SPDX: not a JSON document: %w", err)
	}
	if _, ok := head["spdxVersion"]; !ok {
		if _, ok := head["@context"]; ok {
			return nil, fmt.Errorf("read SPDX: this looks like SPDX 3 JSON-LD; bulkhead reads SPDX 2.x JSON")
		}
		return nil, fmt.Errorf("read SPDX: no spdxVersion: is this an SPDX JSON document?")
	}
	doc, err := read(b)
	if err != nil {
		return nil, fmt.Errorf("read SPDX document: %w", err)
	}
	return fromDocument(doc), nil
}

// read parses with tools-golang, turning its panics into errors: it
// dereferences null array entries ("packages": [null]) while unmarshalling.
func read(b []byte) (doc *v23.Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("malformed document (SPDX library: %v)", r)
		}
	}()
	return spdxjson.Read(bytes.NewReader(b))
}

func fromDocument(doc *v23.Document) *inventory.Inventory {
	inv := &inventory.Inventory{Target: inventory.Target{Name: doc.DocumentName, Source: "sbom"}, Packages: []inventory.Package{}}

	described := map[common.ElementID]bool{}
	for _, r := range doc.Relationships {
		if r == nil {
			continue
		}
		switch strings.ToUpper(r.Relationship) {
		case common.TypeRelationshipDescribe, "DESCRIBE": // trivy wrote DESCRIBE
			if r.RefA.ElementRefID == doc.SPDXIdentifier {
				described[r.RefB.ElementRefID] = true
			}
		case common.TypeRelationshipDescribeBy:
			if r.RefB.ElementRefID == doc.SPDXIdentifier {
				described[r.RefA.ElementRefID] = true
			}
		}
	}
	extracted := map[string]string{}
	for _, o := range doc.OtherLicenses {
		if o == nil {
			continue
		}
		switch {
		case o.LicenseName != "" && o.LicenseName != noAssertion:
			extracted[o.LicenseIdentifier] = o.LicenseName
		case o.ExtractedText != "" && len(o.ExtractedText) <= 200 && !strings.Contains(o.ExtractedText, "\n"):
			extracted[o.LicenseIdentifier] = o.ExtractedText
		}
	}

	targetSet := false
	for _, p := range doc.Packages {
		if p == nil {
			continue
		}
		purl := purlOf(p)
		switch {
		case isOS(p):
			if inv.OS == nil {
				inv.OS = &inventory.OS{ID: strings.ToLower(p.PackageName), VersionID: p.PackageVersion, PrettyName: p.PackageDescription}
			}
		case p.PrimaryPackagePurpose == "CONTAINER" || described[p.PackageSPDXIdentifier] && isTarget(p, purl):
			if !targetSet && described[p.PackageSPDXIdentifier] {
				targetSet = true
				setTarget(&inv.Target, p)
			}
		default:
			inv.Packages = append(inv.Packages, pkg2(p, purl, extracted, inv))
		}
	}
	if inv.OS == nil {
		inv.OS = sbom.OSFromPURLs(inv.Packages)
	}
	return inv
}

func isOS(p *v23.Package) bool {
	// trivy marks the OS by SPDXID only.
	return p.PrimaryPackagePurpose == "OPERATING_SYSTEM" || p.PrimaryPackagePurpose == "OPERATING-SYSTEM" || strings.HasPrefix(string(p.PackageSPDXIdentifier), "OperatingSystem-")
}

// isTarget tells the scanned image or directory from a package that a
// document happens to describe (the SPDX example describes glibc): an image
// has an oci/docker purl, or no purl and no version at all (trivy).
func isTarget(p *v23.Package, purl string) bool {
	if purl == "" {
		return p.PackageVersion == "" || strings.HasPrefix(p.PackageVersion, "sha256:")
	}
	return strings.HasPrefix(purl, "pkg:oci/") || strings.HasPrefix(purl, "pkg:docker/")
}

func setTarget(t *inventory.Target, p *v23.Package) {
	t.Name = p.PackageName
	if strings.HasPrefix(p.PackageVersion, "sha256:") {
		t.Digest = p.PackageVersion
	}
	for _, c := range p.PackageChecksums {
		if t.Digest == "" && c.Algorithm == common.SHA256 && c.Value != "" {
			t.Digest = "sha256:" + c.Value
		}
	}
}

func purlOf(p *v23.Package) string {
	for _, r := range p.PackageExternalReferences {
		if r != nil && strings.EqualFold(r.RefType, common.TypePackageManagerPURL) && r.Category == common.CategoryPackageManager {
			return r.Locator
		}
	}
	return ""
}

func pkg2(sp *v23.Package, purl string, extracted map[string]string, inv *inventory.Inventory) inventory.Package {
	var p inventory.Package
	if purl != "" {
		fp, err := sbom.FromPURL(purl)
		if err != nil {
			inv.Diagnose(diag.Warnf(diag.SBOMBadPURL, "package %q: %v (kept without purl)", sp.PackageName, err).At(diag.Location{Object: sp.PackageName}))
		} else {
			p = fp
		}
	}
	if sp.PackageName != "" {
		p.Name = sp.PackageName
	}
	if p.Version == "" {
		p.Version = sp.PackageVersion
	}
	p.FoundBy = FoundBy
	lic := sp.PackageLicenseDeclared
	if !meaningful(lic) {
		lic = sp.PackageLicenseConcluded
	}
	if meaningful(lic) {
		for _, l := range sbom.SplitAnd(lic) {
			if name, ok := extracted[l]; ok {
				l = name
			}
			p.Licenses = append(p.Licenses, l)
		}
	}
	switch {
	case sp.PackageSupplier != nil && meaningful(sp.PackageSupplier.Supplier):
		p.Maintainer = maintainer(sp.PackageSupplier.Supplier)
	case sp.PackageOriginator != nil && meaningful(sp.PackageOriginator.Originator):
		p.Maintainer = maintainer(sp.PackageOriginator.Originator)
	}
	return p
}

func meaningful(s string) bool {
	s = strings.TrimSpace(s)
	return s != "" && s != noAssertion && s != "NONE"
}

// maintainer turns the SPDX agent form "name (email)" back into the
// "name <email>" form package managers write.
func maintainer(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, ")") {
		if i := strings.LastIndexByte(s, '('); i > 0 {
			email := s[i+1 : len(s)-1]
			if strings.Contains(email, "@") {
				return strings.TrimSpace(s[:i]) + " <" + email + ">"
			}
		}
	}
	return s
}
