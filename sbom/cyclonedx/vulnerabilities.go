package cyclonedx

import (
	"fmt"
	"io"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// EncodeWithVulnerabilities writes the inventory as CycloneDX 1.6 with a
// vulnerabilities section: one entry per advisory, affecting the components
// it was found in, with ratings, fixed versions as recommendation, and the
// VEX or ignore-file analysis of suppressed findings.
func EncodeWithVulnerabilities(w io.Writer, inv *inventory.Inventory, fs []finding.Finding, opts Options) error {
	d, err := build(inv, opts)
	if err != nil {
		return err
	}
	// The refs of the packages that have findings, only: a map of every
	// package's key would hold the inventory's strings a second time.
	refOf := map[string]string{}
	for _, f := range fs {
		if f.Kind == finding.KindVulnerability && f.Package != nil {
			refOf[pkgKey(f.Package.PURL, f.Package.Path, f.Package.Name, f.Package.Version)] = ""
		}
	}
	if len(refOf) > 0 {
		// Later packages win, as when the map was filled in order.
		for i := range inv.Packages {
			p := &inv.Packages[i]
			k := pkgKey(p.PURL, firstPath(p), p.Name, p.Version)
			if _, ok := refOf[k]; ok {
				refOf[k] = d.refs[i]
			}
		}
	}
	byID := map[string]*cdx.Vulnerability{}
	var order []string
	for _, f := range fs {
		if f.Kind != finding.KindVulnerability || f.Package == nil {
			continue
		}
		ref := refOf[pkgKey(f.Package.PURL, f.Package.Path, f.Package.Name, f.Package.Version)]
		if ref == "" {
			continue
		}
		v, ok := byID[f.ID]
		if !ok {
			v = newVulnerability(f)
			byID[f.ID] = v
			order = append(order, f.ID)
		}
		affects := append(*v.Affects, cdx.Affects{Ref: ref, Range: &[]cdx.AffectedVersions{{Version: f.Package.Version, Status: cdx.VulnerabilityStatusAffected}}})
		v.Affects = &affects
		if len(f.FixedVersions) > 0 {
			rec := fmt.Sprintf("Upgrade %s to %s.", f.Package.Name, strings.Join(f.FixedVersions, " or "))
			if v.Recommendation == "" {
				v.Recommendation = rec
			} else if !strings.Contains(v.Recommendation, rec) {
				v.Recommendation += " " + rec
			}
		}
		if f.Suppressed != nil && v.Analysis == nil {
			v.Analysis = analysis(f.Suppressed)
		}
	}
	sort.Strings(order)
	vulns := make([]cdx.Vulnerability, 0, len(order))
	for _, id := range order {
		vulns = append(vulns, *byID[id])
	}
	if len(vulns) > 0 {
		d.bom.Vulnerabilities = &vulns
	}
	return d.write(w)
}

func pkgKey(purl, path, name, version string) string {
	return purl + "\x00" + path + "\x00" + name + "\x00" + version
}

func firstPath(p *inventory.Package) string {
	if len(p.Locations) == 0 {
		return ""
	}
	return p.Locations[0].Path
}

func newVulnerability(f finding.Finding) *cdx.Vulnerability {
	v := &cdx.Vulnerability{
		BOMRef:      "bulkhead:vulnerability:" + f.ID,
		ID:          f.ID,
		Source:      source(f.ID),
		Description: f.Title,
		Detail:      f.Description,
		Affects:     &[]cdx.Affects{},
	}
	var refs []cdx.VulnerabilityReference
	for _, a := range f.Aliases {
		refs = append(refs, cdx.VulnerabilityReference{ID: a, Source: source(a)})
	}
	if len(refs) > 0 {
		v.References = &refs
	}
	var ratings []cdx.VulnerabilityRating
	for _, c := range f.CVSS {
		score := c.Score
		r := cdx.VulnerabilityRating{Score: &score, Vector: c.Vector, Severity: severity(f.Severity), Method: cvssMethod(c.Version)}
		if c.Source != "" {
			r.Source = &cdx.Source{Name: c.Source}
		}
		ratings = append(ratings, r)
	}
	if len(ratings) == 0 {
		ratings = append(ratings, cdx.VulnerabilityRating{Severity: severity(f.Severity), Method: cdx.ScoringMethodOther, Justification: f.SeveritySource})
	}
	v.Ratings = &ratings
	var adv []cdx.Advisory
	for _, r := range f.References {
		adv = append(adv, cdx.Advisory{URL: r})
	}
	if len(adv) > 0 {
		v.Advisories = &adv
	}
	return v
}

func source(id string) *cdx.Source {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		return &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/" + id}
	case strings.HasPrefix(id, "GHSA-"):
		return &cdx.Source{Name: "GitHub", URL: "https://github.com/advisories/" + id}
	}
	return &cdx.Source{Name: "OSV", URL: "https://osv.dev/vulnerability/" + id}
}

func severity(s finding.Severity) cdx.Severity {
	switch s {
	case finding.Critical:
		return cdx.SeverityCritical
	case finding.High:
		return cdx.SeverityHigh
	case finding.Medium:
		return cdx.SeverityMedium
	case finding.Low:
		return cdx.SeverityLow
	}
	return cdx.SeverityUnknown
}

func cvssMethod(version string) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(version, "4"):
		return cdx.ScoringMethodCVSSv4
	case strings.HasPrefix(version, "3.1"):
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(version, "3"):
		return cdx.ScoringMethodCVSSv3
	case strings.HasPrefix(version, "2"):
		return cdx.ScoringMethodCVSSv2
	}
	return cdx.ScoringMethodOther
}

// analysis maps a VEX or ignore suppression onto CycloneDX's impact
// analysis.
func analysis(s *finding.Suppression) *cdx.VulnerabilityAnalysis {
	a := &cdx.VulnerabilityAnalysis{Detail: strings.TrimSpace(s.Statement + " " + s.Source)}
	switch s.Status {
	case "not_affected":
		a.State = cdx.IASNotAffected
	case "fixed":
		a.State = cdx.IASResolved
	default:
		a.State = cdx.IASFalsePositive
		if s.Kind == "ignore" {
			a.State = cdx.ImpactAnalysisState("not_affected")
		}
	}
	// OpenVEX justifications -> CycloneDX justifications.
	switch s.Justification {
	case "component_not_present", "vulnerable_code_not_present":
		a.Justification = cdx.IAJCodeNotPresent
	case "vulnerable_code_not_in_execute_path", "vulnerable_code_cannot_be_controlled_by_adversary":
		a.Justification = cdx.IAJCodeNotReachable
	case "inline_mitigations_already_exist":
		a.Justification = cdx.IAJProtectedByMitigatingControl
	}
	if s.Kind == "ignore" && a.Detail == "" {
		a.Detail = "ignored by " + s.Source
	}
	return a
}
