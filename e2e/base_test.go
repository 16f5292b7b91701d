package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/report"
)

// Base images of these tests, each built from a distinct root filesystem:
// the Debian bookworm debootstrap of debianImage, the Alpine 3.18.9
// minirootfs (the first layer of the repository's demo image), a BusyBox
// root filesystem, and a "fat" Debian base carrying old Python packages
// (real metadata of urllib3 1.26.12 and Jinja2 3.1.2) so that moving off it
// removes real vulnerabilities.
type baseImages struct {
	reg                                 *registry
	debian, debianPy, alpine, busybox   string // registry references
	local                               map[string]string
	appDebPy, appAlpine, appBusy, appNo string // registry references of apps built FROM them
	catalog                             string
}

func pyFiles(t *testing.T, names ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	root := filepath.Join(repoRoot, "catalog", "python", "testdata")
	for _, n := range names {
		matches, _ := filepath.Glob(filepath.Join(root, "*", n, "*"))
		if len(matches) == 0 {
			t.Fatalf("no fixture %s", n)
		}
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			out["py/"+n+"/"+filepath.Base(m)] = b
		}
	}
	return out
}

// alpineLayer extracts the Alpine minirootfs layer of the demo image.
func alpineLayer(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run(t, "tar", "-C", dir, "-xf", filepath.Join(repoRoot, "testdata", "images", "alpine-demo.oci.tar"), "index.json", "blobs")
	var index struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) == 0 {
		t.Fatalf("demo index.json: %v", err)
	}
	blob := func(d string) string { return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")) }
	var man struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	b, _ = os.ReadFile(blob(index.Manifests[0].Digest))
	if err := json.Unmarshal(b, &man); err != nil || len(man.Layers) == 0 {
		t.Fatalf("demo manifest: %v", err)
	}
	return blob(man.Layers[0].Digest)
}

// busyboxRootfs makes a BusyBox root filesystem tar; extra files make a
// different base.
func busyboxRootfs(t *testing.T, extra string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "etc", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin", "busybox"), 0o755)
	for _, l := range []string{"sh", "true", "cat", "ls"} {
		os.Symlink("busybox", filepath.Join(root, "bin", l))
	}
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644)
	if extra != "" {
		os.WriteFile(filepath.Join(root, "etc", "extra"), []byte(extra), 0o644)
	}
	tarPath := filepath.Join(dir, "root.tar")
	// Fixed times and owners: the same recipe gives the same layer.
	run(t, "tar", "--sort=name", "--mtime=2024-01-01", "--owner=0", "--group=0", "--numeric-owner", "-C", root, "-cf", tarPath, ".")
	return tarPath
}

// setupBases builds the images once per machine (podman keeps them) and
// gives each test its own registry and catalog.
func setupBases(t *testing.T) *baseImages {
	t.Helper()
	requireEnv(t)
	return buildBases(t)
}

func buildBases(t *testing.T) *baseImages {
	debianImage(t) // builds localhost/e2e-debian-base:bookworm once per machine
	buildMu.Lock()
	defer buildMu.Unlock()
	b := &baseImages{local: map[string]string{}}
	b.local["debian"] = debianBase
	b.local["alpine"] = "localhost/e2e-base-alpine:3.18.9"
	if !imageExists(b.local["alpine"]) {
		run(t, "podman", "import", "-q", alpineLayer(t), b.local["alpine"])
	}
	b.local["busybox"] = "localhost/e2e-base-busybox:1"
	if !imageExists(b.local["busybox"]) {
		run(t, "podman", "import", "-q", "--change", "USER=65532", busyboxRootfs(t, ""), b.local["busybox"])
	}
	pyCF := "FROM " + debianBase + "\nCOPY py/ /usr/lib/python3/dist-packages/\n"
	b.local["debianPy"] = "localhost/e2e-base-debian-py:" + recipeTag(pyCF)
	if !imageExists(b.local["debianPy"]) {
		build(t, b.local["debianPy"], pyCF, pyFiles(t, "urllib3-1.26.12.egg-info", "Jinja2-3.1.2.egg-info"))
	}
	// Applications FROM each base, and one FROM a base nobody indexed.
	apps := map[string]string{
		"appDebPy":  "FROM " + b.local["debianPy"] + "\nCOPY app.txt /srv/app.txt\nUSER 1000\n",
		"appAlpine": "FROM " + b.local["alpine"] + "\nCOPY app.txt /srv/app.txt\nCOPY py/ /usr/lib/python3.11/site-packages/\n",
		"appBusy":   "FROM " + b.local["busybox"] + "\nCOPY app.txt /srv/app.txt\n",
	}
	other := "localhost/e2e-base-busybox-other:1"
	if !imageExists(other) {
		run(t, "podman", "import", "-q", busyboxRootfs(t, "not indexed\n"), other)
	}
	apps["appNo"] = "FROM " + other + "\nCOPY app.txt /srv/app.txt\n"
	files := map[string][]byte{"app.txt": []byte("application\n")}
	for k, v := range pyFiles(t, "requests-2.28.1.egg-info") {
		files[k] = v
	}
	b.reg = startRegistry(t, false)
	for name, cf := range apps {
		ref := "localhost/e2e-base-" + strings.ToLower(name) + ":" + recipeTag(cf)
		if !imageExists(ref) {
			build(t, ref, cf, files)
		}
		b.local[name] = ref
	}
	push := func(name string) string { return b.reg.push(t, b.local[name], "e2e/"+strings.ToLower(name)+":1") }
	b.debian, b.debianPy, b.alpine, b.busybox = push("debian"), push("debianPy"), push("alpine"), push("busybox")
	b.appDebPy, b.appAlpine, b.appBusy, b.appNo = push("appDebPy"), push("appAlpine"), push("appBusy"), push("appNo")

	b.catalog = filepath.Join(t.TempDir(), "catalog.json")
	out, errOut, code := bulkhead("base", "index", "--insecure", "--quiet", "--catalog", b.catalog, b.debian, b.debianPy, b.alpine, b.busybox, "scratch")
	if code != 0 {
		t.Fatalf("base index: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Logf("base index:\n%s", out)
	return b
}

type detection struct {
	Detection struct {
		Method string `json:"method"`
		Base   string `json:"base"`
		Layers int    `json:"baseLayers"`
		Reason string `json:"reason"`
	} `json:"detection"`
}

func TestBaseDetection(t *testing.T) {
	b := setupBases(t)
	list, errOut, code := bulkhead("base", "list", "--catalog", b.catalog)
	if code != 0 || !strings.Contains(list, b.debianPy) || !strings.Contains(list, "musl") || !strings.Contains(list, "glibc") {
		t.Errorf("base list: %d %s\n%s", code, errOut, list)
	}
	cases := []struct{ app, base, libc string }{
		{b.appDebPy, b.debianPy, "glibc"}, // the longest match, not plain Debian
		{b.appAlpine, b.alpine, "musl"},
		{b.appBusy, b.busybox, "none"},
		// A base is its own base.
		{b.debian, b.debian, "glibc"},
	}
	for _, c := range cases {
		t.Run(c.app, func(t *testing.T) {
			out, errOut, code := bulkhead("recommend", "--detect-only", "--insecure", "--quiet", "--format", "json", "--catalog", b.catalog, c.app)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var d detection
			if err := json.Unmarshal([]byte(out), &d); err != nil {
				t.Fatal(err)
			}
			if d.Detection.Base != c.base || d.Detection.Layers == 0 {
				t.Errorf("base %q (%s: %s), want %q", d.Detection.Base, d.Detection.Method, d.Detection.Reason, c.base)
			}
		})
	}
	out, errOut, code := bulkhead("recommend", "--detect-only", "--insecure", "--quiet", "--catalog", b.catalog, b.appNo)
	if code != 2 || !strings.Contains(out, "not in the catalog") || !strings.Contains(errOut, "not in the catalog") {
		t.Errorf("an image whose base was not indexed: exit %d\n%s\n%s", code, out, errOut)
	}
}

type summary struct {
	Size     int64
	Packages int
	Vulns    map[string]int
}

// ownScan scans an image with `bulkhead image` and counts what it reports.
func ownScan(t *testing.T, ref string) summary {
	t.Helper()
	out, errOut, code := bulkhead("image", "--insecure", "--quiet", "--format", "json", ref)
	if code != 0 {
		t.Fatalf("scan %s: %s", ref, errOut)
	}
	var doc report.ResultDocument
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	return summary{Size: doc.Inventory.Target.Size, Packages: len(doc.Inventory.Packages), Vulns: doc.Summary}
}

func TestRecommendDeltasEqualOwnScans(t *testing.T) {
	b := setupBases(t)
	out, errOut, code := bulkhead("recommend", "--insecure", "--quiet", "--format", "json", "--catalog", b.catalog, b.appDebPy)
	if code != 0 {
		t.Fatalf("recommend: exit %d: %s", code, errOut)
	}
	var rec struct {
		Current struct {
			Ref   string         `json:"ref"`
			Vulns map[string]int `json:"vulnerabilities"`
		} `json:"currentBase"`
		Candidates []struct {
			Ref           string         `json:"ref"`
			Delta         map[string]int `json:"vulnerabilitiesDelta"`
			Removed       map[string]int `json:"vulnerabilitiesRemoved"`
			SizeDelta     int64          `json:"sizeDelta"`
			PackagesDelta int            `json:"packagesDelta"`
			NeedsChanges  []string       `json:"needsChanges"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Current.Ref != b.debianPy {
		t.Fatalf("current base %s, want %s", rec.Current.Ref, b.debianPy)
	}
	cur := ownScan(t, b.debianPy)
	if cur.Vulns["HIGH"]+cur.Vulns["MEDIUM"]+cur.Vulns["CRITICAL"] == 0 {
		t.Fatalf("the Python base has no findings: the test proves nothing (%v)", cur.Vulns)
	}
	seen := map[string]bool{}
	for _, c := range rec.Candidates {
		seen[c.Ref] = true
		if c.Ref == "scratch" {
			continue
		}
		own := ownScan(t, c.Ref)
		for _, sev := range []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"} {
			if c.Delta[sev] != own.Vulns[sev]-cur.Vulns[sev] {
				t.Errorf("%s %s: recommend says %+d, own scans %d - %d", c.Ref, sev, c.Delta[sev], own.Vulns[sev], cur.Vulns[sev])
			}
		}
		if c.SizeDelta != own.Size-cur.Size || c.PackagesDelta != own.Packages-cur.Packages {
			t.Errorf("%s: size %+d packages %+d; own scans %+d %+d", c.Ref, c.SizeDelta, c.PackagesDelta, own.Size-cur.Size, own.Packages-cur.Packages)
		}
		if c.Ref == b.alpine && !strings.Contains(strings.Join(c.NeedsChanges, ";"), "glibc to musl") {
			t.Errorf("alpine for a Debian app: needs %v", c.NeedsChanges)
		}
		if c.Ref == b.debian && len(c.NeedsChanges) != 0 {
			t.Errorf("plain Debian for a Debian app should be a drop-in: %v", c.NeedsChanges)
		}
	}
	for _, want := range []string{b.debian, b.alpine, b.busybox, "scratch"} {
		if !seen[want] {
			t.Errorf("candidate %s missing", want)
		}
	}
	table, _, code := bulkhead("recommend", "--insecure", "--quiet", "--catalog", b.catalog, b.appDebPy)
	if code != 0 || !strings.Contains(table, "fewer vulnerabilities") || !strings.Contains(table, "needs change") {
		t.Errorf("table:\n%s", table)
	}
}

// appVersions builds two versions of an application on the Alpine base:
// urllib3 1.26.12 then 2.7.0 (real metadata), and a configuration change.
func appVersions(t *testing.T, b *baseImages) (string, string) {
	t.Helper()
	v1 := "FROM " + b.local["alpine"] + "\nCOPY py/ /usr/lib/python3.11/site-packages/\nENV APP_MODE=prod TOKEN=one\nUSER 1000\nENTRYPOINT [\"/bin/sh\"]\n"
	v2 := "FROM " + b.local["alpine"] + "\nCOPY py/ /usr/lib/python3.11/site-packages/\nENV APP_MODE=prod TOKEN=two DEBUG=1\nEXPOSE 8080\nUSER root\nENTRYPOINT [\"/bin/sh\"]\n"
	r1, r2 := "localhost/e2e-base-appv:1-"+recipeTag(v1), "localhost/e2e-base-appv:2-"+recipeTag(v2)
	buildMu.Lock()
	defer buildMu.Unlock()
	if !imageExists(r1) {
		build(t, r1, v1, pyFiles(t, "urllib3-1.26.12.egg-info", "requests-2.28.1.egg-info"))
	}
	if !imageExists(r2) {
		build(t, r2, v2, pyFiles(t, "urllib3-2.7.0.dist-info", "requests-2.28.1.egg-info"))
	}
	return b.reg.push(t, r1, "e2e/appv:1"), b.reg.push(t, r2, "e2e/appv:2")
}

func vulnIDs(t *testing.T, ref string) map[string]string {
	t.Helper()
	out, errOut, code := bulkhead("image", "--insecure", "--quiet", "--format", "json", ref)
	if code != 0 {
		t.Fatalf("scan %s: %s", ref, errOut)
	}
	var doc report.ResultDocument
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, f := range doc.Findings {
		if f.Suppressed == nil && f.Package != nil {
			ids[f.ID+" "+f.Package.Name] = f.Severity.String()
		}
	}
	return ids
}

func TestCompareTwoVersions(t *testing.T) {
	b := setupBases(t)
	a, c := appVersions(t, b)
	out, errOut, code := bulkhead("compare", "--insecure", "--quiet", "--format", "json", a, c)
	if code != 0 {
		t.Fatalf("compare: exit %d: %s", code, errOut)
	}
	var d struct {
		Added, Removed  []struct{ Name string } `json:"-"`
		PackagesAdded   []json.RawMessage       `json:"packagesAdded"`
		PackagesRemoved []json.RawMessage       `json:"packagesRemoved"`
		PackagesChanged []struct {
			Name          string
			Before, After []string
		} `json:"packagesChanged"`
		Fixed []struct {
			ID, Package, Severity string
		} `json:"vulnerabilitiesFixed"`
		Introduced []struct {
			ID, Package, Severity string
		} `json:"vulnerabilitiesIntroduced"`
		Config []struct{ Field, Before, After string } `json:"configChanges"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.PackagesAdded) != 0 || len(d.PackagesRemoved) != 0 || len(d.PackagesChanged) != 1 ||
		d.PackagesChanged[0].Name != "urllib3" || d.PackagesChanged[0].Before[0] != "1.26.12" || d.PackagesChanged[0].After[0] != "2.7.0" {
		t.Errorf("packages: added %d removed %d changed %+v", len(d.PackagesAdded), len(d.PackagesRemoved), d.PackagesChanged)
	}
	// The vulnerability changes are exactly the difference of the two scans.
	va, vb := vulnIDs(t, a), vulnIDs(t, c)
	var wantFixed, wantIntro, gotFixed, gotIntro []string
	for k := range va {
		if _, ok := vb[k]; !ok {
			wantFixed = append(wantFixed, k)
		}
	}
	for k := range vb {
		if _, ok := va[k]; !ok {
			wantIntro = append(wantIntro, k)
		}
	}
	for _, v := range d.Fixed {
		gotFixed = append(gotFixed, v.ID+" "+v.Package)
	}
	for _, v := range d.Introduced {
		gotIntro = append(gotIntro, v.ID+" "+v.Package)
	}
	for _, s := range [][]string{wantFixed, wantIntro, gotFixed, gotIntro} {
		sort.Strings(s)
	}
	if len(wantFixed) == 0 {
		t.Fatal("the urllib3 upgrade fixes nothing: the test proves nothing")
	}
	if strings.Join(gotFixed, ";") != strings.Join(wantFixed, ";") || strings.Join(gotIntro, ";") != strings.Join(wantIntro, ";") {
		t.Errorf("fixed %v introduced %v\nwant %v %v", gotFixed, gotIntro, wantFixed, wantIntro)
	}
	cfg := map[string][2]string{}
	for _, c := range d.Config {
		cfg[c.Field] = [2]string{c.Before, c.After}
	}
	want := map[string][2]string{
		"user": {"1000", "root"}, "exposedPorts": {"", "8080/tcp"},
		"env added": {"", "DEBUG"}, "env value changed": {"TOKEN", "TOKEN"},
	}
	if len(cfg) != len(want) {
		t.Errorf("config changes %v, want %v", cfg, want)
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config %s: %v, want %v", k, cfg[k], v)
		}
	}
	if strings.Contains(out, "two") || strings.Contains(out, "TOKEN=") {
		t.Error("an environment value leaked into the report")
	}
	// CI gate: going back re-introduces what the upgrade fixed.
	_, errOut, code = bulkhead("compare", "--insecure", "--quiet", "--fail-on-new", "LOW", c, a)
	if code != 1 || !strings.Contains(errOut, "introduces") {
		t.Errorf("--fail-on-new LOW on a downgrade: exit %d %s", code, errOut)
	}
	wantCode := 0
	if len(wantIntro) > 0 {
		wantCode = 3
	}
	if _, errOut, code = bulkhead("compare", "--insecure", "--quiet", "--fail-on-new", "UNKNOWN", "--exit-code", "3", a, c); code != wantCode {
		t.Errorf("--fail-on-new on the upgrade: exit %d, want %d: %s", code, wantCode, errOut)
	}
}

func TestSBOMValidateAgainstImage(t *testing.T) {
	b := setupBases(t)
	syft := syftBin(t)
	dir := t.TempDir()
	archive := func(name string) string {
		p := filepath.Join(dir, name+".tar")
		run(t, "podman", "save", "-q", "--format", "oci-archive", "-o", p, b.local[name])
		return p
	}
	app, other := archive("appAlpine"), archive("appDebPy")
	sboms := map[string]string{}
	for _, f := range []string{"cyclonedx", "spdx-json"} {
		p := filepath.Join(dir, "bulkhead."+f+".json")
		if _, errOut, code := bulkhead("image", "--quiet", "--format", f, "--output", p, "oci-archive:"+app); code != 0 {
			t.Fatal(errOut)
		}
		sboms["bulkhead "+f] = p
	}
	for _, f := range []string{"cyclonedx-json", "spdx-json"} {
		p := filepath.Join(dir, "syft."+f+".json")
		run(t, syft, "scan", "-q", "oci-archive:"+app, "-o", f+"="+p)
		sboms["syft "+f] = p
	}
	otherSBOM := filepath.Join(dir, "other.json")
	run(t, syft, "scan", "-q", "oci-archive:"+other, "-o", "cyclonedx-json="+otherSBOM)

	validateJSON := func(sbom string) (map[string]any, int, string) {
		out, errOut, code := bulkhead("sbom", "validate", "--quiet", "--format", "json", "--sbom", sbom, "oci-archive:"+app)
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: %v\n%s", errOut, err, out)
		}
		return r, code, errOut
	}
	for name, p := range sboms {
		r, code, errOut := validateJSON(p)
		if code != 0 {
			t.Errorf("faithful %s SBOM fails: exit %d %s\n%v", name, code, errOut, r)
		}
	}
	// Defects, each on syft's CycloneDX.
	data, _ := os.ReadFile(sboms["syft cyclonedx-json"])
	edit := func(name string, f func(comps []any) []any) string {
		var doc map[string]any
		json.Unmarshal(data, &doc)
		doc["components"] = f(doc["components"].([]any))
		b, _ := json.Marshal(doc)
		p := filepath.Join(dir, name+".json")
		os.WriteFile(p, b, 0o644)
		return p
	}
	removed := edit("removed", func(cs []any) []any {
		var out []any
		for _, c := range cs {
			if c.(map[string]any)["name"] != "busybox" {
				out = append(out, c)
			}
		}
		return out
	})
	edited := edit("edited", func(cs []any) []any {
		for _, c := range cs {
			m := c.(map[string]any)
			if m["name"] == "requests" {
				m["version"] = "2.31.0"
				m["purl"] = "pkg:pypi/requests@2.31.0"
			}
		}
		return cs
	})
	extra := edit("extra", func(cs []any) []any {
		return append(cs, map[string]any{"type": "library", "bom-ref": "x-left-pad", "name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0"})
	})
	cases := []struct{ name, sbom, field, want string }{
		{"package removed", removed, "missing", "busybox"},
		{"version edited", edited, "mismatched", "requests"},
		{"extra package", extra, "extra", "left-pad"},
		{"another image's SBOM", otherSBOM, "extra", "libc6"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, code, _ := validateJSON(c.sbom)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			list, _ := json.Marshal(r[c.field])
			if !strings.Contains(string(list), `"`+c.want+`"`) {
				t.Errorf("%s does not name %s: %s", c.field, c.want, list)
			}
		})
	}
}

// syftBin returns syft v1.57.1, building it from the module proxy once per
// machine when it is missing (about 10 minutes on 2 cores).
func syftBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("syft"); err == nil {
		return p
	}
	gopath := strings.TrimSpace(run(t, "go", "env", "GOPATH"))
	p := filepath.Join(gopath, "bin", "syft")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Logf("building syft v1.57.1 (once per machine)")
	cmd := exec.Command("go", "install", "github.com/anchore/syft/cmd/syft@v1.57.1")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install syft: %v\n%s", err, out)
	}
	return p
}
