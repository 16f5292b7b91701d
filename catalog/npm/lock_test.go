package npm

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func parseLock(t testing.TB, path string) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/" + filepath.ToSlash(path), Reader: f, Size: st.Size()})
	if err != nil {
		t.Fatalf("Parse(%s): %v", path, err)
	}
	return pkgs
}

func keys(pkgs []inventory.Package, keep func(p inventory.Package) bool) []string {
	var out []string
	for _, p := range pkgs {
		if keep == nil || keep(p) {
			out = append(out, p.Name+"@"+p.Version)
		}
	}
	sort.Strings(out)
	return out
}

func findPkg(pkgs []inventory.Package, name, version string) *inventory.Package {
	for i := range pkgs {
		if pkgs[i].Name == name && pkgs[i].Version == version {
			return &pkgs[i]
		}
	}
	return nil
}

// The counts agree with syft v1.57.1 (SYFT_JAVASCRIPT_INCLUDE_DEV_DEPENDENCIES
// =true syft scan dir:testdata/lock/X) except where noted, and for npm
// lockfiles with `npm ls --all` (TestPackageLockAgainstNpm). Dev counts were
// read off the lockfiles ("dev": true; pnpm 5/6 "dev: true"; for pnpm 9, the
// packages reachable only from devDependencies).
func TestLockFixtures(t *testing.T) {
	tests := []struct {
		file  string
		count int
		dev   []string // every Dev package, when short; else nil and devCount
		devN  int
		main  string
		spots []string // name@version that must be present
	}{
		// syft: 153, without the root project, which v1 names at top level.
		{"npm-v1/package-lock.json", 154, nil, 63, "bulkhead-fixture@1.0.0",
			[]string{"string-width@4.2.3", "express@4.19.2", "ms@2.1.2", "fsevents@2.3.3"}},
		{"npm-v2/package-lock.json", 154, nil, 63, "bulkhead-fixture@1.0.0",
			[]string{"string-width@4.2.3", "@babel/code-frame@7.24.7"}},
		{"npm-v3/package-lock.json", 154, nil, 63, "bulkhead-fixture@1.0.0",
			[]string{"string-width@4.2.3", "is-number@7.0.0", "mocha@10.4.0"}},
		// syft reads no npm-shrinkwrap.json.
		{"npm-shrinkwrap/npm-shrinkwrap.json", 4, []string{}, 0, "sw-app@1.2.3", []string{"ms@2.1.2", "ms@2.1.3", "debug@4.3.5"}},
		// syft also reports the two link entries, with version UNKNOWN.
		{"npm-workspaces/package-lock.json", 8, []string{"debug@4.3.5", "ms@2.1.2", "semver@7.6.2"}, 3, "ws-root@0.1.0",
			[]string{"@ws/a@2.0.0", "@ws/b@3.1.0", "ms@2.0.0", "ms@2.1.3"}},
		{"yarn-classic/yarn.lock", 24, []string{}, 0, "", []string{"string-width@4.2.3", "chalk@2.4.2", "react-dom@18.3.1"}},
		// syft also reports the two workspaces with version 0.0.0-use.local.
		{"yarn-berry/yarn.lock", 31, []string{}, 0, "", []string{"string-width@4.2.3", "resolve@1.22.8", "ms@2.1.3"}},
		// syft also reports the alias as "string-width-cjs /string-width/4.2.3".
		{"pnpm-v5/pnpm-lock.yaml", 24, []string{"semver@7.6.2"}, 1, "", []string{"string-width@4.2.3", "react-dom@18.3.1"}},
		{"pnpm-v6/pnpm-lock.yaml", 24, []string{"semver@7.6.2"}, 1, "", []string{"string-width@4.2.3", "react-dom@18.3.1"}},
		{"pnpm-v9/pnpm-lock.yaml", 24, []string{"semver@7.6.2"}, 1, "", []string{"string-width@4.2.3", "react-dom@18.3.1"}},
		{"pnpm-v6-workspace/pnpm-lock.yaml", 5, []string{"debug@4.3.5", "ms@2.1.2", "semver@7.6.2"}, 3, "", []string{"ms@2.0.0", "ms@2.1.3"}},
		{"pnpm-v9-workspace/pnpm-lock.yaml", 5, []string{"debug@4.3.5", "ms@2.1.2", "semver@7.6.2"}, 3, "", []string{"ms@2.0.0", "ms@2.1.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := parseLock(t, filepath.Join("testdata", "lock", tt.file))
			if len(pkgs) != tt.count {
				t.Errorf("%d packages, want %d", len(pkgs), tt.count)
			}
			dev := keys(pkgs, func(p inventory.Package) bool { return p.Dev })
			if tt.dev != nil && !slices.Equal(dev, tt.dev) && !(len(dev) == 0 && len(tt.dev) == 0) {
				t.Errorf("dev %q, want %q", dev, tt.dev)
			}
			if len(dev) != tt.devN {
				t.Errorf("%d dev packages, want %d", len(dev), tt.devN)
			}
			mains := keys(pkgs, func(p inventory.Package) bool { return p.Main })
			if (tt.main == "" && len(mains) != 0) || (tt.main != "" && !slices.Equal(mains, []string{tt.main})) {
				t.Errorf("main %q, want %q", mains, tt.main)
			}
			all := keys(pkgs, nil)
			for _, s := range tt.spots {
				if _, found := slices.BinarySearch(all, s); !found {
					t.Errorf("%s missing", s)
				}
			}
			for _, p := range pkgs {
				if p.Type != inventory.TypeNPM || p.PURL != PURL(p.Name, p.Version) || !strings.HasPrefix(p.PURL, "pkg:npm/") {
					t.Errorf("bad package %+v", p)
				}
				// Aliases, workspaces and links are not packages.
				if p.Name == "string-width-cjs" || strings.HasSuffix(p.Version, "use.local") || strings.HasPrefix(p.Version, "link:") {
					t.Errorf("local or alias entry reported: %+v", p)
				}
			}
		})
	}
}

func TestPackageLockFlags(t *testing.T) {
	pkgs := parseLock(t, filepath.Join("testdata", "lock", "npm-v3", "package-lock.json"))
	for _, tt := range []struct {
		name, version string
		dev           bool
		lic           []string
	}{
		{"mocha", "10.4.0", true, []string{"MIT"}},
		// devOptional: a production optional dependency needs it too.
		{"is-number", "7.0.0", false, []string{"MIT"}},
		{"fsevents", "2.3.3", false, []string{"MIT"}},
		{"express", "4.19.2", false, []string{"MIT"}},
		{"bulkhead-fixture", "1.0.0", false, []string{"Apache-2.0"}},
	} {
		p := findPkg(pkgs, tt.name, tt.version)
		if p == nil {
			t.Errorf("%s@%s missing", tt.name, tt.version)
			continue
		}
		if p.Dev != tt.dev || !slices.Equal(p.Licenses, tt.lic) {
			t.Errorf("%s: dev=%v licences=%q, want dev=%v %q", tt.name, p.Dev, p.Licenses, tt.dev, tt.lic)
		}
	}
	if p := findPkg(pkgs, "@babel/code-frame", "7.24.7"); p == nil || p.PURL != "pkg:npm/%40babel/code-frame@7.24.7" {
		t.Errorf("scoped purl: %+v", p)
	}
}

// npmLs lists the packages npm itself reads from a lockfile, with and
// without dev dependencies.
func npmLs(t *testing.T, npm, dir string, omitDev bool) []string {
	args := []string{"ls", "--all", "--json", "--package-lock-only"}
	if omitDev {
		args = append(args, "--omit=dev")
	}
	cmd := exec.Command(npm, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("npm ls in %s: %v", dir, err)
	}
	type node struct {
		Version      string          `json:"version"`
		Dependencies map[string]node `json:"dependencies"`
	}
	var root node
	if err := json.Unmarshal(out, &root); err != nil {
		t.Fatalf("npm ls output: %v", err)
	}
	// npm ls shows an alias under its folder name; the project's
	// package.json says which package it is ("npm:string-width@4.2.3").
	var manifest map[string]json.RawMessage
	b, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil || json.Unmarshal(b, &manifest) != nil {
		t.Fatalf("package.json in %s: %v", dir, err)
	}
	aliases := map[string]string{}
	for _, field := range []string{"dependencies", "devDependencies", "optionalDependencies"} {
		var deps map[string]string
		_ = json.Unmarshal(manifest[field], &deps)
		for folder, spec := range deps {
			if real, ok := strings.CutPrefix(spec, "npm:"); ok {
				aliases[folder] = real[:strings.LastIndexByte(real, '@')]
			}
		}
	}
	set := map[string]bool{}
	var walk func(map[string]node)
	walk = func(deps map[string]node) {
		for name, n := range deps {
			if n.Version == "" {
				continue
			}
			if real, ok := aliases[name]; ok {
				name = real
			}
			set[name+"@"+n.Version] = true
			walk(n.Dependencies)
		}
	}
	walk(root.Dependencies)
	var keys []string
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestPackageLockAgainstNpm(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skip("npm not installed")
	}
	for _, dir := range []string{"npm-v2", "npm-v3", "npm-shrinkwrap"} {
		t.Run(dir, func(t *testing.T) {
			d := filepath.Join("testdata", "lock", dir)
			name := "package-lock.json"
			if dir == "npm-shrinkwrap" {
				name = "npm-shrinkwrap.json"
			}
			pkgs := parseLock(t, filepath.Join(d, name))
			deps := func(p inventory.Package) bool { return !p.Main }
			prod := func(p inventory.Package) bool { return !p.Main && !p.Dev }
			if got, want := keys(pkgs, deps), npmLs(t, npm, d, false); !slices.Equal(got, want) {
				t.Errorf("all packages:\nbulkhead %q\nnpm      %q", got, want)
			}
			if got, want := keys(pkgs, prod), npmLs(t, npm, d, true); !slices.Equal(got, want) {
				t.Errorf("without dev:\nbulkhead %q\nnpm      %q", got, want)
			}
		})
	}
}

func TestLockErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct{ path, in string }{
		{"/p/package-lock.json", `{"packages": {"node_modules/a": {"version": 1}}}`},
		{"/p/package-lock.json", `{`},
		{"/p/pnpm-lock.yaml", "lockfileVersion: '9.0'\npackages: [\n"},
		{"/p/yarn.lock", "__metadata:\n  version: 8\n\"a@npm:1\": [\n"},
	} {
		_, err := NewLock().Parse(ctx, catalog.Input{Path: tt.path, Reader: strings.NewReader(tt.in), Size: int64(len(tt.in))})
		if err == nil || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s %q: error %v, want one naming the file", tt.path, tt.in, err)
		}
	}
	big := catalog.Input{Path: "/p/yarn.lock", Reader: strings.NewReader(""), Size: MaxLockSize + 1}
	if _, err := NewLock().Parse(ctx, big); err == nil {
		t.Error("oversized lockfile accepted")
	}

	defer func(n int) { maxPackages = n }(maxPackages)
	maxPackages = 10
	for _, f := range []string{"npm-v3/package-lock.json", "yarn-classic/yarn.lock", "yarn-berry/yarn.lock", "pnpm-v9/pnpm-lock.yaml", "npm-v1/package-lock.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "lock", f))
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewLock().Parse(ctx, catalog.Input{Path: "/" + f, Reader: strings.NewReader(string(b)), Size: int64(len(b))})
		if err == nil || !strings.Contains(err.Error(), "more than 10 packages") {
			t.Errorf("%s with maxPackages 10: %v", f, err)
		}
	}
}
