// Package compare tells what changed between two scanned images: packages,
// vulnerabilities, configuration and size.
package compare

import (
	"fmt"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// Side is one scanned image.
type Side struct {
	Inventory *inventory.Inventory
	// Findings are its vulnerability findings (suppressed ones are ignored).
	Findings []finding.Finding
	// Config is the image configuration (nil for a directory).
	Config *v1.ConfigFile
}

// Package is one package in a change list.
type Package struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl,omitempty"`
}

// Change is a package present in both images at different versions.
type Change struct {
	Type   string   `json:"type"`
	Name   string   `json:"name"`
	Before []string `json:"before"`
	After  []string `json:"after"`
}

// Vuln is one vulnerability of one package.
type Vuln struct {
	ID       string           `json:"id"`
	Severity finding.Severity `json:"severity"`
	Package  string           `json:"package"`
	Type     string           `json:"type"`
	Version  string           `json:"version"`
	Fixed    []string         `json:"fixedVersions,omitempty"`
	Aliases  []string         `json:"aliases,omitempty"`
	Title    string           `json:"title,omitempty"`
}

// ConfigChange is one configuration field that differs. Environment
// variables are named, never valued: values often hold secrets.
type ConfigChange struct {
	Field  string `json:"field"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Diff is what changed from image A to image B.
type Diff struct {
	A string `json:"a"`
	B string `json:"b"`

	PackagesAdded   []Package `json:"packagesAdded"`
	PackagesRemoved []Package `json:"packagesRemoved"`
	PackagesChanged []Change  `json:"packagesChanged"`

	// VulnsFixed are in A and not in B; VulnsIntroduced in B and not in A.
	// A vulnerability is one id in one package (type and name): an
	// upgrade that leaves it open neither fixes nor introduces it.
	VulnsFixed      []Vuln `json:"vulnerabilitiesFixed"`
	VulnsIntroduced []Vuln `json:"vulnerabilitiesIntroduced"`

	Config []ConfigChange `json:"configChanges"`

	SizeA     int64 `json:"sizeA"`
	SizeB     int64 `json:"sizeB"`
	SizeDelta int64 `json:"sizeDelta"`

	OSA string `json:"osA,omitempty"`
	OSB string `json:"osB,omitempty"`
}

// Compare diffs two scanned images.
func Compare(a, b Side) *Diff {
	d := &Diff{
		A: a.Inventory.Target.Name, B: b.Inventory.Target.Name,
		SizeA: a.Inventory.Target.Size, SizeB: b.Inventory.Target.Size,
		OSA: osName(a.Inventory.OS), OSB: osName(b.Inventory.OS),
		PackagesAdded: []Package{}, PackagesRemoved: []Package{}, PackagesChanged: []Change{},
		VulnsFixed: []Vuln{}, VulnsIntroduced: []Vuln{}, Config: []ConfigChange{},
	}
	d.SizeDelta = d.SizeB - d.SizeA
	d.packages(a.Inventory.Packages, b.Inventory.Packages)
	d.vulns(a.Findings, b.Findings)
	d.Config = Config(a.Config, b.Config)
	if d.OSA != d.OSB {
		d.Config = append([]ConfigChange{{Field: "os", Before: d.OSA, After: d.OSB}}, d.Config...)
	}
	return d
}

func osName(o *inventory.OS) string {
	if o == nil {
		return ""
	}
	return strings.TrimSpace(o.ID + " " + o.VersionID)
}

// pkgKey identifies a package across images: its type and name (the arch
// only matters when two arches sit side by side, which a version change
// never makes).
func pkgKey(p *inventory.Package) string { return p.Type + "\x00" + p.Name }

func (d *Diff) packages(a, b []inventory.Package) {
	type group struct {
		typ, name string
		versions  map[string]*inventory.Package
	}
	collect := func(ps []inventory.Package) map[string]*group {
		out := map[string]*group{}
		for i := range ps {
			p := &ps[i]
			g := out[pkgKey(p)]
			if g == nil {
				g = &group{typ: p.Type, name: p.Name, versions: map[string]*inventory.Package{}}
				out[pkgKey(p)] = g
			}
			g.versions[p.Version] = p
		}
		return out
	}
	ga, gb := collect(a), collect(b)
	for k, g := range ga {
		h, ok := gb[k]
		if !ok {
			for _, p := range g.versions {
				d.PackagesRemoved = append(d.PackagesRemoved, Package{Type: p.Type, Name: p.Name, Version: p.Version, PURL: p.PURL})
			}
			continue
		}
		before, after := versions(g.versions), versions(h.versions)
		if strings.Join(before, "\x00") != strings.Join(after, "\x00") {
			d.PackagesChanged = append(d.PackagesChanged, Change{Type: g.typ, Name: g.name, Before: before, After: after})
		}
	}
	for k, h := range gb {
		if _, ok := ga[k]; !ok {
			for _, p := range h.versions {
				d.PackagesAdded = append(d.PackagesAdded, Package{Type: p.Type, Name: p.Name, Version: p.Version, PURL: p.PURL})
			}
		}
	}
	sortPkgs := func(ps []Package) {
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
	sortPkgs(d.PackagesAdded)
	sortPkgs(d.PackagesRemoved)
	sort.Slice(d.PackagesChanged, func(i, j int) bool {
		if d.PackagesChanged[i].Type != d.PackagesChanged[j].Type {
			return d.PackagesChanged[i].Type < d.PackagesChanged[j].Type
		}
		return d.PackagesChanged[i].Name < d.PackagesChanged[j].Name
	})
}

func versions(m map[string]*inventory.Package) []string {
	out := make([]string, 0, len(m))
	for v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

func vulnKey(f *finding.Finding) string {
	if f.Package == nil {
		return f.ID
	}
	return f.ID + "\x00" + f.Package.Type + "\x00" + f.Package.Name
}

func (d *Diff) vulns(a, b []finding.Finding) {
	index := func(fs []finding.Finding) map[string]*finding.Finding {
		out := map[string]*finding.Finding{}
		for i := range fs {
			f := &fs[i]
			if f.Kind != finding.KindVulnerability || f.Suppressed != nil {
				continue
			}
			k := vulnKey(f)
			if o, ok := out[k]; !ok || f.Severity > o.Severity {
				out[k] = f
			}
		}
		return out
	}
	ia, ib := index(a), index(b)
	for k, f := range ia {
		if _, ok := ib[k]; !ok {
			d.VulnsFixed = append(d.VulnsFixed, vuln(f))
		}
	}
	for k, f := range ib {
		if _, ok := ia[k]; !ok {
			d.VulnsIntroduced = append(d.VulnsIntroduced, vuln(f))
		}
	}
	sortVulns(d.VulnsFixed)
	sortVulns(d.VulnsIntroduced)
}

func vuln(f *finding.Finding) Vuln {
	v := Vuln{ID: f.ID, Severity: f.Severity, Fixed: f.FixedVersions, Aliases: f.Aliases, Title: f.Title}
	if f.Package != nil {
		v.Package, v.Type, v.Version = f.Package.Name, f.Package.Type, f.Package.Version
	}
	return v
}

func sortVulns(vs []Vuln) {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Severity != vs[j].Severity {
			return vs[i].Severity > vs[j].Severity
		}
		if vs[i].Package != vs[j].Package {
			return vs[i].Package < vs[j].Package
		}
		return vs[i].ID < vs[j].ID
	})
}

// IntroducedAtLeast returns the introduced vulnerabilities of at least sev.
func (d *Diff) IntroducedAtLeast(sev finding.Severity) []Vuln {
	var out []Vuln
	for _, v := range d.VulnsIntroduced {
		if v.Severity >= sev {
			out = append(out, v)
		}
	}
	return out
}

// Config lists the configuration changes that matter to security and
// operation: user, exposed ports, environment variable names (added,
// removed, and those whose value changed — the values are not shown),
// entrypoint, command, working directory and volumes.
func Config(a, b *v1.ConfigFile) []ConfigChange {
	var ca, cb v1.Config
	if a != nil {
		ca = a.Config
	}
	if b != nil {
		cb = b.Config
	}
	var out []ConfigChange
	// Values are compared raw and shown redacted (secret.RedactValue), as
	// everywhere a report repeats the image config.
	add := func(field, before, after string) {
		if before != after {
			out = append(out, ConfigChange{Field: field, Before: secret.RedactValue("", before), After: secret.RedactValue("", after)})
		}
	}
	add("user", ca.User, cb.User)
	add("exposedPorts", strings.Join(setKeys(ca.ExposedPorts), " "), strings.Join(setKeys(cb.ExposedPorts), " "))
	envA, envB := envMap(ca.Env), envMap(cb.Env)
	var added, removed, changed []string
	for k, v := range envB {
		if ov, ok := envA[k]; !ok {
			added = append(added, k)
		} else if ov != v {
			changed = append(changed, k)
		}
	}
	for k := range envA {
		if _, ok := envB[k]; !ok {
			removed = append(removed, k)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	if len(added) > 0 {
		out = append(out, ConfigChange{Field: "env added", After: strings.Join(added, " ")})
	}
	if len(removed) > 0 {
		out = append(out, ConfigChange{Field: "env removed", Before: strings.Join(removed, " ")})
	}
	if len(changed) > 0 {
		out = append(out, ConfigChange{Field: "env value changed", Before: strings.Join(changed, " "), After: strings.Join(changed, " ")})
	}
	add("entrypoint", argv(ca.Entrypoint), argv(cb.Entrypoint))
	add("cmd", argv(ca.Cmd), argv(cb.Cmd))
	add("workingDir", ca.WorkingDir, cb.WorkingDir)
	add("volumes", strings.Join(setKeys(ca.Volumes), " "), strings.Join(setKeys(cb.Volumes), " "))
	add("stopSignal", ca.StopSignal, cb.StopSignal)
	return out
}

func setKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func envMap(env []string) map[string]string {
	out := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		out[k] = v
	}
	return out
}

// argv writes an exec-form command as JSON-ish text, empty for none.
func argv(a []string) string {
	if len(a) == 0 {
		return ""
	}
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Empty reports whether nothing changed.
func (d *Diff) Empty() bool {
	return len(d.PackagesAdded)+len(d.PackagesRemoved)+len(d.PackagesChanged)+len(d.VulnsFixed)+len(d.VulnsIntroduced)+len(d.Config) == 0 && d.SizeDelta == 0
}
