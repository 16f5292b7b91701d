// Package finding is the one shape every scanner reports in —
// vulnerabilities, misconfigurations and secrets alike — so that every report
// format, the gate and the admission webhook serve them all.
package finding

import (
	"fmt"
	"strings"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Kind of finding.
type Kind string

const (
	KindVulnerability    Kind = "vulnerability"
	KindMisconfiguration Kind = "misconfiguration"
	KindSecret           Kind = "secret"
)

// Severity on one scale for every scanner.
type Severity int

const (
	Unknown Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

func (s Severity) String() string {
	if s < 0 || int(s) >= len(severityNames) {
		return "UNKNOWN"
	}
	return severityNames[s]
}

// ParseSeverity reads a severity name, case-insensitively ("moderate" is
// MEDIUM, "important" is HIGH, as distros write them).
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return Critical, nil
	case "HIGH", "IMPORTANT":
		return High, nil
	case "MEDIUM", "MODERATE":
		return Medium, nil
	case "LOW", "NEGLIGIBLE", "MINOR":
		return Low, nil
	case "UNKNOWN", "", "NONE":
		return Unknown, nil
	}
	return Unknown, fmt.Errorf("unknown severity %q (use CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN)", s)
}

// MarshalText writes the severity by name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	*s = v
	return err
}

// CVSS is one scored vector.
type CVSS struct {
	Version string  `json:"version"` // "3.1", "4.0", "2.0"
	Vector  string  `json:"vector"`
	Score   float64 `json:"score"`
	Source  string  `json:"source,omitempty"`
}

// Package names the package a vulnerability affects.
type Package struct {
	Name      string           `json:"name"`
	Version   string           `json:"version"`
	Type      string           `json:"type"`
	PURL      string           `json:"purl,omitempty"`
	Ecosystem string           `json:"ecosystem,omitempty"` // the OSV ecosystem matched ("Debian:12", "PyPI")
	Source    string           `json:"sourceName,omitempty"`
	Path      string           `json:"path,omitempty"` // the file the package was found in
	Layer     *inventory.Layer `json:"layer,omitempty"`
}

// Location is where a misconfiguration or secret sits.
type Location struct {
	Path      string           `json:"path"`
	StartLine int              `json:"startLine,omitempty"`
	EndLine   int              `json:"endLine,omitempty"`
	Layer     *inventory.Layer `json:"layer,omitempty"`
}

// Suppression says why a finding does not count: a VEX statement or an
// ignore-file entry.
type Suppression struct {
	Kind          string `json:"kind"` // "vex" or "ignore"
	Status        string `json:"status,omitempty"`
	Justification string `json:"justification,omitempty"`
	Statement     string `json:"statement,omitempty"`
	Source        string `json:"source,omitempty"` // the file
}

// Status of a vulnerability's fix.
const (
	StatusFixed    = "fixed"      // a fixed version exists
	StatusNoFixYet = "no-fix-yet" // affected, no fixed version published
)

// Finding is one result of any scanner.
type Finding struct {
	ID       string   `json:"id"`
	Kind     Kind     `json:"kind"`
	Aliases  []string `json:"aliases,omitempty"`
	Severity Severity `json:"severity"`
	// SeveritySource says where the rating came from ("CVSS v3.1 (NVD)",
	// "database_specific.severity", "Debian urgency", a check's own).
	SeveritySource string `json:"severitySource,omitempty"`
	CVSS           []CVSS `json:"cvss,omitempty"`

	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	Target      string `json:"target"`

	Package  *Package  `json:"package,omitempty"`
	Location *Location `json:"location,omitempty"`

	FixedVersions []string `json:"fixedVersions,omitempty"`
	Status        string   `json:"status,omitempty"`
	Fix           string   `json:"fix,omitempty"`
	References    []string `json:"references,omitempty"`

	Suppressed *Suppression `json:"suppressed,omitempty"`
}
