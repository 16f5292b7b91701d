// Package reevaltest builds realistic fleets of stored inventories for the
// re-evaluation benchmark (bench/server-reeval.sh) from the shared corpus:
// real apk and dpkg package databases (parsed with bulkhead's own
// catalogers), and real package names and versions taken from the corpus'
// OSV records for the language ecosystems and AlmaLinux rpms. It is not
// used by the server.
package reevaltest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/catalog/apk"
	"github.com/bulkhead-sec/bulkhead/catalog/dpkg"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// Fleet makes inventories of about a given size from a pool of real
// packages. Inventory(i) is deterministic in i and cheap, so a caller can
// build and store one at a time.
type Fleet struct {
	bases []base
	// lang are language packages (npm, PyPI, Go, crates.io, Maven).
	lang []inventory.Package
	// Size is the number of packages per inventory.
	Size int
}

type base struct {
	name string
	os   *inventory.OS
	pkgs []inventory.Package
}

// maxPerEcosystem bounds the OSV records read per ecosystem folder.
const maxPerEcosystem = 1500

// NewFleet reads the corpus at dir (../shared/corpus) and makes a fleet of
// inventories of size packages each.
func NewFleet(ctx context.Context, dir string, size int) (*Fleet, error) {
	f := &Fleet{Size: size}
	apkDir := filepath.Join(dir, "pkgdb", "apk")
	for _, v := range []string{"3.12.12", "3.14.10", "3.16.9", "3.18.9", "3.20.3"} {
		pkgs, err := parseFile(ctx, filepath.Join(apkDir, "alpine-minirootfs-"+v+"_installed"), apk.Parse)
		if err != nil {
			return nil, err
		}
		f.bases = append(f.bases, base{name: "alpine:" + v, os: &inventory.OS{ID: "alpine", VersionID: v}, pkgs: pkgs})
	}
	for _, d := range []struct{ file, ver, code string }{
		{"claircore_texlive.status", "10", "buster"},
		{"trivy_valid_status", "12", "bookworm"},
	} {
		pkgs, err := parseFile(ctx, filepath.Join(dir, "pkgdb", "dpkg", d.file), dpkg.ParseStatus)
		if err != nil {
			return nil, err
		}
		f.bases = append(f.bases, base{name: "debian:" + d.code, os: &inventory.OS{ID: "debian", VersionID: d.ver, Codename: d.code}, pkgs: pkgs})
	}
	osv := filepath.Join(dir, "osv")
	rpms, err := osvPackages(filepath.Join(osv, "AlmaLinux", "9"), "rpm")
	if err != nil {
		return nil, err
	}
	if len(rpms) > 250 {
		rpms = rpms[:250]
	}
	f.bases = append(f.bases, base{name: "almalinux:9", os: &inventory.OS{ID: "almalinux", VersionID: "9.4"}, pkgs: rpms})
	for _, e := range []struct{ dir, typ string }{
		{"npm", inventory.TypeNPM}, {"PyPI", inventory.TypePyPI}, {"Go", inventory.TypeGo},
		{"crates.io", inventory.TypeCargo}, {"Maven", inventory.TypeMaven},
	} {
		ps, err := osvPackages(filepath.Join(osv, e.dir), e.typ)
		if err != nil {
			return nil, err
		}
		f.lang = append(f.lang, ps...)
	}
	if len(f.lang) == 0 {
		return nil, fmt.Errorf("no OSV records under %s: is it the shared corpus?", osv)
	}
	// Interleave ecosystems so a window of the pool mixes them.
	slices.SortStableFunc(f.lang, func(a, b inventory.Package) int { return strings.Compare(a.PURL, b.PURL) })
	return f, nil
}

func parseFile(ctx context.Context, path string, parse func(context.Context, io.Reader) ([]inventory.Package, error)) ([]inventory.Package, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	defer r.Close()
	pkgs, err := parse(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", path, err)
	}
	for i := range pkgs {
		pkgs[i].Locations = []inventory.Location{{Path: "/" + filepath.Base(path)}}
	}
	return pkgs, nil
}

// osvPackages takes one real (name, version) per affected package of the
// OSV records under dir: a version from the record's versions list, else
// a range's introduced or fixed version.
func osvPackages(dir, typ string) ([]inventory.Package, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	// Ids sort roughly by age (ALSA-2024_..., GO-2026-..., PYSEC-2023-...):
	// the newest records, and for a package named by several, the version
	// the newest names.
	sort.Strings(files)
	if len(files) > maxPerEcosystem {
		files = files[len(files)-maxPerEcosystem:]
	}
	index := map[string]int{}
	var out []inventory.Package
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var rec struct {
			Affected []struct {
				Package  struct{ Name string } `json:"package"`
				Versions []string              `json:"versions"`
				Ranges   []struct {
					Events []map[string]string `json:"events"`
				} `json:"ranges"`
			} `json:"affected"`
		}
		if json.Unmarshal(b, &rec) != nil {
			continue // the corpus holds a few deliberately invalid files elsewhere; not here
		}
		for _, a := range rec.Affected {
			name, v := a.Package.Name, pickVersion(a.Package.Name, a.Versions, a.Ranges)
			if name == "" || v == "" {
				continue
			}
			if i, ok := index[name]; ok {
				out[i] = langPackage(typ, name, v)
				continue
			}
			index[name] = len(out)
			out = append(out, langPackage(typ, name, v))
		}
	}
	return out, nil
}

// pickVersion takes, for one package in ten, a version the record
// affects (from its versions list or a range's introduced version), and
// for the others the newest fixed version the record names: real images
// run mostly patched versions, so a fleet of affected versions only would
// have hundreds of findings per image.
func pickVersion(name string, versions []string, ranges []struct {
	Events []map[string]string `json:"events"`
}) string {
	affected := ""
	if len(versions) > 0 {
		affected = versions[len(versions)/2]
	}
	fixed := ""
	for _, r := range ranges {
		for _, e := range r.Events {
			if v := e["introduced"]; affected == "" && v != "" && v != "0" {
				affected = v
			}
			if v := e["fixed"]; v != "" {
				fixed = v
			}
		}
	}
	if fixed == "" || (affected != "" && fnv32(name)%10 == 0) {
		return affected
	}
	return fixed
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func langPackage(typ, name, v string) inventory.Package {
	p := inventory.Package{Name: name, Version: v, Type: typ, FoundBy: "corpus"}
	switch typ {
	case inventory.TypeGo:
		p.Version = "v" + v
		p.PURL = "pkg:golang/" + name + "@" + p.Version
		p.Locations = []inventory.Location{{Path: "/app/bin/server"}}
	case inventory.TypeMaven:
		g, a, _ := strings.Cut(name, ":")
		p.PURL = "pkg:maven/" + g + "/" + a + "@" + v
		p.Locations = []inventory.Location{{Path: "/app/lib/" + a + "-" + v + ".jar"}}
	case inventory.TypeRPM:
		if e, rest, ok := strings.Cut(v, ":"); ok {
			var n int
			if _, err := fmt.Sscanf(e, "%d", &n); err == nil {
				p.Epoch, p.Version = &n, rest
			}
		}
		p.PURL = "pkg:rpm/almalinux/" + name + "@" + p.Version
		p.Locations = []inventory.Location{{Path: "/var/lib/rpm/rpmdb.sqlite"}}
	default:
		p.PURL = "pkg:" + typ + "/" + name + "@" + v
		p.Locations = []inventory.Location{{Path: "/app/" + typ + "/" + name}}
	}
	return p
}

// Inventory is image i: one of the distro bases, padded with a window of
// the language packages (windows overlap between images, as real fleets
// share dependencies), Size packages in all.
func (f *Fleet) Inventory(i int) *inventory.Inventory {
	b := f.bases[i%len(f.bases)]
	pkgs := make([]inventory.Package, 0, f.Size)
	pkgs = append(pkgs, b.pkgs[:min(len(b.pkgs), f.Size)]...)
	start := (i * 97) % len(f.lang)
	for j := 0; len(pkgs) < f.Size && j < len(f.lang); j++ {
		pkgs = append(pkgs, f.lang[(start+j)%len(f.lang)])
	}
	os := *b.os
	inv := &inventory.Inventory{
		Target:   inventory.Target{Name: fmt.Sprintf("registry.example/fleet/%s-%d:latest", strings.ReplaceAll(b.name, ":", "-"), i), Source: "registry", Digest: Digest(i)},
		OS:       &os,
		Packages: pkgs,
	}
	inv.Sort()
	return inv
}

// Digest is image i's made-up manifest digest.
func Digest(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }
