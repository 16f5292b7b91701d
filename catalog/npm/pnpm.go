package npm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// pnpmLock is the part of a pnpm-lock.yaml bulkhead reads. Three key
// formats exist:
//
//	5.x (pnpm 5-7):  /name/1.2.3, /@scope/name/1.2.3_peer@1.0.0+other@2.0.0
//	6.x (pnpm 8):    /name@1.2.3, /@scope/name@1.2.3(peer@1.0.0)
//	9.x (pnpm 9+):   name@1.2.3 in packages; peers, as in 6.x, in snapshots
//
// 5.x and 6.x mark each package dev: true or dev: false (absent: needed by
// both). 9.x dropped the flag; Dev is then worked out from the importers'
// devDependencies through the snapshots' dependency graph.
type pnpmLock struct {
	LockfileVersion any                     `yaml:"lockfileVersion"`
	Importers       map[string]pnpmImporter `yaml:"importers"`
	Packages        map[string]pnpmPackage  `yaml:"packages"`
	Snapshots       map[string]pnpmSnapshot `yaml:"snapshots"`
}

type pnpmPackage struct {
	Name    string `yaml:"name"`    // set for git and tarball packages
	Version string `yaml:"version"` // likewise
	Dev     *bool  `yaml:"dev"`
}

type pnpmImporter struct {
	Dependencies         map[string]pnpmImporterDep `yaml:"dependencies"`
	DevDependencies      map[string]pnpmImporterDep `yaml:"devDependencies"`
	OptionalDependencies map[string]pnpmImporterDep `yaml:"optionalDependencies"`
}

type pnpmImporterDep struct {
	Version string `yaml:"version"`
}

type pnpmSnapshot struct {
	Dependencies         map[string]string `yaml:"dependencies"`
	OptionalDependencies map[string]string `yaml:"optionalDependencies"`
}

// ParsePnpmLock reads a pnpm-lock.yaml, every document of it: pnpm 10 may
// write its own configuration dependencies in a first document.
func ParsePnpmLock(ctx context.Context, r io.Reader) ([]inventory.Package, error) {
	b, err := readAll(r)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	c := newCollector()
	major := 0
	for doc := 0; ; doc++ {
		var lock pnpmLock
		err := dec.Decode(&lock)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				if doc > 0 {
					break // keep the documents read so far
				}
				return nil, fmt.Errorf("invalid pnpm lockfile YAML: %w", err)
			}
		}
		if m := lockMajor(lock.LockfileVersion); m > 0 {
			major = m
		}
		if err := lock.add(ctx, c, major); err != nil {
			return nil, err
		}
	}
	return sorted(c.pkgs), nil
}

// lockMajor reads lockfileVersion, written as 5.4, '6.0' or '9.0'.
func lockMajor(v any) int {
	var s string
	switch v := v.(type) {
	case string:
		s = v
	case int:
		return v
	case float64:
		return int(v)
	default:
		return 0
	}
	maj, _, _ := strings.Cut(strings.TrimSpace(s), ".")
	n, err := strconv.Atoi(maj)
	if err != nil {
		return 0
	}
	return n
}

func (lock *pnpmLock) add(ctx context.Context, c *collector, major int) error {
	var devOnly map[string]bool
	if major >= 9 || (major == 0 && len(lock.Snapshots) > 0) {
		devOnly = lock.devOnly()
	}
	for i, key := range sortedKeys(lock.Packages) {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := lock.Packages[key]
		name, version := parsePnpmKey(key, major)
		if e.Name != "" {
			name = e.Name
		}
		if e.Version != "" {
			version = e.Version
		}
		dev := e.Dev != nil && *e.Dev
		if devOnly != nil {
			dev = devOnly[stripPeers(strings.TrimPrefix(key, "/"))]
		}
		if err := c.add(name, version, dev, false, nil); err != nil {
			return err
		}
	}
	return nil
}

// parsePnpmKey splits a packages key into name and version.
func parsePnpmKey(key string, major int) (name, version string) {
	key = strings.TrimPrefix(key, "/")
	if major > 0 && major < 6 {
		key, _, _ = strings.Cut(key, "(")
		i := strings.LastIndexByte(key, '/')
		if i <= 0 {
			return "", ""
		}
		name, version = key[:i], key[i+1:]
		// 5.x appends peers with an underscore: 18.3.1_react@18.3.1 or a
		// hash, 4.10.0_fzn43tb6bdtdxy2s3aqevve2su.
		if j := strings.IndexByte(version, '_'); j > 0 {
			version = version[:j]
		}
		return name, version
	}
	name, version = splitSpecifier(stripPeers(key))
	return name, version
}

// stripPeers removes 6.x and 9.x peer suffixes: "18.3.1(react@18.3.1)".
func stripPeers(s string) string {
	s, _, _ = strings.Cut(s, "(")
	return s
}

// devOnly returns the packages (name@version, peers stripped) reachable from
// the importers' devDependencies and not from their dependencies or
// optionalDependencies.
func (lock *pnpmLock) devOnly() map[string]bool {
	var prod, dev []string
	for _, id := range sortedKeys(lock.Importers) {
		imp := lock.Importers[id]
		for _, m := range []map[string]pnpmImporterDep{imp.Dependencies, imp.OptionalDependencies} {
			for _, n := range sortedKeys(m) {
				prod = append(prod, snapshotRef(n, m[n].Version))
			}
		}
		for _, n := range sortedKeys(imp.DevDependencies) {
			dev = append(dev, snapshotRef(n, imp.DevDependencies[n].Version))
		}
	}
	inProd := lock.reach(prod)
	inDev := lock.reach(dev)
	out := make(map[string]bool, len(inDev))
	for k := range inDev {
		if !inProd[k] {
			out[k] = true
		}
	}
	return out
}

// snapshotRef is the snapshot key a dependency's version points at: the
// version itself for an alias ("string-width@4.2.3"), else name@version.
// Local links ("link:../a") have no snapshot.
func snapshotRef(name, version string) string {
	if strings.HasPrefix(version, "link:") || strings.HasPrefix(version, "file:") {
		return ""
	}
	if n, _ := splitSpecifier(stripPeers(version)); n != stripPeers(version) {
		return version
	}
	return name + "@" + version
}

// reach walks the snapshots graph from roots and returns the packages
// reached, peers stripped.
func (lock *pnpmLock) reach(roots []string) map[string]bool {
	seen := map[string]bool{}
	out := map[string]bool{}
	stack := slices.Clone(roots)
	for len(stack) > 0 {
		k := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if k == "" || seen[k] {
			continue
		}
		seen[k] = true
		out[stripPeers(k)] = true
		s, ok := lock.Snapshots[k]
		if !ok {
			continue
		}
		for _, m := range []map[string]string{s.Dependencies, s.OptionalDependencies} {
			for n, v := range m {
				stack = append(stack, snapshotRef(n, v))
			}
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[string])
	return keys
}
