package base

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Matcher matches an inventory against the vulnerability database in use.
type Matcher func(ctx context.Context, inv *inventory.Inventory) ([]finding.Finding, error)

// Summary is one image's side of a recommendation, counted with the
// database in use.
type Summary struct {
	Ref             string         `json:"ref"`
	OS              string         `json:"os"`
	Libc            string         `json:"libc"`
	Size            int64          `json:"size"`
	Packages        int            `json:"packages"`
	Vulns           map[string]int `json:"vulnerabilities"`
	User            string         `json:"user,omitempty"`
	NonRoot         bool           `json:"nonRoot"`
	Shells          []string       `json:"shells,omitempty"`
	PackageManagers []string       `json:"packageManagers,omitempty"`
	Runtimes        []string       `json:"runtimes,omitempty"`
}

// Candidate is one other base and what moving to it gains or costs. Every
// delta is candidate minus current base.
type Candidate struct {
	Summary
	// VulnsRemoved and VulnsAdded count, by severity, the findings (one per
	// vulnerability and package) only the current base has and only the
	// candidate has; VulnsDelta is added minus removed, which is also the
	// difference of the two images' own counts.
	VulnsRemoved  map[string]int `json:"vulnerabilitiesRemoved"`
	VulnsAdded    map[string]int `json:"vulnerabilitiesAdded"`
	VulnsDelta    map[string]int `json:"vulnerabilitiesDelta"`
	SizeDelta     int64          `json:"sizeDelta"`
	PackagesDelta int            `json:"packagesDelta"`
	// Gains say in words what the move brings.
	Gains []string `json:"gains,omitempty"`
	// NeedsChanges says what the application or its build must change to
	// run on the candidate; empty: a drop-in replacement.
	NeedsChanges []string `json:"needsChanges,omitempty"`
	// Score ranks candidates: weighted vulnerabilities removed, then size
	// and hardening (see score).
	Score float64 `json:"score"`
}

// Recommendation ranks the catalog's other bases for an image.
type Recommendation struct {
	Image      string      `json:"image"`
	Detection  Detection   `json:"detection"`
	Current    Summary     `json:"currentBase"`
	Candidates []Candidate `json:"candidates"`
	// AppPackages counts, by type, the packages the image adds above its base.
	AppPackages map[string]int `json:"appPackages"`
}

// ErrNoBase is returned when the image's base is not in the catalog.
var ErrNoBase = errors.New("the image's base is not in the catalog")

// severityWeight ranks vulnerabilities removed: one critical outweighs
// several lows.
var severityWeight = map[string]float64{"CRITICAL": 10, "HIGH": 5, "MEDIUM": 2, "LOW": 1, "UNKNOWN": 1}

// runtimeOf is the runtime a package type needs to run.
var runtimeOf = map[string]string{
	inventory.TypePyPI:     "python",
	inventory.TypeNPM:      "node",
	inventory.TypeMaven:    "java",
	inventory.TypeGem:      "ruby",
	inventory.TypeComposer: "php",
	inventory.TypeNuGet:    "dotnet",
}

var osTypes = map[string]bool{inventory.TypeAPK: true, inventory.TypeDeb: true, inventory.TypeRPM: true}

// managerOf is the package manager family that installs a package type.
var managerOf = map[string][]string{
	inventory.TypeAPK: {"apk"},
	inventory.TypeDeb: {"apt", "dpkg"},
	inventory.TypeRPM: {"dnf", "microdnf", "yum", "rpm"},
}

// Recommend ranks the catalog's other bases for an image whose base was
// detected as det. app is the image's inventory (its packages' layers tell
// which the application added above the base). Both bases' vulnerabilities
// are matched with m, so the deltas are those of the two images' own scans
// with the same database.
func Recommend(ctx context.Context, c *Catalog, det Detection, app *inventory.Inventory, m Matcher) (*Recommendation, error) {
	if det.Base == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoBase, det.Reason)
	}
	cur := det.Base
	rec := &Recommendation{Image: app.Target.Name, Detection: det, AppPackages: map[string]int{}}
	appPkgs := appPackages(app, det.Layers)
	for _, p := range appPkgs {
		rec.AppPackages[p.Type]++
	}
	curFindings, err := m(ctx, cur.Inventory())
	if err != nil {
		return nil, fmt.Errorf("match the current base %s: %w", cur.Ref, err)
	}
	rec.Current = summary(cur, curFindings)
	curKeys := findingKeys(curFindings)
	skip := map[string]bool{cur.Ref: true}
	for _, a := range det.Aliases {
		skip[a] = true
	}
	for i := range c.Entries {
		e := &c.Entries[i]
		if skip[e.Ref] || (len(e.DiffIDs) > 0 && equal(e.DiffIDs, cur.DiffIDs)) {
			continue
		}
		if e.Arch != "" && cur.Arch != "" && e.Arch != cur.Arch {
			continue
		}
		fs, err := m(ctx, e.Inventory())
		if err != nil {
			return nil, fmt.Errorf("match candidate %s: %w", e.Ref, err)
		}
		cand := Candidate{Summary: summary(e, fs), SizeDelta: e.Size - cur.Size, PackagesDelta: len(e.Packages) - len(cur.Packages)}
		cand.VulnsRemoved, cand.VulnsAdded, cand.VulnsDelta = vulnDelta(curKeys, findingKeys(fs))
		cand.NeedsChanges = needsChanges(cur, e, appPkgs)
		cand.Gains = gains(&rec.Current, &cand)
		cand.Score = score(&rec.Current, &cand)
		rec.Candidates = append(rec.Candidates, cand)
	}
	sort.SliceStable(rec.Candidates, func(i, j int) bool {
		a, b := &rec.Candidates[i], &rec.Candidates[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.SizeDelta != b.SizeDelta {
			return a.SizeDelta < b.SizeDelta
		}
		return a.Ref < b.Ref
	})
	return rec, nil
}

// appPackages are the packages introduced above the base's layers.
func appPackages(inv *inventory.Inventory, baseLayers int) []inventory.Package {
	var out []inventory.Package
	for _, p := range inv.Packages {
		if len(p.Locations) == 0 || p.Locations[0].Layer == nil {
			continue
		}
		if p.Locations[0].Layer.Index >= baseLayers {
			out = append(out, p)
		}
	}
	return out
}

func summary(e *Entry, fs []finding.Finding) Summary {
	return Summary{
		Ref: e.Ref, OS: e.OSName(), Libc: e.Libc, Size: e.Size, Packages: len(e.Packages),
		Vulns: Count(fs), User: e.User, NonRoot: e.NonRoot,
		Shells: e.Shells, PackageManagers: e.PackageManagers, Runtimes: e.Runtimes,
	}
}

// findingKeys counts active vulnerability findings by severity and by
// identity (vulnerability, package, version, path): a multiset, so that the
// removed and added counts always add up to the difference of the totals.
func findingKeys(fs []finding.Finding) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, f := range fs {
		if f.Kind != finding.KindVulnerability || f.Suppressed != nil {
			continue
		}
		k := f.ID
		if f.Package != nil {
			k += "\x00" + f.Package.Type + "\x00" + f.Package.Name + "\x00" + f.Package.Version + "\x00" + f.Package.Path
		}
		sev := f.Severity.String()
		if out[sev] == nil {
			out[sev] = map[string]int{}
		}
		out[sev][k]++
	}
	return out
}

func vulnDelta(cur, cand map[string]map[string]int) (removed, added, delta map[string]int) {
	removed, added, delta = map[string]int{}, map[string]int{}, map[string]int{}
	for _, s := range Severities {
		sev := s.String()
		for k, n := range cur[sev] {
			if m := cand[sev][k]; n > m {
				removed[sev] += n - m
			}
		}
		for k, n := range cand[sev] {
			if m := cur[sev][k]; n > m {
				added[sev] += n - m
			}
		}
		delta[sev] = added[sev] - removed[sev]
	}
	return removed, added, delta
}

func has(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasAny(list []string, want []string) bool {
	for _, w := range want {
		if has(list, w) {
			return true
		}
	}
	return false
}

// needsChanges lists what the application must change to move from cur to
// cand: a different C library, a different (or no) package manager for the
// OS packages it installs, and runtimes its packages need that the current
// base provides and the candidate lacks. (A runtime neither base has is one
// the application brings itself.)
func needsChanges(cur, cand *Entry, app []inventory.Package) []string {
	var out []string
	if cur.Libc != LibcNone && cand.Libc != cur.Libc {
		if cand.Libc == LibcNone {
			out = append(out, fmt.Sprintf("no C library (the current base has %s): only static binaries run", cur.Libc))
		} else {
			out = append(out, fmt.Sprintf("C library changes from %s to %s: native binaries and extensions must be rebuilt", cur.Libc, cand.Libc))
		}
	}
	osPkgs := map[string]int{}
	needRuntime := map[string]int{}
	for _, p := range app {
		if osTypes[p.Type] {
			osPkgs[p.Type]++
		}
		if r, ok := runtimeOf[p.Type]; ok {
			needRuntime[r]++
		}
	}
	for _, typ := range sortedKeys(osPkgs) {
		pms := managerOf[typ]
		switch {
		case hasAny(cand.PackageManagers, pms):
			// Same family: the same install commands work.
		case len(cand.PackageManagers) == 0 || !hasAny(cand.PackageManagers, []string{"apk", "apt", "dpkg", "dnf", "microdnf", "yum", "rpm"}):
			out = append(out, fmt.Sprintf("the application installs %d %s packages but the candidate has no OS package manager: install them in a build stage and copy what is needed", osPkgs[typ], typ))
		default:
			out = append(out, fmt.Sprintf("the application installs %d %s packages; the candidate uses %s: install commands and package names change", osPkgs[typ], typ, strings.Join(osManagers(cand.PackageManagers), "/")))
		}
	}
	for _, r := range sortedKeys(needRuntime) {
		if has(cur.Runtimes, r) && !has(cand.Runtimes, r) {
			out = append(out, fmt.Sprintf("the application has %d packages that need %s, which the candidate lacks", needRuntime[r], r))
		}
	}
	return out
}

func osManagers(pms []string) []string {
	var out []string
	for _, p := range pms {
		if p != "pip" && p != "npm" && p != "gem" {
			out = append(out, p)
		}
	}
	return out
}

func sortedKeys(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func gains(cur *Summary, c *Candidate) []string {
	var out []string
	var rm []string
	total := 0
	for _, s := range Severities {
		sev := s.String()
		if n := c.VulnsRemoved[sev] - c.VulnsAdded[sev]; n > 0 {
			rm = append(rm, fmt.Sprintf("%d %s", n, strings.ToLower(sev)))
			total += n
		}
	}
	if total > 0 {
		out = append(out, fmt.Sprintf("%d fewer vulnerabilities (%s)", total, strings.Join(rm, ", ")))
	}
	if c.SizeDelta < 0 {
		out = append(out, HumanSize(-c.SizeDelta)+" smaller")
	}
	if c.PackagesDelta < 0 {
		out = append(out, fmt.Sprintf("%d fewer packages", -c.PackagesDelta))
	}
	if c.NonRoot && !cur.NonRoot {
		out = append(out, "runs as non-root by default")
	}
	if len(c.Shells) == 0 && len(cur.Shells) > 0 {
		out = append(out, "no shell")
	}
	if len(osManagers(c.PackageManagers)) == 0 && len(osManagers(cur.PackageManagers)) > 0 {
		out = append(out, "no package manager")
	}
	return out
}

// score: each vulnerability removed weighs by severity (critical 10, high 5,
// medium 2, low and unknown 1; added ones count against), each MiB saved
// 0.1, and each hardening gained (non-root, no shell, no package manager) 2.
// Losses of hardening count against the same.
func score(cur *Summary, c *Candidate) float64 {
	s := 0.0
	for sev, w := range severityWeight {
		s -= w * float64(c.VulnsDelta[sev])
	}
	s -= float64(c.SizeDelta) / (1 << 20) * 0.1
	flag := func(candBetter, curBetter bool) {
		switch {
		case candBetter:
			s += 2
		case curBetter:
			s -= 2
		}
	}
	flag(c.NonRoot && !cur.NonRoot, cur.NonRoot && !c.NonRoot)
	flag(len(c.Shells) == 0 && len(cur.Shells) > 0, len(cur.Shells) == 0 && len(c.Shells) > 0)
	cpm, bpm := len(osManagers(c.PackageManagers)), len(osManagers(cur.PackageManagers))
	flag(cpm == 0 && bpm > 0, bpm == 0 && cpm > 0)
	return float64(int64(s*100)) / 100
}

// HumanSize writes a byte count in binary units ("7.4 MiB").
func HumanSize(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f := float64(n)
	u := 0
	for f >= 1024 && u < len(units)-1 {
		f /= 1024
		u++
	}
	s := fmt.Sprintf("%.1f %s", f, units[u])
	if u == 0 {
		s = fmt.Sprintf("%d B", n)
	}
	if neg {
		s = "-" + s
	}
	return s
}
