package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/inventory"
)

// The language image: the Debian e2e image plus real application content
// prepared on the host (the network is used only there; the image build is
// offline). Everything here is listed in langRecipe, whose hash names both
// the cached inputs and the image tag.
var (
	langNPM = []string{"express@4.21.2", "lodash@4.17.21", "@types/node@20.11.30", "chalk@4.1.2", "semver@7.6.0", "debug@2.6.9"}
	// langNPMDev is installed as a development dependency (the lockfile
	// flags it).
	langNPMDev = []string{"is-number@7.0.0"}
	langDebs   = []string{
		"python3-requests", "python3-urllib3", "python3-idna", "python3-certifi", "python3-chardet",
		"python3-six", "python3-yaml", "python3-jinja2", "python3-markupsafe",
		"python3-pip", "python3-setuptools", "python3-wheel", "python3-packaging", "python3-pygments",
		"libcommons-lang3-java", "libcommons-io-java", "libcommons-text-java", "libcommons-codec-java",
		"libslf4j-java", "libjackson2-core-java", "libguava-java", "libjsoup-java",
		"ruby-rack", "ruby-concurrent", "ruby-i18n", "ruby-tzinfo",
	}
	// langWarLibs go into WEB-INF/lib of the war (and the war into an ear).
	langWarLibs = []string{"commons-lang3.jar", "commons-text.jar", "slf4j-api.jar", "jackson-core.jar", "jsoup.jar"}
	// Deleted in a later layer: they must not be reported.
	langDeletedNPM  = "lodash"
	langDeletedPyPI = "chardet"
)

// Two small Go programs with real module dependencies: one with a replace
// directive (a module replaced by another version), one stripped and built
// with -trimpath.
var langGoPrograms = []struct {
	name, gomod, main string
	ldflags           string
}{
	{
		name: "uuidgen",
		gomod: `module example.com/uuidgen

go 1.22

require (
	github.com/google/uuid v1.6.0
	golang.org/x/text v0.21.0
)

replace golang.org/x/text => golang.org/x/text v0.14.0
`,
		main: `package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/text/cases"
	"golang.org/x/text/language"
)

func main() { fmt.Println(cases.Title(language.English).String("id"), uuid.NewString()) }
`,
	},
	{
		name: "yamlcat",
		gomod: `module example.com/yamlcat

go 1.22

require (
	github.com/spf13/pflag v1.0.5
	gopkg.in/yaml.v3 v3.0.1
)
`,
		main: `package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

func main() {
	indent := pflag.Int("indent", 2, "indentation")
	pflag.Parse()
	var v any
	if err := yaml.NewDecoder(os.Stdin).Decode(&v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e := yaml.NewEncoder(os.Stdout)
	e.SetIndent(*indent)
	e.Encode(v)
}
`,
		ldflags: "-s -w",
	},
}

func langRecipe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "v1\nnpm %v dev %v\ndebs %v\nwar %v\n", langNPM, langNPMDev, langDebs, langWarLibs)
	for _, p := range langGoPrograms {
		fmt.Fprintf(&b, "go %s %q %q %q\n", p.name, p.gomod, p.main, p.ldflags)
	}
	return b.String()
}

const langContainerfile = `FROM %s
COPY app /srv/app
COPY dist-packages /usr/lib/python3/dist-packages
COPY java /usr/share/java
COPY apps /opt/apps
COPY specifications /usr/share/rubygems-integration/all/specifications
COPY gobin /usr/local/bin
RUN rm -rf /srv/app/node_modules/%s /usr/lib/python3/dist-packages/%s-*.dist-info
`

// requireTools skips (fails under CI) when an ecosystem tool is missing.
func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	var missing []string
	for _, bin := range tools {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the language tests need " + strings.Join(missing, ", ") + " (run scripts/setup-test-env.sh as root)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runIn runs a command in a directory with extra environment.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, stderr.String())
	}
	return stdout.String()
}

// goEnv builds the test programs with the module proxy, outside any
// workspace, with this machine's toolchain.
var goEnv = []string{"GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local", "CGO_ENABLED=0"}

// langInputs prepares (once per machine, cached under
// /var/cache/bulkhead-e2e) the build context of the language image and
// returns its directory.
func langInputs(t *testing.T) string {
	t.Helper()
	cache := filepath.Join("/var/cache/bulkhead-e2e", "languages-"+recipeTag(langRecipe()))
	ctx := filepath.Join(cache, "ctx")
	if _, err := os.Stat(filepath.Join(ctx, "Containerfile")); err == nil {
		return ctx
	}
	t.Logf("preparing the language inputs in %s (npm, Debian and the Go proxy; once per machine)", cache)
	os.RemoveAll(cache)
	tmp := cache + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	c := filepath.Join(tmp, "ctx")

	// npm: a real install with its lockfile.
	app := filepath.Join(c, "app")
	os.MkdirAll(app, 0o755)
	os.WriteFile(filepath.Join(app, "package.json"), []byte(`{"name":"e2e-shop","version":"1.0.0","private":true,"license":"MIT"}`+"\n"), 0o644)
	npmArgs := []string{"install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"}
	runIn(t, app, nil, "npm", append(npmArgs, langNPM...)...)
	runIn(t, app, nil, "npm", append(append(npmArgs, "--save-dev"), langNPMDev...)...)

	// Debian packages: Python dist-info and egg-info, jars, gemspecs.
	debs := filepath.Join(tmp, "debs")
	os.MkdirAll(debs, 0o755)
	if _, err := runErrIn(debs, "apt-get", append([]string{"download"}, langDebs...)...); err != nil {
		run(t, "apt-get", "update", "-qq")
		runIn(t, debs, nil, "apt-get", append([]string{"download"}, langDebs...)...)
	}
	files, _ := filepath.Glob(filepath.Join(debs, "*.deb"))
	x := filepath.Join(tmp, "x")
	for _, f := range files {
		run(t, "dpkg-deb", "-x", f, x)
	}
	moves := map[string]string{
		"usr/lib/python3/dist-packages":                     "dist-packages",
		"usr/share/java":                                    "java",
		"usr/share/rubygems-integration/all/specifications": "specifications",
	}
	for from, to := range moves {
		if err := os.Rename(filepath.Join(x, from), filepath.Join(c, to)); err != nil {
			t.Fatal(err)
		}
	}
	// A war as maven-war-plugin lays it out (its own pom.properties, the
	// jars in WEB-INF/lib), and an ear holding it.
	os.MkdirAll(filepath.Join(c, "apps"), 0o755)
	war := map[string][]byte{
		"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\r\nCreated-By: Maven WAR Plugin 3.4.0\r\n\r\n"),
		"META-INF/maven/org.example.shop/shop-web/pom.properties": []byte("artifactId=shop-web\ngroupId=org.example.shop\nversion=1.4.2\n"),
		"WEB-INF/web.xml": []byte(`<?xml version="1.0"?><web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="6.0"/>` + "\n"),
	}
	for _, j := range langWarLibs {
		b, err := os.ReadFile(filepath.Join(c, "java", j))
		if err != nil {
			t.Fatal(err)
		}
		war["WEB-INF/lib/"+j] = b
	}
	warBytes := zipBytes(t, war)
	os.WriteFile(filepath.Join(c, "apps", "shop-web.war"), warBytes, 0o644)
	os.WriteFile(filepath.Join(c, "apps", "shop.ear"), zipBytes(t, map[string][]byte{
		"META-INF/MANIFEST.MF": []byte("Manifest-Version: 1.0\r\nCreated-By: Maven EAR Plugin 3.3.0\r\n\r\n"),
		"META-INF/maven/org.example.shop/shop-ear/pom.properties": []byte("artifactId=shop-ear\ngroupId=org.example.shop\nversion=1.4.2\n"),
		"shop-web-1.4.2.war": warBytes,
	}), 0o644)

	// Go: the two programs, and bulkhead itself (a large real binary).
	gobin := filepath.Join(c, "gobin")
	os.MkdirAll(gobin, 0o755)
	for _, p := range langGoPrograms {
		src := filepath.Join(tmp, "go", p.name)
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "go.mod"), []byte(p.gomod), 0o644)
		os.WriteFile(filepath.Join(src, "main.go"), []byte(p.main), 0o644)
		runIn(t, src, goEnv, "go", "mod", "tidy")
		args := []string{"build", "-o", filepath.Join(gobin, p.name)}
		if p.ldflags != "" {
			args = append(args, "-trimpath", "-ldflags="+p.ldflags)
		}
		runIn(t, src, goEnv, "go", append(args, ".")...)
		// The source tree is kept for the fs test.
		os.MkdirAll(filepath.Join(tmp, "src"), 0o755)
		if err := os.Rename(src, filepath.Join(tmp, "src", p.name)); err != nil {
			t.Fatal(err)
		}
	}
	runIn(t, repoRoot, []string{"GOWORK=off", "GOTOOLCHAIN=local"}, "go", "build", "-o", filepath.Join(gobin, "bulkhead"), "./cmd/bulkhead")

	for _, must := range []string{"app/node_modules/" + langDeletedNPM + "/package.json", "dist-packages/" + langDeletedPyPI + "-*.dist-info/METADATA"} {
		if m, _ := filepath.Glob(filepath.Join(c, must)); len(m) == 0 {
			t.Fatalf("prepared inputs lack %s: the deletion check would prove nothing", must)
		}
	}
	os.WriteFile(filepath.Join(c, "Containerfile"), nil, 0o644) // marks the inputs complete
	os.RemoveAll(x)
	if err := os.Rename(tmp, cache); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func runErrIn(dir, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// zipBytes writes a zip archive (deflated, sorted entries).
func zipBytes(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(entries[n])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// languagesImage builds the language image (once per machine) and returns
// its reference and the directory of its prepared inputs.
func languagesImage(t *testing.T) (string, string) {
	t.Helper()
	requireTools(t, "npm", "node", "python3", "ruby", "unzip", "go", "apt-get", "dpkg-deb")
	base := debianImage(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	ctx := langInputs(t)
	cf := fmt.Sprintf(langContainerfile, base, langDeletedNPM, langDeletedPyPI)
	ref := "localhost/e2e-languages:" + recipeTag(cf+langRecipe())
	if !imageExists(ref) {
		if err := os.WriteFile(filepath.Join(ctx, "Containerfile"), []byte(cf), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "podman", "build", "--network=none", "-q", "-t", ref, ctx)
	}
	return ref, ctx
}

// langKey is the compared identity: ecosystem, name, version. Python names
// are compared in PEP 503 form (importlib and the file names differ in case
// and separators only).
func langKey(eco, name, version string) string {
	if eco == inventory.TypePyPI {
		name = strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(name, "-"))
	}
	return eco + " " + name + " " + version
}

var osTypes = map[string]bool{inventory.TypeAPK: true, inventory.TypeDeb: true, inventory.TypeRPM: true}

// nativeGo lists Go modules with `go version -m` over the whole tree: main
// module, dependencies with replacements applied (the replacement is what
// was compiled in), and the toolchain as stdlib.
func nativeGo(t *testing.T, root string) []string {
	out := run(t, "go", "version", "-m", root)
	var keys []string
	var last string // the key of the previous dep line, for "=>"
	drop := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && strings.HasSuffix(f[0], ":") && strings.HasPrefix(f[1], "go1"):
			keys = append(keys, langKey(inventory.TypeGo, "stdlib", strings.TrimPrefix(f[1], "go")))
		case len(f) >= 3 && (f[0] == "mod" || f[0] == "dep"):
			last = langKey(inventory.TypeGo, f[1], f[2])
			keys = append(keys, last)
		case len(f) >= 2 && f[0] == "=>":
			drop[last] = true
			v := ""
			if len(f) >= 3 && !strings.HasPrefix(f[2], "h1:") {
				v = f[2]
			}
			keys = append(keys, langKey(inventory.TypeGo, f[1], v))
		}
	}
	var out2 []string
	for _, k := range keys {
		if !drop[k] {
			out2 = append(out2, k)
		}
	}
	return out2
}

// nodeList is node reading package.json files as its resolver finds
// packages: node_modules/<name> and node_modules/@scope/<name> at any depth,
// and the project holding a top node_modules.
const nodeList = `
const fs = require('fs'), path = require('path');
const out = new Set();
function pkg(dir) {
  let j;
  try { j = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8').replace(/^\uFEFF/, '')); } catch (e) { return; }
  if (typeof j.name === 'string' && j.name && typeof j.version === 'string' && j.version) out.add(j.name + ' ' + j.version);
}
function dirs(d) { try { return fs.readdirSync(d, {withFileTypes: true}).filter(e => e.isDirectory()); } catch (e) { return []; } }
function walk(dir, inModules) {
  for (const e of dirs(dir)) {
    const p = path.join(dir, e.name);
    if (e.name === 'node_modules') { if (!inModules) pkg(dir); modules(p); } else walk(p, inModules);
  }
}
function modules(nm) {
  for (const e of dirs(nm)) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(nm, e.name);
    const pkgs = e.name.startsWith('@') ? dirs(p).map(s => path.join(p, s.name)) : [p];
    for (const q of pkgs) { pkg(q); walk(q, true); }
  }
}
walk(process.argv[1], false);
console.log([...out].join('\n'));
`

func nativeNPM(t *testing.T, root string) []string {
	var keys []string
	for _, l := range lines(run(t, "node", "-e", nodeList, root)) {
		name, version, _ := strings.Cut(l, " ")
		keys = append(keys, langKey(inventory.TypeNPM, name, version))
	}
	return keys
}

// pythonList is importlib.metadata over every site-packages and
// dist-packages directory of the tree.
const pythonList = `
import importlib.metadata as md, os, sys
paths = [d for d, _, _ in os.walk(sys.argv[1]) if os.path.basename(d) in ("site-packages", "dist-packages")]
for dist in md.distributions(path=paths):
    print(dist.metadata["Name"], dist.version)
`

func nativePyPI(t *testing.T, root string) []string {
	var keys []string
	for _, l := range lines(run(t, "python3", "-c", pythonList, root)) {
		f := strings.Fields(l)
		if len(f) == 2 {
			keys = append(keys, langKey(inventory.TypePyPI, f[0], f[1]))
		}
	}
	return keys
}

// rubyList loads each installed gemspec with RubyGems.
const rubyList = `ARGV.each { |f| s = Gem::Specification.load(f); puts "#{s.name} #{s.version}" if s }`

func nativeGem(t *testing.T, root string) []string {
	var specs []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".gemspec") && strings.Contains(p, "/specifications/") {
			specs = append(specs, p)
		}
		return nil
	})
	if len(specs) == 0 {
		return nil
	}
	var keys []string
	for _, l := range lines(run(t, "ruby", append([]string{"-e", rubyList}, specs...)...)) {
		name, version, _ := strings.Cut(l, " ")
		keys = append(keys, langKey(inventory.TypeGem, name, version))
	}
	return keys
}

var pomPropsRE = regexp.MustCompile(`(^|/)META-INF/maven/[^/]+/[^/]+/pom\.properties$`)

// nativeMaven reads pom.properties with unzip from every jar, war and ear
// of the tree (regular files: Debian's versioned names are symlinks), and
// from the archives nested in them.
func nativeMaven(t *testing.T, root string) []string {
	var keys []string
	tmp := t.TempDir()
	n := 0
	var visit func(archive string, depth int)
	visit = func(archive string, depth int) {
		for _, entry := range lines(run(t, "unzip", "-Z1", archive)) {
			switch {
			case pomPropsRE.MatchString(entry):
				props := map[string]string{}
				for _, l := range lines(run(t, "unzip", "-p", archive, entry)) {
					if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
						props[strings.TrimSpace(k)] = strings.TrimSpace(v)
					}
				}
				if props["groupId"] != "" && props["artifactId"] != "" && props["version"] != "" {
					keys = append(keys, langKey(inventory.TypeMaven, props["groupId"]+":"+props["artifactId"], props["version"]))
				}
			case depth < 4 && (strings.HasSuffix(entry, ".jar") || strings.HasSuffix(entry, ".war")):
				n++
				inner := filepath.Join(tmp, fmt.Sprintf("%d-%s", n, filepath.Base(entry)))
				b, err := exec.Command("unzip", "-p", archive, entry).Output()
				if err != nil {
					t.Fatalf("unzip -p %s %s: %v", archive, entry, err)
				}
				os.WriteFile(inner, b, 0o644)
				visit(inner, depth+1)
			}
		}
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			switch filepath.Ext(p) {
			case ".jar", ".war", ".ear":
				visit(p, 0)
			}
		}
		return nil
	})
	return keys
}

// ratio returns the share of want found in have, over distinct keys.
func ratio(have, want map[string]bool) (int, int) {
	hit := 0
	for k := range want {
		if have[k] {
			hit++
		}
	}
	return hit, len(want)
}

func set(keys []string) map[string]bool {
	m := map[string]bool{}
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// TestLanguagesMatchNativeTools compares bulkhead's language packages in a
// multi-layer image with what each ecosystem's own tool reads from the
// flattened filesystem, and checks that packages deleted in a later layer
// are gone.
func TestLanguagesMatchNativeTools(t *testing.T) {
	requireEnv(t)
	ref, _ := languagesImage(t)
	img := filepath.Join(t.TempDir(), "img.tar")
	run(t, "podman", "save", "-q", "--format", "oci-archive", "-o", img, ref)
	inv := scanJSON(t, "image", "--input", img, "--scanners", "none")
	root := flatten(t, ref)

	native := map[string][]string{
		inventory.TypeGo:    nativeGo(t, root),
		inventory.TypeNPM:   nativeNPM(t, root),
		inventory.TypePyPI:  nativePyPI(t, root),
		inventory.TypeMaven: nativeMaven(t, root),
		inventory.TypeGem:   nativeGem(t, root),
	}
	ours := map[string][]string{}
	for _, p := range inv.Packages {
		if osTypes[p.Type] {
			continue
		}
		ours[p.Type] = append(ours[p.Type], langKey(p.Type, p.Name, p.Version))
		if p.Type == inventory.TypeNPM && p.Name == langDeletedNPM {
			t.Errorf("npm %s was deleted in a later layer but is reported (%+v)", p.Name, p.Locations)
		}
		if p.Type == inventory.TypePyPI && strings.EqualFold(p.Name, langDeletedPyPI) {
			t.Errorf("pypi %s was deleted in a later layer but is reported (%+v)", p.Name, p.Locations)
		}
		if !strings.HasPrefix(p.PURL, "pkg:"+p.Type+"/") {
			t.Errorf("%s %s %s: purl %q is not of its type", p.Type, p.Name, p.Version, p.PURL)
		}
		if l := p.Locations[0].Layer; l == nil || l.Index == 0 {
			t.Errorf("%s %s %s: attributed to layer %+v, want one of the application layers", p.Type, p.Name, p.Version, l)
		}
	}
	allOurs, allNative := map[string]bool{}, map[string]bool{}
	ecos := []string{}
	for eco := range ours {
		if _, ok := native[eco]; !ok {
			native[eco] = nil // an ecosystem with no native listing: all false positives
		}
	}
	for eco := range native {
		ecos = append(ecos, eco)
	}
	sort.Strings(ecos)
	for _, eco := range ecos {
		o, n := set(ours[eco]), set(native[eco])
		for k := range o {
			allOurs[k] = true
		}
		for k := range n {
			allNative[k] = true
		}
		found, want := ratio(o, n)
		right, got := ratio(n, o)
		onlyOurs, onlyNative := diffSets(ours[eco], native[eco])
		sort.Strings(onlyOurs)
		sort.Strings(onlyNative)
		t.Logf("%-6s native %4d bulkhead %4d  recall %d/%d  precision %d/%d  only bulkhead %v  only native %v",
			eco, want, got, found, want, right, got, onlyOurs, onlyNative)
		if want == 0 && got > 0 {
			t.Errorf("%s: bulkhead reports %d packages no native tool lists", eco, got)
		}
	}
	for _, eco := range []string{inventory.TypeGo, inventory.TypeNPM, inventory.TypePyPI, inventory.TypeMaven, inventory.TypeGem} {
		if len(native[eco]) == 0 {
			t.Errorf("%s: the native tool listed nothing: the comparison proves nothing", eco)
		}
	}
	found, want := ratio(allOurs, allNative)
	right, got := ratio(allNative, allOurs)
	recall, precision := float64(found)/float64(max(want, 1)), float64(right)/float64(max(got, 1))
	t.Logf("all ecosystems: recall %.4f (%d/%d), precision %.4f (%d/%d)", recall, found, want, precision, right, got)
	if recall < 0.99 || precision < 0.99 {
		t.Errorf("recall %.4f, precision %.4f: the acceptance bar is 0.99 for both", recall, precision)
	}
	if k := langKey(inventory.TypeNPM, langDeletedNPM, "4.17.21"); allNative[k] {
		t.Errorf("the flattened filesystem still holds %s: the deletion layer did not apply", k)
	}
}

// TestFSSourceTree scans a source tree holding lockfiles and manifests
// (no installed packages) with `bulkhead fs` and compares each file's
// packages with what the ecosystem's own tool reads from it.
func TestFSSourceTree(t *testing.T) {
	requireEnv(t)
	_, ctx := languagesImage(t)
	prepared := filepath.Dir(ctx)
	src := t.TempDir()
	// An npm project without node_modules: package.json and its lockfile.
	for _, f := range []string{"package.json", "package-lock.json"} {
		copyTo(t, filepath.Join(ctx, "app", f), filepath.Join(src, "web", f))
	}
	// A Go module with a replace directive.
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		copyTo(t, filepath.Join(prepared, "src", "uuidgen", f), filepath.Join(src, "cmd", "uuidgen", f))
	}
	// Pinned Python requirements (the versions Debian ships above), and a
	// real Cargo.lock from the rust cataloger's fixtures.
	reqs := "# service dependencies\nrequests==2.28.1\nurllib3==1.26.12 ; python_version >= \"3.7\"\nidna==3.3  # via requests\nJinja2==3.1.2\n\nflask>=2.0\n"
	os.MkdirAll(filepath.Join(src, "svc"), 0o755)
	os.WriteFile(filepath.Join(src, "svc", "requirements.txt"), []byte(reqs), 0o644)
	copyTo(t, filepath.Join(repoRoot, "catalog", "rust", "testdata", "in-toto-attestation-v1.2.0.Cargo.lock"), filepath.Join(src, "rust", "Cargo.lock"))

	inv := scanJSON(t, "fs", src, "--scanners", "none")
	byFile := map[string][]string{}
	dev := map[string]bool{}
	var mains []string
	for _, p := range inv.Packages {
		for _, l := range p.Locations {
			rel := strings.TrimPrefix(l.Path, "/")
			if r, err := filepath.Rel(src, l.Path); err == nil && !strings.HasPrefix(r, "..") {
				rel = r
			}
			byFile[rel] = append(byFile[rel], p.Type+" "+p.Name+" "+p.Version)
		}
		if p.Dev {
			dev[p.Name] = true
		}
		if p.Main {
			mains = append(mains, p.Type+" "+p.Name)
		}
	}

	// npm: node reads the lockfile's "packages" map (the project itself
	// under "").
	nodeLock := `const l = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
for (const [k, v] of Object.entries(l.packages)) if (v.version) console.log('npm ' + (v.name || k.slice(k.lastIndexOf('node_modules/') + 13)) + ' ' + v.version);`
	npmWant := lines(run(t, "node", "-e", nodeLock, filepath.Join(src, "web", "package-lock.json")))
	compareFile(t, byFile, "web/package-lock.json", npmWant)
	for _, d := range langNPMDev {
		name, _, _ := strings.Cut(d, "@")
		if !dev[name] {
			t.Errorf("npm %s is a dev dependency in the lockfile but is not flagged", name)
		}
	}
	if dev["express"] {
		t.Errorf("express is a production dependency but is flagged dev")
	}
	sort.Strings(mains)
	if want := []string{"golang example.com/uuidgen", "npm e2e-shop"}; !slices.Equal(mains, want) {
		t.Errorf("main packages %v, want %v", mains, want)
	}

	// Go: the go command's reading of go.mod, replacements applied.
	var mod struct {
		Module  struct{ Path string }
		Require []struct{ Path, Version string }
		Replace []struct {
			Old, New struct{ Path, Version string }
		}
	}
	if err := json.Unmarshal([]byte(runIn(t, filepath.Join(src, "cmd", "uuidgen"), goEnv, "go", "mod", "edit", "-json")), &mod); err != nil {
		t.Fatal(err)
	}
	goWant := []string{"golang " + mod.Module.Path + " "}
	for _, r := range mod.Require {
		p, v := r.Path, r.Version
		for _, rep := range mod.Replace {
			if rep.Old.Path == p && (rep.Old.Version == "" || rep.Old.Version == v) {
				p, v = rep.New.Path, rep.New.Version
			}
		}
		goWant = append(goWant, "golang "+p+" "+v)
	}
	compareFile(t, byFile, "cmd/uuidgen/go.mod", goWant)

	// Python: the pinned (==) requirements; the unpinned flask is not a
	// version bulkhead could know.
	compareFile(t, byFile, "svc/requirements.txt", []string{"pypi requests 2.28.1", "pypi urllib3 1.26.12", "pypi idna 3.3", "pypi Jinja2 3.1.2"})

	// Rust: Python's TOML parser over Cargo.lock.
	cargoList := `import sys, tomllib
for p in tomllib.load(open(sys.argv[1], "rb"))["package"]:
    print("cargo", p["name"], p["version"])`
	compareFile(t, byFile, "rust/Cargo.lock", lines(run(t, "python3", "-c", cargoList, filepath.Join(src, "rust", "Cargo.lock"))))
}

func compareFile(t *testing.T, byFile map[string][]string, file string, want []string) {
	t.Helper()
	got := byFile[file]
	sort.Strings(got)
	sort.Strings(want)
	t.Logf("%s: bulkhead %d, native %d", file, len(got), len(want))
	compareSets(t, file, got, want)
}

// copyTo copies a file, making its directory.
func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, src, dst, 0o644)
}
