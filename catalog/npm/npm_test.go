package npm

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		path                      string
		installed, manifest, lock bool
	}{
		{"app/node_modules/ms/package.json", true, false, false},
		{"node_modules/ms/package.json", true, false, false},
		{"app/node_modules/@babel/code-frame/package.json", true, false, false},
		{"app/node_modules/debug/node_modules/ms/package.json", true, false, false},
		{"usr/lib/node_modules/npm/package.json", true, false, false},
		{"usr/local/lib/node_modules/semver/package.json", true, false, false},
		{"usr/local/lib/node_modules/npm/node_modules/@npmcli/arborist/package.json", true, false, false},
		// pnpm's store: the real files; node_modules/<name> are symlinks.
		{"app/node_modules/.pnpm/ms@2.1.3/node_modules/ms/package.json", true, false, false},
		// Not package roots.
		{"app/node_modules/rxjs/ajax/package.json", false, false, false},
		{"app/node_modules/tslib/modules/package.json", false, false, false},
		{"app/node_modules/resolve/test/resolver/baz/package.json", false, false, false},
		{"app/node_modules/@babel/package.json", false, false, false},
		{"app/node_modules/.cache/package.json", false, false, false},
		{"app/node_modules/package.json", false, false, false},
		{"app/node_modules/ms/package.json.bak", false, false, false},
		{"app/node_modules/ms/foo-package.json", false, false, false},
		// Outside node_modules: the manifest cataloger's, images only.
		{"app/package.json", false, true, false},
		{"package.json", false, true, false},
		{"opt/yarn-v1.22.22/package.json", false, true, false},
		{"app/mypackage.json", false, false, false},
		// Lockfiles, outside node_modules only.
		{"app/package-lock.json", false, false, true},
		{"package-lock.json", false, false, true},
		{"app/npm-shrinkwrap.json", false, false, true},
		{"app/yarn.lock", false, false, true},
		{"app/pnpm-lock.yaml", false, false, true},
		{"app/node_modules/foo/package-lock.json", false, false, false},
		{"app/node_modules/foo/yarn.lock", false, false, false},
		{"app/node_modules/.package-lock.json", false, false, false},
		{"app/pnpm-lock.yml", false, false, false},
	}
	for _, tt := range tests {
		if got := New().Match(tt.path); got != tt.installed {
			t.Errorf("Installed.Match(%q) = %v, want %v", tt.path, got, tt.installed)
		}
		if got := NewManifest().Match(tt.path); got != tt.manifest {
			t.Errorf("Manifest.Match(%q) = %v, want %v", tt.path, got, tt.manifest)
		}
		if got := NewLock().Match(tt.path); got != tt.lock {
			t.Errorf("Lock.Match(%q) = %v, want %v", tt.path, got, tt.lock)
		}
	}
	if New().Scope() != catalog.ScopeAll || NewManifest().Scope() != catalog.ScopeImage || NewLock().Scope() != catalog.ScopeSource {
		t.Error("unexpected scopes")
	}
}

// scanTree offers every file of root to the catalogers, as the walk does,
// and returns the packages found, each with its path.
func scanTree(t testing.TB, root string, cats ...catalog.Cataloger) map[string]inventory.Package {
	t.Helper()
	out := map[string]inventory.Package{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		for _, c := range cats {
			if !c.Match(rel) {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			pkgs, err := c.Parse(context.Background(), catalog.Input{Path: "/" + rel, Reader: bytes.NewReader(b), Size: int64(len(b))})
			if err != nil {
				t.Errorf("%s: %v", rel, err)
			}
			for _, pkg := range pkgs {
				out[rel] = pkg
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInstalledTree(t *testing.T) {
	root := filepath.Join("testdata", "rootfs")
	installed := scanTree(t, root, New())
	manifests := scanTree(t, root, NewManifest())

	// 48 package.json files under node_modules (find -name package.json),
	// of which 32 are package roots with a name and a version.
	if len(installed) != 32 {
		t.Errorf("installed: %d packages, want 32", len(installed))
	}
	want := map[string]inventory.Package{
		"app/node_modules/@babel/code-frame/package.json":     {Name: "@babel/code-frame", Version: "7.24.7", Licenses: []string{"MIT"}, PURL: "pkg:npm/%40babel/code-frame@7.24.7"},
		"app/node_modules/debug/node_modules/ms/package.json": {Name: "ms", Version: "2.1.2", Licenses: []string{"MIT"}, PURL: "pkg:npm/ms@2.1.2"},
		"app/node_modules/ms/package.json":                    {Name: "ms", Version: "2.0.0", Licenses: []string{"MIT"}, PURL: "pkg:npm/ms@2.0.0"},
		// An alias: the folder is string-width-cjs, the package string-width.
		"app/node_modules/string-width-cjs/package.json": {Name: "string-width", Version: "4.2.3", Licenses: []string{"MIT"}, PURL: "pkg:npm/string-width@4.2.3"},
		// The deprecated "licenses" array.
		"app/node_modules/json-schema/package.json": {Name: "json-schema", Version: "0.2.3", Licenses: []string{"AFLv2.1", "BSD"}, PURL: "pkg:npm/json-schema@0.2.3"},
		// An array of licence objects under "license", which syft misses.
		"app/node_modules/tv4/package.json":              {Name: "tv4", Version: "1.3.0", Licenses: []string{"Public Domain", "MIT"}, PURL: "pkg:npm/tv4@1.3.0"},
		"app/node_modules/rxjs/package.json":             {Name: "rxjs", Version: "7.8.1", Licenses: []string{"Apache-2.0"}, PURL: "pkg:npm/rxjs@7.8.1"},
		"usr/local/lib/node_modules/semver/package.json": {Name: "semver", Version: "7.6.2", Licenses: []string{"ISC"}, PURL: "pkg:npm/semver@7.6.2"},
	}
	for path, w := range want {
		got, ok := installed[path]
		if !ok {
			t.Errorf("%s: no package", path)
			continue
		}
		w.Type = inventory.TypeNPM
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", path, got, w)
		}
	}
	for path, p := range installed {
		if strings.Contains(path, "/test/") || strings.Contains(p.Name, "/") && !strings.HasPrefix(p.Name, "@") {
			t.Errorf("%s: a test fixture or entry-point proxy became package %s", path, p.Name)
		}
	}

	// Outside node_modules: the application and yarn as the node image
	// installs it.
	if len(manifests) != 2 {
		t.Errorf("manifests: %d packages, want 2: %v", len(manifests), manifests)
	}
	if p := manifests["opt/yarn-v1.22.22/package.json"]; p.Name != "yarn" || p.Version != "1.22.22" || !slices.Equal(p.Licenses, []string{"BSD-2-Clause"}) {
		t.Errorf("yarn: %+v", p)
	}
	if p := manifests["app/package.json"]; p.Name != "nm-fixture" || p.Version != "1.0.0" {
		t.Errorf("app: %+v", p)
	}
}

// syftFound is what syft v1.57.1 reports for testdata/rootfs
// (syft scan dir:testdata/rootfs -o json --override-default-catalogers
// javascript-package-cataloger), as name, version and path.
//
// Not listed, because syft is wrong to report them: 13 package.json files
// inside installed packages that are not packages. Five entry-point proxies
// of rxjs (rxjs/ajax, rxjs/fetch, ... with no version, which syft reports as
// "UNKNOWN") and eight test fixtures of resolve
// (resolve/test/resolver/multirepo/packages/package-a/package.json,
// "@my-scope/package-a" 0.0.0, and the like). npm never installed them and
// node cannot load them as packages (see TestNodeAgreement).
var syftFound = `@babel/code-frame 7.24.7 app/node_modules/@babel/code-frame/package.json
@babel/helper-validator-identifier 7.29.7 app/node_modules/@babel/helper-validator-identifier/package.json
@babel/highlight 7.25.9 app/node_modules/@babel/highlight/package.json
ansi-regex 5.0.1 app/node_modules/ansi-regex/package.json
ansi-styles 3.2.1 app/node_modules/ansi-styles/package.json
chalk 2.4.2 app/node_modules/chalk/package.json
color-convert 1.9.3 app/node_modules/color-convert/package.json
color-name 1.1.3 app/node_modules/color-name/package.json
debug 4.3.5 app/node_modules/debug/package.json
emoji-regex 8.0.0 app/node_modules/emoji-regex/package.json
escape-string-regexp 1.0.5 app/node_modules/escape-string-regexp/package.json
function-bind 1.1.2 app/node_modules/function-bind/package.json
has-flag 3.0.0 app/node_modules/has-flag/package.json
hasown 2.0.4 app/node_modules/hasown/package.json
is-core-module 2.18.0 app/node_modules/is-core-module/package.json
is-fullwidth-code-point 3.0.0 app/node_modules/is-fullwidth-code-point/package.json
js-tokens 4.0.0 app/node_modules/js-tokens/package.json
json-schema 0.2.3 app/node_modules/json-schema/package.json
ms 2.0.0 app/node_modules/ms/package.json
ms 2.1.2 app/node_modules/debug/node_modules/ms/package.json
nm-fixture 1.0.0 app/package.json
path-parse 1.0.7 app/node_modules/path-parse/package.json
picocolors 1.1.1 app/node_modules/picocolors/package.json
resolve 1.22.8 app/node_modules/resolve/package.json
rxjs 7.8.1 app/node_modules/rxjs/package.json
semver 7.6.2 usr/local/lib/node_modules/semver/package.json
string-width 4.2.3 app/node_modules/string-width-cjs/package.json
strip-ansi 6.0.1 app/node_modules/strip-ansi/package.json
supports-color 5.5.0 app/node_modules/supports-color/package.json
supports-preserve-symlinks-flag 1.0.0 app/node_modules/supports-preserve-symlinks-flag/package.json
tslib 2.9.1 app/node_modules/tslib/package.json
tv4 1.3.0 app/node_modules/tv4/package.json
uuid 9.0.1 app/node_modules/uuid/package.json
yarn 1.22.22 opt/yarn-v1.22.22/package.json`

func TestEverySyftPackageFound(t *testing.T) {
	all := scanTree(t, filepath.Join("testdata", "rootfs"), New(), NewManifest())
	for _, line := range strings.Split(syftFound, "\n") {
		f := strings.Fields(line)
		p, ok := all[f[2]]
		if !ok || p.Name != f[0] || p.Version != f[1] {
			t.Errorf("syft finds %s %s in %s; bulkhead: %+v", f[0], f[1], f[2], p)
		}
	}
}

// TestNodeAgreement compares the installed-package cataloger with node: a
// script walks the node_modules trees as node's resolution does and
// require()s each package.json.
func TestNodeAgreement(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	root := filepath.Join("testdata", "rootfs")
	out, err := exec.Command(node, filepath.Join("testdata", "nodewalk.js"), root,
		filepath.Join(root, "app", "node_modules"), filepath.Join(root, "usr", "local", "lib", "node_modules")).Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	var got []string
	for path, p := range scanTree(t, root, New()) {
		got = append(got, p.Name+" "+p.Version+" "+path)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("bulkhead and node disagree:\nbulkhead %q\nnode     %q", got, want)
	}
	if len(want) < 30 {
		t.Errorf("node found only %d packages", len(want))
	}
}

func TestParseManifestEdgeCases(t *testing.T) {
	tests := []struct {
		in      string
		ok      bool
		wantErr bool
		lic     []string
	}{
		{`{"name":"a","version":"1.0.0","license":"(MIT OR Apache-2.0)"}`, true, false, []string{"(MIT OR Apache-2.0)"}},
		{`{"name":"a","version":"1.0.0","license":{"type":"MIT","url":"x"}}`, true, false, []string{"MIT"}},
		{`{"name":"a","version":"1.0.0","license":"","licenses":[{"type":"BSD"}]}`, true, false, []string{"BSD"}},
		{`{"name":"a","version":"1.0.0","license":["MIT","ISC"]}`, true, false, []string{"MIT", "ISC"}},
		{`{"name":"a","version":"1.0.0","license":42}`, true, false, nil},
		{"\xef\xbb\xbf" + `{"name":"a","version":"1.0.0"}`, true, false, nil},
		{`{"name":"a"}`, false, false, nil},
		{`{"version":"1.0.0"}`, false, false, nil},
		{`{"type":"module"}`, false, false, nil},
		{`{"name":"rxjs/ajax","version":"1.0.0"}`, false, false, nil},
		{`{"name":"a b","version":"1.0.0"}`, false, false, nil},
		{`{"name":"@/x","version":"1.0.0"}`, false, false, nil},
		{`{"name":1,"version":"1.0.0"}`, false, false, nil},
		{`[]`, false, false, nil},
		{`{"name":"a",`, false, true, nil},
		{``, false, true, nil},
	}
	for _, tt := range tests {
		p, ok, err := ParseManifest(strings.NewReader(tt.in))
		if (err != nil) != tt.wantErr || ok != tt.ok {
			t.Errorf("%q: ok=%v err=%v, want ok=%v err=%v", tt.in, ok, err, tt.ok, tt.wantErr)
			continue
		}
		if ok && !slices.Equal(p.Licenses, tt.lic) {
			t.Errorf("%q: licences %q, want %q", tt.in, p.Licenses, tt.lic)
		}
	}
	big := catalog.Input{Path: "/x/package.json", Reader: strings.NewReader("{}"), Size: MaxManifestSize + 1}
	if _, err := New().Parse(context.Background(), big); err == nil || !strings.Contains(err.Error(), "/x/package.json") {
		t.Errorf("oversized manifest: %v", err)
	}
}
