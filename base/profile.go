package base

import (
	"path"
	"sort"
	"strings"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// Files is the final filesystem view of an image (walk.Tree).
type Files interface {
	Lookup(p string) (*walk.Entry, bool)
	Resolve(p string) (string, bool, error)
}

// Well-known places; "bin" and "sbin" are also tried under usr/ and
// usr/local/ (merged-/usr systems link one to the other).
var (
	shells = []string{"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh"}
	// package managers by the name they are reported under.
	packageManagers = []struct{ name, file string }{
		{"apk", "apk"},
		{"apt", "apt-get"},
		{"apt", "apt"},
		{"dpkg", "dpkg"},
		{"dnf", "dnf"},
		{"dnf", "dnf5"},
		{"microdnf", "microdnf"},
		{"yum", "yum"},
		{"rpm", "rpm"},
		{"pip", "pip"},
		{"pip", "pip3"},
		{"npm", "npm"},
		{"gem", "gem"},
	}
	runtimes = []struct{ name, file string }{
		{"python", "python3"},
		{"python", "python"},
		{"node", "node"},
		{"node", "nodejs"},
		{"java", "java"},
		{"ruby", "ruby"},
		{"php", "php"},
		{"dotnet", "dotnet"},
	}
	binDirs = []string{"bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "usr/local/sbin"}
	// runtimes also found outside PATH directories, as the official and
	// distroless images install them.
	runtimeGlobs = []struct{ name, dir, rel string }{
		{"java", "usr/lib/jvm", "bin/java"},
		{"java", "opt/java", "bin/java"},
		{"java", "opt/java/openjdk", "bin/java"},
	}
	// dynamic loaders name the libc family.
	muslLoaders  = []string{"lib/ld-musl-x86_64.so.1", "lib/ld-musl-aarch64.so.1", "lib/ld-musl-armhf.so.1", "lib/ld-musl-s390x.so.1", "lib/ld-musl-ppc64le.so.1", "lib/ld-musl-riscv64.so.1", "lib/ld-musl-i386.so.1"}
	glibcLoaders = []string{"lib64/ld-linux-x86-64.so.2", "lib/ld-linux-aarch64.so.1", "lib/ld-linux-armhf.so.3", "lib/ld64.so.2", "lib64/ld64.so.2", "lib/ld64.so.1", "lib/ld-linux.so.2", "lib/ld-linux-riscv64-lp64d.so.1", "lib/x86_64-linux-gnu/libc.so.6", "lib/aarch64-linux-gnu/libc.so.6", "usr/lib64/libc.so.6", "lib64/libc.so.6"}
)

// exists reports whether p resolves, through symlinks, to a file.
func exists(fs Files, p string) bool {
	r, ok, err := fs.Resolve(p)
	if err != nil || !ok {
		return false
	}
	e, ok := fs.Lookup(r)
	return ok && (e.Kind == walk.KindFile || e.Kind == walk.KindHardlink)
}

// findIn returns the first bin directory path where name exists.
func findIn(fs Files, name string) (string, bool) {
	for _, d := range binDirs {
		p := d + "/" + name
		if exists(fs, p) {
			return "/" + p, true
		}
	}
	return "", false
}

// Shells lists the shells present ("/bin/sh", "/bin/bash").
func Shells(fs Files) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range shells {
		if p, ok := findIn(fs, s); ok && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// PackageManagers lists the package managers present, by name.
func PackageManagers(fs Files) []string {
	return names(fs, packageManagers)
}

// Runtimes lists the language runtimes present (python, node, java ...).
func Runtimes(fs Files) []string {
	have := map[string]bool{}
	for _, n := range names(fs, runtimes) {
		have[n] = true
	}
	for _, g := range runtimeGlobs {
		if !have[g.name] && exists(fs, g.dir+"/"+g.rel) {
			have[g.name] = true
		}
	}
	// Versioned installs without an unversioned link on PATH
	// (usr/lib/jvm/java-17-openjdk-amd64/bin/java, usr/bin/python3.11):
	// one pass over the final view.
	if w, ok := fs.(interface {
		Walk(func(*walk.Entry) error) error
	}); ok && (!have["java"] || !have["python"]) {
		_ = w.Walk(func(e *walk.Entry) error {
			if !e.IsExecutable() {
				return nil
			}
			dir, file := path.Split(e.Path)
			switch {
			case !have["python"] && (dir == "usr/bin/" || dir == "usr/local/bin/") && strings.HasPrefix(file, "python3.") && !strings.Contains(file, "-"):
				have["python"] = true
			case !have["java"] && file == "java" && strings.HasSuffix(dir, "/bin/") && (strings.HasPrefix(dir, "usr/lib/jvm/") || strings.HasPrefix(dir, "opt/")):
				have["java"] = true
			}
			return nil
		})
	}
	var out []string
	for n := range have {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func names(fs Files, list []struct{ name, file string }) []string {
	seen := map[string]bool{}
	var out []string
	for _, pm := range list {
		if seen[pm.name] {
			continue
		}
		if _, ok := findIn(fs, pm.file); ok {
			seen[pm.name] = true
			out = append(out, pm.name)
		}
	}
	return out
}

// Libc families.
const (
	LibcMusl  = "musl"
	LibcGlibc = "glibc"
	LibcNone  = "none"
)

// Libc names the C library family: from the inventory (musl, libc6,
// glibc packages) when it says, else from the dynamic loader present.
func Libc(inv *inventory.Inventory, fs Files) string {
	if inv != nil {
		for _, p := range inv.Packages {
			switch {
			case p.Type == inventory.TypeAPK && p.Name == "musl":
				return LibcMusl
			case p.Type == inventory.TypeDeb && (p.Name == "libc6" || p.Name == "libc6-dev"):
				return LibcGlibc
			case p.Type == inventory.TypeRPM && p.Name == "glibc":
				return LibcGlibc
			case p.Type == inventory.TypeAPK && (p.Name == "glibc" || p.Name == "glibc-locale-posix"):
				// Wolfi and Chainguard images are glibc-based apk systems.
				return LibcGlibc
			}
		}
	}
	if fs != nil {
		for _, l := range muslLoaders {
			if exists(fs, l) {
				return LibcMusl
			}
		}
		for _, l := range glibcLoaders {
			if exists(fs, l) {
				return LibcGlibc
			}
		}
	}
	return LibcNone
}

// NonRoot reports whether a config user runs as someone other than root.
func NonRoot(user string) bool {
	u, _, _ := strings.Cut(strings.TrimSpace(user), ":")
	return u != "" && u != "root" && u != "0"
}

// Profile describes a scanned image as a catalog entry. findings are its
// vulnerability findings (suppressed ones do not count); db says which
// database made them (nil: no vulnerability scan).
func Profile(ref string, inv *inventory.Inventory, fs Files, findings []finding.Finding, db *VulnCounts) Entry {
	t := inv.Target
	e := Entry{
		Ref:         ref,
		Source:      t.Source,
		Digest:      t.Digest,
		ImageID:     t.ID,
		RepoTags:    t.RepoTags,
		RepoDigests: t.RepoDigests,
		IndexedAt:   time.Now().UTC().Truncate(time.Second),
		OS:          inv.OS,
		Arch:        t.Arch,
		Size:        t.Size,
		User:        t.User,
		NonRoot:     NonRoot(t.User),
		Libc:        Libc(inv, fs),
		DiffIDs:     []string{},
	}
	for _, l := range t.Layers {
		e.DiffIDs = append(e.DiffIDs, l.DiffID)
	}
	if fs != nil {
		e.Shells = Shells(fs)
		e.PackageManagers = PackageManagers(fs)
		e.Runtimes = Runtimes(fs)
	}
	e.PackageTypes = map[string]int{}
	e.Packages = make([]inventory.Package, 0, len(inv.Packages))
	for _, p := range inv.Packages {
		p.Locations = stripLayers(p.Locations)
		e.Packages = append(e.Packages, p)
		e.PackageTypes[p.Type]++
	}
	if db != nil {
		vc := *db
		vc.BySev = Count(findings)
		vc.Total = 0
		for _, n := range vc.BySev {
			vc.Total += n
		}
		e.Vulns = &vc
	}
	return e
}

func stripLayers(ls []inventory.Location) []inventory.Location {
	out := make([]inventory.Location, len(ls))
	for i, l := range ls {
		out[i] = inventory.Location{Path: l.Path}
	}
	return out
}

// Severities in report order.
var Severities = []finding.Severity{finding.Critical, finding.High, finding.Medium, finding.Low, finding.Unknown}

// Count counts the vulnerability findings that count (not suppressed) by
// severity name, every severity present.
func Count(fs []finding.Finding) map[string]int {
	out := map[string]int{}
	for _, s := range Severities {
		out[s.String()] = 0
	}
	for _, f := range fs {
		if f.Kind == finding.KindVulnerability && f.Suppressed == nil {
			out[f.Severity.String()]++
		}
	}
	return out
}

// Inventory rebuilds the inventory an entry was indexed from (without layer
// attributions), for matching against a database.
func (e *Entry) Inventory() *inventory.Inventory {
	return &inventory.Inventory{
		Target:   inventory.Target{Name: e.Ref, Source: e.Source, Digest: e.Digest, ID: e.ImageID, Arch: e.Arch, Size: e.Size, User: e.User},
		OS:       e.OS,
		Packages: e.Packages,
	}
}
