package compare

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/match"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// demoSide scans the repository's demo image and matches it with the
// database built from the bundled snapshot.
func demoSide(t testing.TB) (Side, *vulndb.DB) {
	t.Helper()
	ctx := context.Background()
	img, err := image.Open(ctx, "oci-archive:../testdata/images/alpine-demo.oci.tar", image.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	res, err := scan.Image(ctx, img, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "osv.db")
	if _, err := vulndb.EnsureBundled(p); err != nil {
		t.Fatal(err)
	}
	db, err := vulndb.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fs, err := match.Match(ctx, res.Inventory, db, match.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return Side{Inventory: res.Inventory, Findings: fs, Config: img.Config()}, db
}

func ids(vs []Vuln) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID+" "+v.Package)
	}
	sort.Strings(out)
	return out
}

// TestUpgradeFixes compares the demo image with a version of it where
// urllib3 1.26.12 became 2.7.0 (a release the project has real metadata
// of), minimist was dropped, left-pad was added, and the config changed.
func TestUpgradeFixes(t *testing.T) {
	ctx := context.Background()
	a, db := demoSide(t)
	invB := *a.Inventory
	invB.Target.Name = "demo:2"
	invB.Target.Size += 4096
	invB.Packages = nil
	for _, p := range a.Inventory.Packages {
		switch p.Name {
		case "urllib3":
			p.Version, p.PURL = "2.7.0", "pkg:pypi/urllib3@2.7.0"
		case "minimist":
			continue
		}
		invB.Packages = append(invB.Packages, p)
	}
	invB.Packages = append(invB.Packages, inventory.Package{Name: "left-pad", Version: "1.3.0", Type: "npm", PURL: "pkg:npm/left-pad@1.3.0"})
	fsB, err := match.Match(ctx, &invB, db, match.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfgB := *a.Config
	cfgB.Config.User = "root"
	cfgB.Config.Env = append(append([]string{}, a.Config.Config.Env...), "API_TOKEN=s3cret")
	cfgB.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	d := Compare(a, Side{Inventory: &invB, Findings: fsB, Config: &cfgB})

	if len(d.PackagesChanged) != 1 || d.PackagesChanged[0].Name != "urllib3" || d.PackagesChanged[0].Before[0] != "1.26.12" || d.PackagesChanged[0].After[0] != "2.7.0" {
		t.Errorf("changed %+v", d.PackagesChanged)
	}
	if len(d.PackagesRemoved) != 1 || d.PackagesRemoved[0].Name != "minimist" || len(d.PackagesAdded) != 1 || d.PackagesAdded[0].Name != "left-pad" {
		t.Errorf("removed %+v added %+v", d.PackagesRemoved, d.PackagesAdded)
	}
	// Expected: what matching each side says, by id and package.
	want := func(fs []finding.Finding, other []finding.Finding) []string {
		in := map[string]bool{}
		for _, f := range other {
			in[f.ID+" "+f.Package.Name] = true
		}
		set := map[string]bool{}
		for _, f := range fs {
			if !in[f.ID+" "+f.Package.Name] {
				set[f.ID+" "+f.Package.Name] = true
			}
		}
		var out []string
		for k := range set {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	fixed, introduced := want(a.Findings, fsB), want(fsB, a.Findings)
	if len(fixed) == 0 {
		t.Fatal("the upgrade fixes nothing in the bundled database: the test proves nothing")
	}
	for _, f := range fixed {
		if !strings.HasSuffix(f, " urllib3") && !strings.HasSuffix(f, " minimist") {
			t.Errorf("fixed %s: neither urllib3 nor minimist", f)
		}
	}
	if strings.Join(ids(d.VulnsFixed), ";") != strings.Join(fixed, ";") || strings.Join(ids(d.VulnsIntroduced), ";") != strings.Join(introduced, ";") {
		t.Errorf("fixed %v introduced %v; want %v %v", ids(d.VulnsFixed), ids(d.VulnsIntroduced), fixed, introduced)
	}
	cfg := map[string]ConfigChange{}
	for _, c := range d.Config {
		cfg[c.Field] = c
	}
	if cfg["user"].Before != "app" || cfg["user"].After != "root" || cfg["exposedPorts"].After != "8080/tcp" || cfg["env added"].After != "API_TOKEN" {
		t.Errorf("config %+v", d.Config)
	}
	for _, c := range d.Config {
		if strings.Contains(c.Before+c.After, "s3cret") {
			t.Errorf("an environment value leaks: %+v", c)
		}
	}
	if d.SizeDelta != 4096 || d.Empty() {
		t.Errorf("size delta %d", d.SizeDelta)
	}
	if got := d.IntroducedAtLeast(finding.Critical); len(got) != 0 && len(introduced) == 0 {
		t.Errorf("introduced at least critical: %v", got)
	}
	if same := Compare(a, a); !same.Empty() {
		t.Errorf("an image against itself: %+v", same)
	}
}

func TestVulnIdentity(t *testing.T) {
	f := func(id, pkg, ver string, sev finding.Severity) finding.Finding {
		return finding.Finding{ID: id, Kind: finding.KindVulnerability, Severity: sev, Package: &finding.Package{Name: pkg, Version: ver, Type: "npm"}}
	}
	suppressed := f("GHSA-3", "c", "1", finding.Critical)
	suppressed.Suppressed = &finding.Suppression{Kind: "vex"}
	a := []finding.Finding{f("GHSA-1", "a", "1.0", finding.High), f("GHSA-2", "b", "1.0", finding.Low)}
	// a upgraded but still affected; b fixed; c's finding suppressed; d new.
	b := []finding.Finding{f("GHSA-1", "a", "1.1", finding.High), suppressed, f("GHSA-4", "d", "2", finding.Medium)}
	d := Compare(Side{Inventory: &inventory.Inventory{}, Findings: a}, Side{Inventory: &inventory.Inventory{}, Findings: b})
	if strings.Join(ids(d.VulnsFixed), ";") != "GHSA-2 b" || strings.Join(ids(d.VulnsIntroduced), ";") != "GHSA-4 d" {
		t.Errorf("fixed %v introduced %v", ids(d.VulnsFixed), ids(d.VulnsIntroduced))
	}
	if len(d.IntroducedAtLeast(finding.High)) != 0 || len(d.IntroducedAtLeast(finding.Medium)) != 1 {
		t.Error("IntroducedAtLeast")
	}
}

func TestConfig(t *testing.T) {
	a := &v1.ConfigFile{Config: v1.Config{User: "app", Env: []string{"PATH=/bin", "TOKEN=a"}, Entrypoint: []string{"/app"}, Cmd: []string{"serve"}}}
	b := &v1.ConfigFile{Config: v1.Config{User: "app", Env: []string{"PATH=/bin", "TOKEN=b", "DEBUG=1"}, Entrypoint: []string{"/app", "--debug"}}}
	got := map[string]ConfigChange{}
	for _, c := range Config(a, b) {
		got[c.Field] = c
	}
	if len(got) != 4 || got["env added"].After != "DEBUG" || got["env value changed"].After != "TOKEN" || got["entrypoint"].After != `["/app", "--debug"]` || got["cmd"].Before != `["serve"]` {
		t.Errorf("%+v", got)
	}
	if len(Config(nil, nil)) != 0 {
		t.Error("nil configs differ")
	}
}

func BenchmarkCompare(b *testing.B) {
	a, _ := demoSide(b)
	// A second side of the same size with every version changed.
	inv := *a.Inventory
	inv.Packages = append([]inventory.Package{}, a.Inventory.Packages...)
	for i := range inv.Packages {
		inv.Packages[i].Version += ".1"
	}
	other := Side{Inventory: &inv, Config: a.Config}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Compare(a, other)
	}
}
