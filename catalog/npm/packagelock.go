package npm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// packageLock is package-lock.json or npm-shrinkwrap.json. Version 1 (npm
// 5-6) has only the nested "dependencies" tree; version 2 (npm 7-8) has both
// it and the flat "packages" map; version 3 (npm 9+) only "packages".
type packageLock struct {
	Name            string                  `json:"name"`
	Version         string                  `json:"version"`
	LockfileVersion int                     `json:"lockfileVersion"`
	Dependencies    map[string]v1Dependency `json:"dependencies"`
	Packages        map[string]lockPackage  `json:"packages"`
}

type v1Dependency struct {
	Version      string                  `json:"version"`
	Dev          bool                    `json:"dev"`
	Dependencies map[string]v1Dependency `json:"dependencies"`
}

type lockPackage struct {
	Name     string          `json:"name"` // the root, workspaces and aliased packages
	Version  string          `json:"version"`
	Dev      bool            `json:"dev"`
	Link     bool            `json:"link"`
	License  json.RawMessage `json:"license"`
	Licenses json.RawMessage `json:"licenses"`
}

// ParsePackageLock reads a package-lock.json or npm-shrinkwrap.json of any
// lockfile version. The root project is the Main package; packages that
// only development needs (npm's "dev" flag) are Dev. "devOptional"
// packages are needed by an optional production dependency as well, so they
// are not Dev. Link entries (workspace symlinks) are skipped: the workspace
// folder's own entry reports the package.
func ParsePackageLock(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	var lock packageLock
	if err := json.Unmarshal(b, &lock); err != nil {
		return nil, fmt.Errorf("invalid package lock JSON: %w", err)
	}
	c := newCollector()
	if len(lock.Packages) > 0 {
		err = lock.addPackages(ctx, c)
	} else {
		if err := c.add(lock.Name, lock.Version, false, true, nil); err != nil {
			return nil, err
		}
		err = addV1(ctx, c, lock.Dependencies, 0)
	}
	if err != nil {
		return nil, err
	}
	return sorted(c.pkgs), nil
}

func (lock *packageLock) addPackages(ctx context.Context, c *collector) error {
	keys := make([]string, 0, len(lock.Packages))
	for k := range lock.Packages {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, key := range keys {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := lock.Packages[key]
		if e.Link {
			continue
		}
		name := e.Name
		if name == "" {
			j := strings.LastIndex(key, "node_modules/")
			if j < 0 {
				continue // a workspace folder without a name
			}
			name = key[j+len("node_modules/"):]
		}
		main := key == ""
		if main && e.Version == "" {
			continue // an unversioned root: the project is not a package
		}
		if err := c.add(name, e.Version, e.Dev, main, licenses(e.License, e.Licenses)); err != nil {
			return err
		}
	}
	return nil
}

// maxDepth bounds the recursion into v1's nested dependencies; real trees
// nest some tens deep.
const maxDepth = 512

func addV1(ctx context.Context, c *collector, deps map[string]v1Dependency, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("dependencies nested more than %d deep", maxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		d := deps[name]
		n, v := name, d.Version
		// An alias ("string-width-cjs": "npm:string-width@4.2.3") installs
		// the named package under another folder name.
		if rest, ok := strings.CutPrefix(v, "npm:"); ok {
			if at := strings.LastIndexByte(rest, '@'); at > 0 {
				n, v = rest[:at], rest[at+1:]
			}
		}
		// file: entries are local folders (npm 6 workspaces by hand), not
		// published packages.
		if !strings.HasPrefix(v, "file:") {
			if err := c.add(n, v, d.Dev, false, nil); err != nil {
				return err
			}
		}
		if err := addV1(ctx, c, d.Dependencies, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// sorted orders packages by name and version for stable output.
func sorted(pkgs []inventory.Package) []inventory.Package {
	sort.SliceStable(pkgs, func(i, j int) bool {
		if pkgs[i].Name != pkgs[j].Name {
			return pkgs[i].Name < pkgs[j].Name
		}
		return pkgs[i].Version < pkgs[j].Version
	})
	return pkgs
}
