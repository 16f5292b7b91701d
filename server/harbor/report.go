package harbor

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/internal/jsonstream"
	"github.com/bulkhead-sec/bulkhead/sbom"
	"github.com/bulkhead-sec/bulkhead/sbom/cyclonedx"
	"github.com/bulkhead-sec/bulkhead/sbom/spdx"
)

// VulnerabilityReport is the spec's HarborVulnerabilityReport.
type VulnerabilityReport struct {
	GeneratedAt     time.Time           `json:"generated_at"`
	Artifact        Artifact            `json:"artifact"`
	Scanner         Scanner             `json:"scanner"`
	Severity        string              `json:"severity"`
	Vulnerabilities []VulnerabilityItem `json:"vulnerabilities"`
}

// VulnerabilityItem is the spec's VulnerabilityItem.
type VulnerabilityItem struct {
	ID               string         `json:"id"`
	Package          string         `json:"package"`
	Version          string         `json:"version"`
	FixVersion       string         `json:"fix_version,omitempty"`
	Severity         string         `json:"severity"`
	Description      string         `json:"description,omitempty"`
	Links            []string       `json:"links,omitempty"`
	PreferredCVSS    *CVSSDetails   `json:"preferred_cvss,omitempty"`
	CWEIDs           []string       `json:"cwe_ids,omitempty"`
	VendorAttributes map[string]any `json:"vendor_attributes,omitempty"`
}

// CVSSDetails is the spec's CVSSDetails.
type CVSSDetails struct {
	ScoreV3  *float64 `json:"score_v3,omitempty"`
	ScoreV2  *float64 `json:"score_v2,omitempty"`
	VectorV3 string   `json:"vector_v3,omitempty"`
	VectorV2 string   `json:"vector_v2,omitempty"`
}

// Severity is bulkhead's severity in the spec's names (Unknown, Low,
// Medium, High, Critical; bulkhead has no Negligible, it reads it as Low).
func Severity(s finding.Severity) string {
	switch s {
	case finding.Low:
		return "Low"
	case finding.Medium:
		return "Medium"
	case finding.High:
		return "High"
	case finding.Critical:
		return "Critical"
	}
	return "Unknown"
}

// writeVulnerabilityReport writes a scan's vulnerability findings as
// Harbor's report, one item at a time (jsonstream), so that a scan with
// very many findings is not held in memory a second time. Suppressed
// findings (the server's ignore file or VEX) are left out, as they are from
// a gate's count; secrets and misconfigurations have no place in it. The
// report's severity is the highest of its items.
func writeVulnerabilityReport(w io.Writer, res *Result, sc Scanner) error {
	top := finding.Unknown
	for i := range res.Findings {
		if f := &res.Findings[i]; reported(f) {
			top = max(top, f.Severity)
		}
	}
	skel := VulnerabilityReport{GeneratedAt: res.ScannedAt.UTC(), Artifact: res.Artifact, Scanner: sc,
		Severity: Severity(top), Vulnerabilities: []VulnerabilityItem{}}
	return jsonstream.Write(w, skel, jsonstream.Slot{Key: "vulnerabilities", Depth: 1, Each: func(emit func(any) error) error {
		for i := range res.Findings {
			if f := &res.Findings[i]; reported(f) {
				if err := emit(vulnerabilityItem(f)); err != nil {
					return err
				}
			}
		}
		return nil
	}})
}

func reported(f *finding.Finding) bool {
	return f.Kind == finding.KindVulnerability && f.Suppressed == nil
}

func vulnerabilityItem(f *finding.Finding) VulnerabilityItem {
	it := VulnerabilityItem{ID: f.ID, Severity: Severity(f.Severity), Description: f.Description,
		FixVersion: strings.Join(f.FixedVersions, ", ")}
	if it.Description == "" {
		it.Description = f.Title
	}
	va := map[string]any{}
	if f.Package != nil {
		it.Package, it.Version = f.Package.Name, f.Package.Version
		setNonEmpty(va, "package_type", f.Package.Type)
		setNonEmpty(va, "purl", f.Package.PURL)
		setNonEmpty(va, "ecosystem", f.Package.Ecosystem)
		setNonEmpty(va, "source_package", f.Package.Source)
		setNonEmpty(va, "path", f.Package.Path)
		if f.Package.Layer != nil {
			setNonEmpty(va, "layer_digest", f.Package.Layer.Digest)
			setNonEmpty(va, "layer_diff_id", f.Package.Layer.DiffID)
		}
	}
	for _, ref := range f.References {
		if u, err := url.Parse(ref); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			it.Links = append(it.Links, ref)
		}
	}
	// Harbor's console reads vendor_attributes.CVSS.<source>.V3Score /
	// V3Vector (as Trivy's adapter writes them); the preferred score is
	// the first v3 (then v2) vector, in the order the match ranked them.
	cvss := map[string]map[string]any{}
	for _, c := range f.CVSS {
		src := strings.ToLower(c.Source)
		if src == "" {
			src = "nvd"
		}
		m := cvss[src]
		if m == nil {
			m = map[string]any{}
			cvss[src] = m
		}
		score := c.Score
		switch {
		case strings.HasPrefix(c.Version, "3"):
			if _, ok := m["V3Vector"]; !ok {
				m["V3Vector"], m["V3Score"] = c.Vector, c.Score
			}
			if it.PreferredCVSS == nil {
				it.PreferredCVSS = &CVSSDetails{}
			}
			if it.PreferredCVSS.VectorV3 == "" {
				it.PreferredCVSS.VectorV3, it.PreferredCVSS.ScoreV3 = c.Vector, &score
			}
		case strings.HasPrefix(c.Version, "2"):
			if _, ok := m["V2Vector"]; !ok {
				m["V2Vector"], m["V2Score"] = c.Vector, c.Score
			}
			if it.PreferredCVSS == nil {
				it.PreferredCVSS = &CVSSDetails{}
			}
			if it.PreferredCVSS.VectorV2 == "" {
				it.PreferredCVSS.VectorV2, it.PreferredCVSS.ScoreV2 = c.Vector, &score
			}
		case strings.HasPrefix(c.Version, "4"):
			if _, ok := m["V40Vector"]; !ok {
				m["V40Vector"], m["V40Score"] = c.Vector, c.Score
			}
		}
	}
	if len(cvss) > 0 {
		va["CVSS"] = cvss
	}
	if len(f.Aliases) > 0 {
		va["aliases"] = f.Aliases
	}
	setNonEmpty(va, "severity_source", f.SeveritySource)
	setNonEmpty(va, "status", f.Status)
	setNonEmpty(va, "fix", f.Fix)
	if len(va) > 0 {
		it.VendorAttributes = va
	}
	return it
}

func setNonEmpty(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// SBOMReport is the spec's HarborSbomReport.
type SBOMReport struct {
	GeneratedAt      time.Time       `json:"generated_at"`
	Artifact         Artifact        `json:"artifact"`
	Scanner          Scanner         `json:"scanner"`
	VendorAttributes map[string]any  `json:"vendor_attributes,omitempty"`
	MediaType        string          `json:"media_type"`
	SBOM             json.RawMessage `json:"sbom,omitempty"`
}

// writeSBOMReport writes the scan's inventory with bulkhead's CycloneDX
// 1.6 or SPDX 2.3 writer inside Harbor's SBOM report. The writers stream
// (their memory is the inventory's, not the document's), and so does
// this: the report's other fields, then the document as the writer
// writes it, then the closing brace.
func writeSBOMReport(w io.Writer, res *Result, sc Scanner, mediaType string) error {
	if res.Inventory == nil {
		return fmt.Errorf("the scan kept no inventory")
	}
	opts := sbom.Options{ToolVersion: sc.Version, Now: func() time.Time { return res.ScannedAt }}
	encode, format := spdx.Encode, "spdx"
	switch mediaType {
	case SBOMCycloneDX:
		encode, format = cyclonedx.Encode, "cyclonedx"
	case SBOMSPDX:
	default:
		return fmt.Errorf("unknown SBOM media type %q", mediaType)
	}
	head, err := json.Marshal(SBOMReport{GeneratedAt: res.ScannedAt.UTC(), Artifact: res.Artifact, Scanner: sc, MediaType: mediaType,
		VendorAttributes: map[string]any{"format": format, "packages": len(res.Inventory.Packages)}})
	if err != nil {
		return err
	}
	// head is {...} without "sbom": open it again for the document.
	head = append(head[:len(head)-1], `,"sbom":`...)
	pw := &prefixWriter{w: w, prefix: head}
	if err := encode(pw, res.Inventory, opts); err != nil {
		return err
	}
	if !pw.done {
		return fmt.Errorf("the %s writer wrote nothing", format)
	}
	_, err = io.WriteString(w, "}\n")
	return err
}

// prefixWriter writes prefix before the first bytes, so that nothing is
// written when the writer fails before it starts (the handler can still
// answer 500).
type prefixWriter struct {
	w      io.Writer
	prefix []byte
	done   bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	if !p.done {
		p.done = true
		if _, err := p.w.Write(p.prefix); err != nil {
			return 0, err
		}
	}
	return p.w.Write(b)
}
