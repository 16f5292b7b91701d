package php

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func lines(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		l := p.Name + " " + p.Version + " " + p.PURL + " " + strings.Join(p.Licenses, ",")
		if p.Dev {
			l += " dev"
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// parse reads the fixture at path as the file virtual in a tree (fixtures
// are named for their origin; catalogers select by name).
func parse(t testing.TB, c catalog.Cataloger, path, virtual string) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := c.Parse(context.Background(), catalog.Input{Path: virtual, Reader: f})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// Expectations read off the files. syft v1.57.1 (`syft scan dir:`) finds the
// "packages" entries of both lock files (the first two lines of each list)
// and not the "packages-dev" ones, which bulkhead reports with Dev set.
func TestLockFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"testdata/syft.composer.lock", []string{
			"adoy/fastcgi-client 1.0.2 pkg:composer/adoy/fastcgi-client@1.0.2 MIT",
			"alcaeus/mongo-php-adapter 1.1.11 pkg:composer/alcaeus/mongo-php-adapter@1.1.11 MIT",
			"behat/gherkin v4.6.2 pkg:composer/behat/gherkin@v4.6.2 MIT dev",
			"codeception/codeception 4.1.6 pkg:composer/codeception/codeception@4.1.6 MIT dev",
		}},
		{"testdata/scalibr-drupal.composer.lock", []string{
			"drupal/core 10.4.5 pkg:composer/drupal/core@10.4.5 GPL-2.0-or-later",
			"drupal/field_time 1.0.0-beta5 pkg:composer/drupal/field_time@1.0.0-beta5 GPL-2.0-or-later dev",
			"drupal/tfa 2.0.0-alpha4 pkg:composer/drupal/tfa@2.0.0-alpha4 GPL-2.0-or-later",
			"theseer/tokenizer 1.1.3 pkg:composer/theseer/tokenizer@1.1.3 BSD-3-Clause",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if got := lines(parse(t, NewLock(), tc.file, "/app/composer.lock")); !slices.Equal(got, tc.want) {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

var installedWant = []string{
	"bramasta/belajar-php-composer-hello 2.0.0 pkg:composer/bramasta/belajar-php-composer-hello@2.0.0 ",
	"monolog/monolog 2.2.0 pkg:composer/monolog/monolog@2.2.0 MIT",
	"psr/log 1.1.4 pkg:composer/psr/log@1.1.4 MIT",
}

func TestInstalledComposer2(t *testing.T) {
	got := lines(parse(t, NewInstalled(), "testdata/bramasta-php-composer.installed.json", "/app/vendor/composer/installed.json"))
	if !slices.Equal(got, installedWant) {
		t.Errorf("\n got %q\nwant %q", got, installedWant)
	}
}

// Composer 1 wrote the bare array that Composer 2 wraps in "packages"; the
// Composer 1 file is made from the real Composer 2 one. dev-package-names
// marks development packages.
func TestInstalledForms(t *testing.T) {
	data, err := os.ReadFile("testdata/bramasta-php-composer.installed.json")
	if err != nil {
		t.Fatal(err)
	}
	var v2 map[string]json.RawMessage
	if err := json.Unmarshal(data, &v2); err != nil {
		t.Fatal(err)
	}
	pkgs, err := ParseInstalled(bytes.NewReader(v2["packages"]))
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(pkgs); !slices.Equal(got, installedWant) {
		t.Errorf("Composer 1:\n got %q\nwant %q", got, installedWant)
	}
	v2["dev-package-names"] = json.RawMessage(`["psr/log"]`)
	withDev, _ := json.Marshal(v2)
	pkgs, err = ParseInstalled(bytes.NewReader(withDev))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Dev != (p.Name == "psr/log") {
			t.Errorf("%s: Dev=%v", p.Name, p.Dev)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, in := range []string{"", "{", "[1,2", `{"packages": 3}`, "not json"} {
		if _, err := ParseLock(strings.NewReader(in)); err == nil {
			t.Errorf("ParseLock(%q): no error", in)
		}
		if _, err := ParseInstalled(strings.NewReader(in)); err == nil {
			t.Errorf("ParseInstalled(%q): no error", in)
		}
	}
	big := strings.NewReader(`{"packages":[` + strings.Repeat(" ", MaxFileSize) + `]}`)
	if _, err := ParseLock(big); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized: %v", err)
	}
}

func TestMatch(t *testing.T) {
	l, i := NewLock(), NewInstalled()
	for p, want := range map[string][2]bool{
		"composer.lock":                               {true, false},
		"srv/app/composer.lock":                       {true, false},
		"vendor/composer/installed.json":              {false, true},
		"var/www/html/vendor/composer/installed.json": {false, true},
		"var/www/installed.json":                      {false, false},
	} {
		if l.Match(p) != want[0] || i.Match(p) != want[1] {
			t.Errorf("Match(%q)", p)
		}
	}
	if l.Scope() != catalog.ScopeSource || i.Scope() != catalog.ScopeImage {
		t.Error("scopes")
	}
}

func TestPURL(t *testing.T) {
	if got := PURL("symfony/http-kernel", "v5.4.1"); got != "pkg:composer/symfony/http-kernel@v5.4.1" {
		t.Error(got)
	}
	if got := PURL("solo", "1.0"); got != "pkg:composer/solo@1.0" {
		t.Error(got)
	}
}

func BenchmarkParseLock(b *testing.B) {
	data, err := os.ReadFile("testdata/syft.composer.lock")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseLock(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseInstalled(b *testing.B) {
	data, err := os.ReadFile("testdata/bramasta-php-composer.installed.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseInstalled(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
