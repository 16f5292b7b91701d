package base

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// The repository's demo image: Alpine 3.18.9 minirootfs, a layer removing
// packages and adding user app, Python metadata, npm package.json files, a
// Go binary (testdata/images/README.md).
const demoArchive = "../testdata/images/alpine-demo.oci.tar"

var (
	demoOnce sync.Once
	demoRes  *scan.Result
	demoErr  error
	dbOnce   sync.Once
	db       *vulndb.DB
	dbErr    error
)

func demo(t testing.TB) *scan.Result {
	t.Helper()
	demoOnce.Do(func() {
		img, err := image.Open(context.Background(), "oci-archive:"+demoArchive, image.Options{})
		if err != nil {
			demoErr = err
			return
		}
		defer img.Close()
		demoRes, demoErr = scan.Image(context.Background(), img, scan.Options{})
	})
	if demoErr != nil {
		t.Fatal(demoErr)
	}
	return demoRes
}

// bundledDB builds the database from the snapshot bundled in the binary.
func bundledDB(t testing.TB) *vulndb.DB {
	t.Helper()
	dbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bulkhead-base-test-")
		if err != nil {
			dbErr = err
			return
		}
		p := filepath.Join(dir, "osv.db")
		if _, dbErr = vulndb.EnsureBundled(p); dbErr != nil {
			return
		}
		db, dbErr = vulndb.Open(p)
	})
	if dbErr != nil {
		t.Fatal(dbErr)
	}
	return db
}

func matcher(t testing.TB) Matcher {
	d := bundledDB(t)
	return func(ctx context.Context, inv *inventory.Inventory) ([]finding.Finding, error) {
		fs, err := match.Match(ctx, inv, d, match.Options{})
		return match.Active(fs), err
	}
}

// upTo is the demo image cut after n layers, as a base built of them would
// be indexed: its packages are those the first n layers leave installed.
func upTo(t testing.TB, ref string, n int) Entry {
	t.Helper()
	res := demo(t)
	inv := *res.Inventory
	inv.Target.Layers = inv.Target.Layers[:n]
	inv.Packages = nil
	for _, p := range res.Inventory.Packages {
		if p.Locations[0].Layer.Index < n {
			inv.Packages = append(inv.Packages, p)
		}
	}
	fs, err := matcher(t)(context.Background(), &inv)
	if err != nil {
		t.Fatal(err)
	}
	return Profile(ref, &inv, res.Tree, fs, &VulnCounts{DBSource: "test"})
}

func diffIDs(t testing.TB) []string {
	var out []string
	for _, l := range demo(t).Inventory.Target.Layers {
		out = append(out, l.DiffID)
	}
	return out
}

func TestProfileOfDemoImage(t *testing.T) {
	res := demo(t)
	e := Profile("demo", res.Inventory, res.Tree, nil, nil)
	if e.Libc != LibcMusl {
		t.Errorf("libc %q, want musl", e.Libc)
	}
	if strings.Join(e.Shells, ",") != "/bin/sh,/bin/ash" {
		t.Errorf("shells %v, want busybox's /bin/sh and /bin/ash", e.Shells)
	}
	if strings.Join(e.PackageManagers, ",") != "apk" {
		t.Errorf("package managers %v, want apk", e.PackageManagers)
	}
	if len(e.Runtimes) != 0 {
		t.Errorf("runtimes %v: the demo image has package metadata but no interpreter", e.Runtimes)
	}
	if !e.NonRoot || e.User != "app" {
		t.Errorf("user %q nonRoot %v", e.User, e.NonRoot)
	}
	if len(e.DiffIDs) != 5 || e.OSName() != "alpine 3.18.9" || len(e.Packages) != len(res.Inventory.Packages) {
		t.Errorf("diffIDs %d, OS %s, packages %d", len(e.DiffIDs), e.OSName(), len(e.Packages))
	}
	for _, p := range e.Packages {
		for _, l := range p.Locations {
			if l.Layer != nil {
				t.Fatalf("%s keeps a layer attribution", p.Name)
			}
		}
	}
	if e.Vulns != nil {
		t.Error("vulnerability counts without a scan")
	}
}

func TestLibcAndNonRoot(t *testing.T) {
	inv := func(typ, name string) *inventory.Inventory {
		return &inventory.Inventory{Packages: []inventory.Package{{Type: typ, Name: name}}}
	}
	cases := []struct {
		inv  *inventory.Inventory
		want string
	}{
		{inv("deb", "libc6"), LibcGlibc},
		{inv("rpm", "glibc"), LibcGlibc},
		{inv("apk", "musl"), LibcMusl},
		{inv("apk", "glibc"), LibcGlibc},
		{inv("deb", "base-files"), LibcNone},
	}
	for _, c := range cases {
		if got := Libc(c.inv, nil); got != c.want {
			t.Errorf("%s: %s, want %s", c.inv.Packages[0].Name, got, c.want)
		}
	}
	for u, want := range map[string]bool{"": false, "root": false, "0": false, "0:0": false, "root:root": false, "app": true, "65532": true, "nonroot:nonroot": true} {
		if NonRoot(u) != want {
			t.Errorf("NonRoot(%q) = %v", u, !want)
		}
	}
}

func TestCatalogRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "base", "catalog.json")
	c, err := Load(p)
	if err != nil || len(c.Entries) != 0 {
		t.Fatalf("missing file: %v %v", c, err)
	}
	a, b := upTo(t, "alpine", 1), upTo(t, "demo-base", 3)
	c.Put(b)
	c.Put(a)
	c.Put(a) // replaces
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	c2, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c2.Entries) != 2 || c2.Entries[0].Ref != "alpine" || len(c2.Entries[1].Packages) != len(b.Packages) || c2.Entries[1].Vulns.Total != b.Vulns.Total {
		t.Fatalf("round trip: %+v", c2.Entries)
	}
	if !c2.Remove("alpine") || c2.Remove("alpine") {
		t.Error("Remove")
	}
	for _, bad := range []string{"", "{", `{"schemaVersion":99,"entries":[]}`, `{"schemaVersion":1,"entries":[{"ref":""}]}`} {
		os.WriteFile(p, []byte(bad), 0o644)
		if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "index the bases again") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDefaultPathHonoursCacheDir(t *testing.T) {
	t.Setenv("BULKHEAD_CACHE_DIR", "/x/cache")
	if DefaultPath() != "/x/cache/base/catalog.json" {
		t.Error(DefaultPath())
	}
	if filepath.Dir(filepath.Dir(DefaultPath())) != filepath.Dir(filepath.Dir(vulndb.DefaultPath())) {
		t.Errorf("the catalog %s is not next to the database %s", DefaultPath(), vulndb.DefaultPath())
	}
	d := Defaults()
	if len(d) < 15 || d[0] != Scratch {
		t.Errorf("defaults %v", d)
	}
}

func TestDetect(t *testing.T) {
	ids := diffIDs(t)
	alpine, demoBase := upTo(t, "alpine:3.18", 1), upTo(t, "demo-base:1", 3)
	latest := alpine
	latest.Ref = "alpine:latest"
	scratch := Entry{Ref: Scratch, DiffIDs: []string{}}
	// Layers 1 and 3 of the image: not a prefix.
	other := Entry{Ref: "other", DiffIDs: []string{ids[1], ids[3]}}
	full := &Catalog{Entries: []Entry{scratch, other, alpine, latest, demoBase}}

	cases := []struct {
		name        string
		cat         *Catalog
		annotations map[string]string
		method      string
		base        string
		layers      int
		reason      string
	}{
		{"longest prefix", full, nil, MethodLayers, "demo-base:1", 3, "first 3 of 5 layers"},
		{"shorter only", &Catalog{Entries: []Entry{scratch, other, alpine}}, nil, MethodLayers, "alpine:3.18", 1, "longest match"},
		{"not in catalog", &Catalog{Entries: []Entry{scratch, other}}, nil, MethodNone, "", 0, "not in the catalog"},
		{"empty catalog", &Catalog{}, nil, MethodNone, "", 0, "catalog is empty"},
		{"annotation name", full, map[string]string{AnnotationBaseName: "docker.io/library/alpine:3.18"}, MethodAnnotation, "alpine:3.18", 1, AnnotationBaseName},
		{"annotation digest", full, map[string]string{AnnotationBaseName: "whatever", AnnotationBaseDigest: "sha256:feed"}, MethodAnnotation, "other", 0, "rebuilt since"},
		{"annotation unknown", full, map[string]string{AnnotationBaseName: "registry.example/unknown:1"}, MethodLayers, "demo-base:1", 3, "name no catalog entry"},
		{"annotation unknown, layers unknown", &Catalog{Entries: []Entry{other}}, map[string]string{AnnotationBaseName: "registry.example/unknown:1"}, MethodNone, "", 0, "registry.example/unknown:1"},
	}
	full.Entries[1].Digest = "sha256:feed"
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Detect(c.cat, ids, c.annotations)
			if d.Method != c.method || d.BaseRef != c.base || d.Layers != c.layers || !strings.Contains(d.Reason, c.reason) {
				t.Errorf("got %s %q %d %q", d.Method, d.BaseRef, d.Layers, d.Reason)
			}
			if (d.Base == nil) != (c.base == "") {
				t.Errorf("Base %v", d.Base)
			}
		})
	}
	if d := Detect(full, ids[:1], nil); d.BaseRef != "alpine:3.18" || strings.Join(d.Aliases, ",") != "alpine:latest" {
		t.Errorf("aliases: %+v", d)
	}
}

func TestRecommendDeltasAreScanDifferences(t *testing.T) {
	ctx := context.Background()
	ids := diffIDs(t)
	alpine, demoBase := upTo(t, "alpine:3.18", 1), upTo(t, "demo-base:1", 3)
	scratch := Profile(Scratch, &inventory.Inventory{}, nil, nil, &VulnCounts{})
	cat := &Catalog{Entries: []Entry{alpine, demoBase, scratch}}
	det := Detect(cat, ids, nil)
	m := matcher(t)
	rec, err := Recommend(ctx, cat, det, demo(t).Inventory, m)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Current.Ref != "demo-base:1" || len(rec.Candidates) != 2 {
		t.Fatalf("current %s, %d candidates", rec.Current.Ref, len(rec.Candidates))
	}
	count := func(e *Entry) map[string]int {
		fs, err := m(ctx, e.Inventory())
		if err != nil {
			t.Fatal(err)
		}
		return Count(fs)
	}
	cur := count(&demoBase)
	if cur["HIGH"]+cur["MEDIUM"]+cur["CRITICAL"] == 0 {
		t.Fatalf("the demo base has no findings: the test proves nothing (%v)", cur)
	}
	for _, c := range rec.Candidates {
		e, _ := cat.Get(c.Ref)
		own := count(e)
		for _, s := range Severities {
			sev := s.String()
			if c.VulnsDelta[sev] != own[sev]-cur[sev] || c.VulnsAdded[sev]-c.VulnsRemoved[sev] != c.VulnsDelta[sev] {
				t.Errorf("%s %s: delta %d (+%d -%d), own scans %d - %d", c.Ref, sev, c.VulnsDelta[sev], c.VulnsAdded[sev], c.VulnsRemoved[sev], own[sev], cur[sev])
			}
		}
		if c.SizeDelta != e.Size-demoBase.Size || c.PackagesDelta != len(e.Packages)-len(demoBase.Packages) {
			t.Errorf("%s: size %d packages %d", c.Ref, c.SizeDelta, c.PackagesDelta)
		}
	}
	// alpine removes the Python packages' vulnerabilities and keeps musl:
	// a drop-in; scratch has no C library.
	top := rec.Candidates[0]
	if top.Ref != "alpine:3.18" && top.Ref != Scratch {
		t.Errorf("top %s", top.Ref)
	}
	for _, c := range rec.Candidates {
		switch c.Ref {
		case "alpine:3.18":
			if len(c.NeedsChanges) != 0 || !strings.Contains(strings.Join(c.Gains, ";"), "fewer vulnerabilities") {
				t.Errorf("alpine: needs %v gains %v", c.NeedsChanges, c.Gains)
			}
		case Scratch:
			if len(c.NeedsChanges) == 0 || !strings.Contains(c.NeedsChanges[0], "no C library") {
				t.Errorf("scratch: needs %v", c.NeedsChanges)
			}
		}
	}
	if rec.AppPackages["npm"] != 2 || rec.AppPackages["golang"] != 3 || rec.AppPackages["pypi"] != 0 {
		t.Errorf("app packages %v", rec.AppPackages)
	}
	if _, err := Recommend(ctx, cat, Detect(&Catalog{}, ids, nil), demo(t).Inventory, m); !errors.Is(err, ErrNoBase) {
		t.Errorf("no base: %v", err)
	}
}

func TestNeedsChanges(t *testing.T) {
	deb := Entry{Ref: "debian", Libc: LibcGlibc, PackageManagers: []string{"apt", "dpkg"}, Runtimes: []string{"python"}}
	alp := Entry{Ref: "alpine", Libc: LibcMusl, PackageManagers: []string{"apk"}}
	static := Entry{Ref: "static", Libc: LibcNone}
	pyDeb := Entry{Ref: "python-debian", Libc: LibcGlibc, PackageManagers: []string{"apt", "dpkg"}, Runtimes: []string{"python"}}
	app := []inventory.Package{{Type: "deb", Name: "curl"}, {Type: "pypi", Name: "flask"}}
	cases := []struct {
		cur, cand Entry
		app       []inventory.Package
		want      []string
	}{
		{deb, pyDeb, app, nil},
		{deb, alp, app, []string{"from glibc to musl", "candidate uses apk", "need python"}},
		{deb, static, app, []string{"no C library", "no OS package manager", "need python"}},
		{static, alp, nil, nil},
		{alp, alp, []inventory.Package{{Type: "pypi", Name: "flask"}}, nil}, // the app brings its own python
	}
	for i, c := range cases {
		got := needsChanges(&c.cur, &c.cand, c.app)
		if len(got) != len(c.want) {
			t.Errorf("%d: %v, want %v", i, got, c.want)
			continue
		}
		for j := range got {
			if !strings.Contains(got[j], c.want[j]) {
				t.Errorf("%d: %q lacks %q", i, got[j], c.want[j])
			}
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":1,"entries":[{"ref":"alpine","diffIDs":["sha256:a"],"packages":[]}]}`))
	f.Add([]byte(`{"schemaVersion":1,"entries":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &Catalog{}
		if err := c.decode(data); err != nil {
			return
		}
		// Whatever decodes must be usable.
		d := Detect(c, []string{"sha256:a", "sha256:b"}, map[string]string{AnnotationBaseName: "alpine"})
		if d.Method == "" || d.Reason == "" {
			t.Fatalf("detection %+v", d)
		}
		for i := range c.Entries {
			_ = c.Entries[i].Inventory()
			_ = c.Entries[i].OSName()
		}
	})
}

func BenchmarkDetect(b *testing.B) {
	ids := diffIDs(b)
	cat := &Catalog{}
	// A catalog of a few hundred bases, the real one among them.
	for i := 0; i < 300; i++ {
		e := Entry{Ref: "base-" + string(rune('a'+i%26)) + strings.Repeat("x", i%7), DiffIDs: []string{ids[0], "sha256:" + strings.Repeat("0", 63) + string(rune('a'+i%6))}}
		cat.Entries = append(cat.Entries, e)
	}
	cat.Entries = append(cat.Entries, upTo(b, "demo-base", 3))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if d := Detect(cat, ids, nil); d.BaseRef != "demo-base" {
			b.Fatal(d.Reason)
		}
	}
}

func BenchmarkRecommend(b *testing.B) {
	ctx := context.Background()
	ids := diffIDs(b)
	cat := &Catalog{Entries: []Entry{upTo(b, "alpine", 1), upTo(b, "demo-base", 3), Profile(Scratch, &inventory.Inventory{}, nil, nil, nil)}}
	det := Detect(cat, ids, nil)
	m := matcher(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Recommend(ctx, cat, det, demo(b).Inventory, m); err != nil {
			b.Fatal(err)
		}
	}
}
