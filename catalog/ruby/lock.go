package ruby

import (
	"context"
	"io"
	"strings"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// LockfileCataloger is the name of the Gemfile.lock cataloger: the FoundBy
// of its packages.
const LockfileCataloger = "ruby-lockfile"

// NewLock returns the cataloger of Bundler lockfiles: Gemfile.lock, and
// Gemfile.next.lock (the dual-boot convention syft also reads). It runs for
// source trees only: a lockfile declares what a project would install; in
// an image the installed gemspecs are the truth.
func NewLock() *catalog.Generic {
	return catalog.NewGeneric(LockfileCataloger, catalog.ScopeSource,
		catalog.FileParser{What: "Gemfile.lock", Match: catalog.BaseName("Gemfile.lock", "Gemfile.next.lock"), MaxSize: MaxLockSize, Parse: catalog.ContextFunc(ParseGemfileLock)})
}

// ParseGemfileLock reads Bundler's lockfile. Gems are listed, four spaces
// in, under "specs:" of the source sections: GEM (a gem server), GIT, PATH
// and PLUGIN SOURCE; six spaces in are their dependencies. A spec line is
// "name (version)" or "name (version-platform)", split at the first '-'
// as Bundler's own parser does. The gems of a PATH section whose remote is
// "." are the project itself, and Main. Gemfile.lock does not record
// groups, so no gem is marked Dev.
func ParseGemfileLock(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	var (
		pkgs    []inventory.Package
		seen    = map[string]bool{}
		section string
		remote  string
		n       int
		failed  error
	)
	err := eachLine(r, MaxLockSize, func(line string) {
		if failed != nil {
			return
		}
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				failed = err
				return
			}
		}
		if line == "" {
			return
		}
		if line[0] != ' ' {
			section, remote = strings.TrimSpace(line), ""
			return
		}
		switch section {
		case "GEM", "GIT", "PATH", "PLUGIN SOURCE":
		default:
			return
		}
		if r, ok := strings.CutPrefix(line, "  remote: "); ok {
			remote = strings.TrimSpace(r)
			return
		}
		if !strings.HasPrefix(line, "    ") || strings.HasPrefix(line, "     ") {
			return
		}
		name, version, platform, ok := specLine(strings.TrimSpace(line))
		if !ok {
			return
		}
		k := name + "\x00" + version + "\x00" + platform
		if seen[k] {
			return
		}
		if err := catalog.CheckPackageCount(len(pkgs), maxPackages, "Gemfile.lock"); err != nil {
			failed = err
			return
		}
		seen[k] = true
		p := newPackage(name, version, platform)
		p.Main = section == "PATH" && remote == "."
		pkgs = append(pkgs, p)
	})
	if err == nil {
		err = failed
	}
	if err != nil {
		return nil, err
	}
	return pkgs, nil
}

// specLine splits "nokogiri (1.16.7-x86_64-linux)".
func specLine(s string) (name, version, platform string, ok bool) {
	name, rest, found := strings.Cut(s, " (")
	if !found || !strings.HasSuffix(rest, ")") {
		return "", "", "", false
	}
	rest = strings.TrimSuffix(rest, ")")
	version, platform, _ = strings.Cut(rest, "-")
	if !validName(name) || !validVersion(version) {
		return "", "", "", false
	}
	return name, version, platform, true
}
