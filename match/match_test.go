package match

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func testSource(t testing.TB) *MemorySource {
	t.Helper()
	recs, err := LoadRecords("testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	return NewMemorySource(recs)
}

func epoch(n int) *int { return &n }

// TestMatchRealRecords runs real OSV records (testdata/osv, see
// testdata/SOURCES.md) against packages chosen at each range's boundaries
// and asserts the exact set of advisories each package gets.
func TestMatchRealRecords(t *testing.T) {
	src := testSource(t)
	tests := []struct {
		name string
		os   *inventory.OS
		pkg  inventory.Package
		want []string // finding ids (aliases after "+")
	}{
		// Debian: DSA-3029-1 nginx (Debian:7), fixed 1.2.1-2.2+wheezy3. Matched by source package.
		{"deb below fix", &inventory.OS{ID: "debian", VersionID: "7"},
			inventory.Package{Name: "nginx-common", SourceName: "nginx", Version: "1.2.1-2.2+wheezy2", Type: "deb"}, []string{"DSA-3029-1"}},
		{"deb exactly fixed", &inventory.OS{ID: "debian", VersionID: "7"},
			inventory.Package{Name: "nginx-common", SourceName: "nginx", Version: "1.2.1-2.2+wheezy3", Type: "deb"}, nil},
		{"deb tilde sorts before", &inventory.OS{ID: "debian", VersionID: "7"},
			inventory.Package{Name: "nginx", Version: "1.2.1-2.2+wheezy3~bpo1", Type: "deb"}, []string{"DSA-3029-1"}},
		{"deb epoch above fix", &inventory.OS{ID: "debian", VersionID: "7"},
			inventory.Package{Name: "nginx", Version: "1:1.0-1", Type: "deb"}, nil},
		{"deb other release", &inventory.OS{ID: "debian", VersionID: "12"},
			inventory.Package{Name: "nginx", Version: "1.2.1-1", Type: "deb"}, nil},
		{"deb codename only", &inventory.OS{ID: "debian", Codename: "wheezy"},
			inventory.Package{Name: "nginx", Version: "1.2.1-1", Type: "deb"}, []string{"DSA-3029-1"}},
		// AlmaLinux: ALSA-2023:4838 cups, fixed 1:2.3.3op2-16.el9_2.1 (epoch in the record).
		{"rpm epoch below fix", &inventory.OS{ID: "almalinux", VersionID: "9.2"},
			inventory.Package{Name: "cups-client", Version: "2.3.3op2-16.el9_2", Epoch: epoch(1), Type: "rpm"}, []string{"ALSA-2023:4838"}},
		{"rpm epoch exactly fixed", &inventory.OS{ID: "almalinux", VersionID: "9.2"},
			inventory.Package{Name: "cups-client", Version: "2.3.3op2-16.el9_2.1", Epoch: epoch(1), Type: "rpm"}, nil},
		{"rpm epoch in version string", &inventory.OS{ID: "almalinux", VersionID: "9"},
			inventory.Package{Name: "cups-client", Version: "1:2.3.3op2-16.el9_2", Type: "rpm"}, []string{"ALSA-2023:4838"}},
		{"rpm binary name listed", &inventory.OS{ID: "almalinux", VersionID: "9"},
			inventory.Package{Name: "cups-libs", SourceName: "cups", Version: "1:2.3.3op2-16.el9_2", Type: "rpm"}, []string{"ALSA-2023:4838"}},
		{"rpm other release", &inventory.OS{ID: "almalinux", VersionID: "8.9"},
			inventory.Package{Name: "cups-libs", Version: "1:2.3.3op2-16.el9_2", Type: "rpm"}, nil},
		{"rpm thunderbird", &inventory.OS{ID: "almalinux", VersionID: "9.3"},
			inventory.Package{Name: "thunderbird", Version: "115.5.0-1.el9_3.alma", Type: "rpm"}, []string{"ALSA-2024:0001"}},
		// Ubuntu: UBUNTU-CVE-2025-38094 linux, explicit versions list on Ubuntu:Pro:14.04:LTS; a plain 14.04 image is not Pro.
		{"ubuntu pro ecosystem not queried", &inventory.OS{ID: "ubuntu", VersionID: "14.04", PrettyName: "Ubuntu 14.04.6 LTS"},
			inventory.Package{Name: "linux-image", SourceName: "linux", Version: "3.13.0-24.46", Type: "deb"}, nil},
		// PyPI: PYSEC-2012-1 beaker fixed 1.6.5.post1 (post release); PYSEC-2015-8 django two ranges with pre-releases.
		{"pypi below post release", nil, inventory.Package{Name: "Beaker", Version: "1.6.5", Type: "pypi"}, []string{"PYSEC-2012-1"}},
		{"pypi exactly post release", nil, inventory.Package{Name: "beaker", Version: "1.6.5.post1", Type: "pypi"}, nil},
		{"pypi first range", nil, inventory.Package{Name: "Django", Version: "1.7.5", Type: "pypi"}, []string{"PYSEC-2015-8"}},
		{"pypi between ranges", nil, inventory.Package{Name: "django", Version: "1.7.6", Type: "pypi"}, nil},
		{"pypi exactly introduced pre", nil, inventory.Package{Name: "django", Version: "1.8a1", Type: "pypi"}, []string{"PYSEC-2015-8"}},
		{"pypi dev before introduced pre", nil, inventory.Package{Name: "django", Version: "1.8a1.dev1", Type: "pypi"}, nil},
		{"pypi beta inside", nil, inventory.Package{Name: "django", Version: "1.8b1", Type: "pypi"}, []string{"PYSEC-2015-8"}},
		{"pypi exactly fixed beta", nil, inventory.Package{Name: "django", Version: "1.8b2", Type: "pypi"}, nil},
		// GHSA + PYSEC for one flaw (CVE-2023-39410) on avro: one finding, GHSA leads.
		{"pypi dedup ghsa+pysec", nil, inventory.Package{Name: "avro", Version: "1.11.2", Type: "pypi"},
			[]string{"GHSA-rhrv-645h-fjfh+CVE-2023-39410,PYSEC-2023-188"}},
		{"pypi dedup fixed", nil, inventory.Package{Name: "avro", Version: "1.11.3", Type: "pypi"}, nil},
		// Maven qualifiers: netty 4.1.83.Final..4.1.86.Final; tomcat 9.0.0.M1..9.0.0.M19; atomix last_affected 3.1.5.
		{"maven exactly introduced Final", nil, inventory.Package{Name: "io.netty:netty-codec-http", Version: "4.1.83.Final", Type: "maven"}, []string{"GHSA-hh82-3pmq-7frp"}},
		{"maven exactly fixed Final", nil, inventory.Package{Name: "io.netty:netty-codec-http", Version: "4.1.86.Final", Type: "maven"}, nil},
		{"maven below introduced", nil, inventory.Package{Name: "io.netty:netty-codec-http", Version: "4.1.82.Final", Type: "maven"}, nil},
		{"maven purl namespace", nil, inventory.Package{Name: "netty-codec-http", PURL: "pkg:maven/io.netty/netty-codec-http@4.1.85.Final", Version: "4.1.85.Final", Type: "maven"}, []string{"GHSA-hh82-3pmq-7frp"}},
		{"maven milestone inside", nil, inventory.Package{Name: "org.apache.tomcat.embed:tomcat-embed-core", Version: "9.0.0.M18", Type: "maven"}, []string{"GHSA-9hg2-395j-83rm"}},
		{"maven milestone fixed", nil, inventory.Package{Name: "org.apache.tomcat.embed:tomcat-embed-core", Version: "9.0.0.M19", Type: "maven"}, nil},
		{"maven release after milestones", nil, inventory.Package{Name: "org.apache.tomcat.embed:tomcat-embed-core", Version: "9.0.0", Type: "maven"}, nil},
		{"maven exactly last_affected", nil, inventory.Package{Name: "io.atomix:atomix", Version: "3.1.5", Type: "maven"}, []string{"GHSA-2fqw-684c-pvp7"}},
		{"maven after last_affected", nil, inventory.Package{Name: "io.atomix:atomix", Version: "3.1.6", Type: "maven"}, nil},
		// Two GHSAs aliasing each other (netty CVE-2021-21295/21409): one finding, both fixes.
		{"maven dedup two ghsa", nil, inventory.Package{Name: "io.netty:netty-codec-http2", Version: "4.1.59.Final", Type: "maven"},
			[]string{"GHSA-f256-j965-7f32+BIT-zookeeper-2021-21295,CVE-2021-21295,CVE-2021-21409,GHSA-wm47-8v5p-wjpj"}},
		{"maven dedup one side only", nil, inventory.Package{Name: "io.netty:netty-codec-http2", Version: "4.1.60.Final", Type: "maven"},
			[]string{"GHSA-f256-j965-7f32+BIT-zookeeper-2021-21295,CVE-2021-21295,CVE-2021-21409,GHSA-wm47-8v5p-wjpj"}},
		// npm SEMVER range.
		{"npm below fix", nil, inventory.Package{Name: "lodash", Version: "4.17.20", Type: "npm"}, []string{"GHSA-35jh-r3h4-6jhm"}},
		{"npm fixed", nil, inventory.Package{Name: "lodash", Version: "4.17.21", Type: "npm"}, nil},
		// crates.io: introduced 0.0.0-0 (a pre-release, so every release is above it).
		{"cargo below fix", nil, inventory.Package{Name: "cap-primitives", Version: "3.4.0", Type: "cargo"}, []string{"RUSTSEC-2024-0445"}},
		{"cargo fixed", nil, inventory.Package{Name: "cap-primitives", Version: "3.4.1", Type: "cargo"}, nil},
		// Go: stdlib (module "go"/"stdlib", version "go1.16"), toolchain two ranges, withdrawn record skipped.
		{"go stdlib in range", nil, inventory.Package{Name: "stdlib", Version: "go1.16.0", Type: "golang"}, []string{"GO-2021-0067"}},
		{"go stdlib fixed", nil, inventory.Package{Name: "stdlib", Version: "v1.16.1", Type: "golang"}, nil},
		{"go second range", nil, inventory.Package{Name: "toolchain", Version: "1.15.6", Type: "golang"}, []string{"GO-2021-0068"}},
		{"go between ranges", nil, inventory.Package{Name: "toolchain", Version: "1.14.14", Type: "golang"}, nil},
		{"go withdrawn ignored", nil, inventory.Package{Name: "k8s.io/kubernetes", Version: "v1.20.0", Type: "golang"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := &inventory.Inventory{Target: inventory.Target{Name: "t"}, OS: tc.os, Packages: []inventory.Package{tc.pkg}}
			fs, err := Match(context.Background(), inv, src, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				s := f.ID
				if len(f.Aliases) > 0 && len(tc.want) > 0 && strings.Contains(tc.want[0], "+") {
					s += "+" + strings.Join(f.Aliases, ",")
				}
				got = append(got, s)
				if f.Target != "t" || f.Package == nil || f.Package.Name != tc.pkg.Name {
					t.Errorf("finding %s: target %q package %+v", f.ID, f.Target, f.Package)
				}
			}
			sort.Strings(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFindingDetails checks severity, fixed versions and status on real records.
func TestFindingDetails(t *testing.T) {
	src := testSource(t)
	inv := &inventory.Inventory{
		Target: inventory.Target{Name: "img"},
		OS:     &inventory.OS{ID: "almalinux", VersionID: "9.3"},
		Packages: []inventory.Package{
			{Name: "thunderbird", Version: "115.5.0-1.el9_3.alma", Type: "rpm", Locations: []inventory.Location{{Path: "/var/lib/rpm/rpmdb.sqlite", Layer: &inventory.Layer{Index: 2, Digest: "sha256:aa"}}}},
			{Name: "avro", Version: "1.11.2", Type: "pypi"},
			{Name: "cap-primitives", Version: "3.4.0", Type: "cargo"},
			{Name: "io.netty:netty-codec-http2", Version: "4.1.59.Final", Type: "maven"},
			{Name: "django", Version: "1.8b1", Type: "pypi"},
		},
	}
	fs, err := Match(context.Background(), inv, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id, sev, src, status string
		fixed                []string
	}
	var got []row
	for _, f := range fs {
		got = append(got, row{f.ID, f.Severity.String(), f.SeveritySource, f.Status, f.FixedVersions})
	}
	want := []row{
		{"RUSTSEC-2024-0445", "LOW", "CVSS v4.0", "fixed", []string{"3.4.1"}},
		{"GHSA-f256-j965-7f32", "MEDIUM", "CVSS v3.1", "fixed", []string{"4.1.61.Final", "4.1.60.Final"}},
		{"GHSA-rhrv-645h-fjfh", "HIGH", "CVSS v3.1", "fixed", []string{"1.11.3"}},
		{"PYSEC-2015-8", "UNKNOWN", "", "fixed", []string{"1.8b2"}},
		{"ALSA-2024:0001", "HIGH", "AlmaLinux severity", "fixed", []string{"115.6.0-1.el9_3.alma"}},
	}
	// Findings are sorted by package type then name.
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	for _, f := range fs {
		if f.ID == "ALSA-2024:0001" {
			if f.Package.Layer == nil || f.Package.Layer.Index != 2 || f.Package.Path != "/var/lib/rpm/rpmdb.sqlite" {
				t.Errorf("layer/path not carried: %+v", f.Package)
			}
			if f.Title != "Important: thunderbird security update" || len(f.References) == 0 || f.Description == "" {
				t.Errorf("title/refs/description: %q %d %d", f.Title, len(f.References), len(f.Description))
			}
			if f.Package.Ecosystem != "AlmaLinux:9" {
				t.Errorf("ecosystem %q", f.Package.Ecosystem)
			}
		}
	}
}

func TestFilters(t *testing.T) {
	src := testSource(t)
	inv := &inventory.Inventory{Packages: []inventory.Package{
		{Name: "avro", Version: "1.11.2", Type: "pypi"},             // HIGH, fixed
		{Name: "cap-primitives", Version: "3.4.0", Type: "cargo"},   // LOW, fixed
		{Name: "io.atomix:atomix", Version: "3.1.5", Type: "maven"}, // last_affected: no fix
	}}
	ids := func(opts Options) []string {
		fs, err := Match(context.Background(), inv, src, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			out = append(out, f.ID+":"+f.Status)
		}
		sort.Strings(out)
		return out
	}
	all := ids(Options{})
	if want := []string{"GHSA-2fqw-684c-pvp7:no-fix-yet", "GHSA-rhrv-645h-fjfh:fixed", "RUSTSEC-2024-0445:fixed"}; !reflect.DeepEqual(all, want) {
		t.Fatalf("all = %v, want %v", all, want)
	}
	if got := ids(Options{IgnoreUnfixed: true}); len(got) != 2 {
		t.Errorf("ignore-unfixed: %v", got)
	}
	if got := ids(Options{Severities: []finding.Severity{finding.High, finding.Critical}}); !reflect.DeepEqual(got, []string{"GHSA-2fqw-684c-pvp7:no-fix-yet", "GHSA-rhrv-645h-fjfh:fixed"}) {
		t.Errorf("severity HIGH,CRITICAL: %v", got)
	}
}

// vulndb's store is the Source the CLI passes.
var _ Source = (*vulndb.DB)(nil)
