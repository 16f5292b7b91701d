package match

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func suppressInventory() *inventory.Inventory {
	return &inventory.Inventory{Target: inventory.Target{Name: "app"}, Packages: []inventory.Package{
		{Name: "avro", Version: "1.11.2", Type: "pypi", PURL: "pkg:pypi/avro@1.11.2"},
		{Name: "cap-primitives", Version: "3.4.0", Type: "cargo", PURL: "pkg:cargo/cap-primitives@3.4.0"},
		{Name: "io.atomix:atomix", Version: "3.1.5", Type: "maven", PURL: "pkg:maven/io.atomix/atomix@3.1.5"},
		{Name: "django", Version: "1.8b1", Type: "pypi", PURL: "pkg:pypi/django@1.8b1"},
	}}
}

func TestIgnoreFiles(t *testing.T) {
	src := testSource(t)
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for _, file := range []string{"testdata/ignore/bulkheadignore.yaml", "testdata/ignore/trivyignore.txt"} {
		t.Run(file, func(t *testing.T) {
			ig, err := LoadIgnoreFile(file, false)
			if err != nil {
				t.Fatal(err)
			}
			var warns []string
			fs, err := Match(context.Background(), suppressInventory(), src, Options{Ignore: ig, Now: now, Warn: func(s string) { warns = append(warns, s) }})
			if err != nil {
				t.Fatal(err)
			}
			state := map[string]bool{}
			for _, f := range fs {
				state[f.ID] = f.Suppressed != nil
				if f.Suppressed != nil && (f.Suppressed.Kind != "ignore" || !strings.HasPrefix(f.Suppressed.Source, file+":")) {
					t.Errorf("%s: suppression %+v", f.ID, f.Suppressed)
				}
			}
			want := map[string]bool{"GHSA-rhrv-645h-fjfh": true, "RUSTSEC-2024-0445": true, "GHSA-2fqw-684c-pvp7": false, "PYSEC-2015-8": false}
			for id, w := range want {
				if s, ok := state[id]; !ok || s != w {
					t.Errorf("%s: suppressed=%v (present %v), want %v", id, s, ok, w)
				}
			}
			if len(warns) != 1 || !strings.Contains(warns[0], "GHSA-2fqw-684c-pvp7 expired on 2020-01-01") {
				t.Errorf("warnings %q", warns)
			}
			if n := len(Active(fs)); n != 2 {
				t.Errorf("Active: %d findings, want 2", n)
			}
		})
	}
	// The expiry date itself still suppresses; the next day does not.
	ig := &IgnoreFile{Path: "x", Entries: []IgnoreEntry{{ID: "A", Expires: time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)}}}
	f := []finding.Finding{{ID: "A"}}
	if w := ig.Apply(f, time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC)); len(w) != 0 || f[0].Suppressed == nil {
		t.Errorf("on expiry day: %v %+v", w, f[0].Suppressed)
	}
	f = []finding.Finding{{ID: "A"}}
	if w := ig.Apply(f, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)); len(w) != 1 || f[0].Suppressed != nil {
		t.Errorf("after expiry: %v %+v", w, f[0].Suppressed)
	}
}

func TestIgnoreFileErrors(t *testing.T) {
	for _, in := range []string{
		"- id: CVE-1\n  expires: 31/12/2026\n",
		"- package: foo\n",
		"- id: CVE-1\n  colour: red\n",
		"CVE-1 extra\n",
		"CVE-1 exp:tomorrow\n",
		"ignore: notalist\n",
	} {
		if _, err := ParseIgnoreFile([]byte(in), "f"); err == nil {
			t.Errorf("%q: no error", in)
		} else if !strings.HasPrefix(err.Error(), "f:") {
			t.Errorf("%q: error %q does not name the file and line", in, err)
		}
	}
	if ig, err := LoadIgnoreFile("testdata/ignore/does-not-exist", true); err != nil || ig != nil {
		t.Errorf("optional missing file: %v %v", ig, err)
	}
	if _, err := LoadIgnoreFile("testdata/ignore/does-not-exist", false); err == nil {
		t.Error("required missing file: no error")
	}
}

func loadVEX(t testing.TB, name string) *VEXDocument {
	t.Helper()
	d, err := LoadVEX("testdata/vex/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestVEX applies the real OpenVEX documents in testdata/vex (openvex/vexctl
// examples) to findings on the products they name.
func TestVEX(t *testing.T) {
	nginx := "sha256:13d22ec63300e16014d4a42aed735207a8b33c223cff19627dd3042e5a10a3a0"
	image := ImageIdentifiers(&inventory.Target{Name: "docker.io/library/nginx:latest", Digest: nginx})
	docs := []*VEXDocument{
		loadVEX(t, "sample-2vulns.openvex.json"),
		loadVEX(t, "demo.vex.json"),
		loadVEX(t, "document1.vex.json"),
	}
	fs := []finding.Finding{
		// not_affected via the image product, matched by the statement's alias.
		{ID: "SNYK-DEBIAN12-LIBDE265-3361563", Package: &finding.Package{Name: "libde265-0", PURL: "pkg:deb/debian/libde265-0@1.0.11-1"}},
		// fixed via the image product.
		{ID: "DEBIAN-CVE-2007-5686", Aliases: []string{"CVE-2007-5686"}, Package: &finding.Package{Name: "login", PURL: "pkg:deb/debian/login@1:4.13"}},
		// fixed, the package purl is the product (qualifiers in the statement must be present).
		{ID: "CVE-2014-123456", Package: &finding.Package{Name: "git", PURL: "pkg:apk/distro/git@2.39.0-r1?arch=x86_64&distro=3.18"}},
		// same id, other arch: not covered.
		{ID: "CVE-2014-123456", Package: &finding.Package{Name: "git", PURL: "pkg:apk/distro/git@2.39.0-r1?arch=aarch64"}},
		// under_investigation does not suppress.
		{ID: "CVE-1234-5678", Package: &finding.Package{Name: "bash", PURL: "pkg:apk/wolfi/bash@1.0.0"}},
	}
	ApplyVEX(fs, docs, image)
	want := []string{"not_affected/component_not_present", "fixed/", "fixed/", "", ""}
	for i, f := range fs {
		got := ""
		if f.Suppressed != nil {
			got = f.Suppressed.Status + "/" + f.Suppressed.Justification
			if f.Suppressed.Kind != "vex" || !strings.HasPrefix(f.Suppressed.Source, "testdata/vex/") {
				t.Errorf("%d: %+v", i, f.Suppressed)
			}
		}
		if got != want[i] {
			t.Errorf("finding %d (%s %s): %q, want %q", i, f.ID, f.Package.PURL, got, want[i])
		}
	}
	// A different image digest is not covered by image statements.
	other := []finding.Finding{{ID: "CVE-2023-27103", Package: &finding.Package{Name: "libde265-0", PURL: "pkg:deb/debian/libde265-0@1.0.11-1"}}}
	ApplyVEX(other, docs, ImageIdentifiers(&inventory.Target{Name: "nginx", Digest: "sha256:00"}))
	if other[0].Suppressed != nil {
		t.Errorf("other image suppressed: %+v", other[0].Suppressed)
	}
}

func TestVEXErrors(t *testing.T) {
	if _, err := LoadVEX("../../shared/corpus/vex/redhat-csaf-vex/cve-2023-38545.json"); err == nil || !strings.Contains(err.Error(), "CSAF") {
		if _, statErr := os.Stat("../../shared/corpus/vex/redhat-csaf-vex/cve-2023-38545.json"); statErr == nil {
			t.Errorf("CSAF: %v", err)
		}
	}
	for _, in := range []string{`{}`, `not json`, `{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"status":"not_affected"}]}`,
		`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"status":"maybe"}]}`} {
		if _, err := ParseVEX([]byte(in), "x.json"); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}
