package ruby

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
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

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		path      string
		spec, lck bool
	}{
		{"usr/share/rubygems-integration/all/specifications/rack-2.2.22.gemspec", true, false},
		{"usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", true, false},
		{"usr/local/bundle/specifications/nokogiri-1.16.7-x86_64-linux.gemspec", true, false},
		{"specifications/x-1.gemspec", true, false},
		{"app/myapp.gemspec", false, false},
		{"usr/lib/ruby/gems/3.1.0/gems/rack-2.2.22/rack.gemspec", false, false},
		{"app/Gemfile.lock", false, true},
		{"Gemfile.lock", false, true},
		{"app/Gemfile.next.lock", false, true},
		{"app/Gemfile", false, false},
		{"app/myGemfile.lock", false, false},
	} {
		if got := New().Match(tt.path); got != tt.spec {
			t.Errorf("Gemspecs.Match(%q) = %v", tt.path, got)
		}
		if got := NewLock().Match(tt.path); got != tt.lck {
			t.Errorf("Lock.Match(%q) = %v", tt.path, got)
		}
	}
}

func scan(t testing.TB, root string, c catalog.Cataloger) map[string]inventory.Package {
	t.Helper()
	out := map[string]inventory.Package{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if !c.Match(rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		pkgs, err := c.Parse(context.Background(), catalog.Input{Path: "/" + rel, Reader: bytes.NewReader(b), Size: int64(len(b))})
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		for i, p := range pkgs {
			out[rel+"#"+string(rune('0'+i%10))+p.Name+" "+p.Version+" "+p.Arch] = p
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// syft v1.57.1 finds these 16 gems in testdata/rootfs (syft scan
// dir:testdata/rootfs --override-default-catalogers
// ruby-installed-gemspec-cataloger), with these licences.
var syftGemspecs = `addressable 2.8.1 Apache-2.0
bundler 2.3.7 MIT
digest 3.1.0 BSD-2-Clause,Ruby
io-console 0.5.11 BSD-2-Clause,Ruby
json 2.6.1 Ruby
minitest 5.15.0 MIT
mustermann 3.0.0 MIT
nokogiri 1.13.10 MIT
openssl 3.0.1 Ruby
psych 4.0.3 MIT
public_suffix 4.0.6 MIT
rack 2.2.22 MIT
rack-test 2.0.2 MIT
rake 13.0.6 MIT
rbs 2.1.0 BSD-2-Clause,Ruby
sinatra 3.0.5 MIT`

func TestGemspecs(t *testing.T) {
	found := scan(t, filepath.Join("testdata", "rootfs"), New())
	var got []string
	for _, p := range found {
		lic := slices.Clone(p.Licenses)
		sort.Strings(lic)
		got = append(got, p.Name+" "+p.Version+" "+strings.Join(lic, ","))
		if p.Type != inventory.TypeGem || p.PURL != "pkg:gem/"+p.Name+"@"+p.Version {
			t.Errorf("bad package %+v", p)
		}
	}
	sort.Strings(got)
	if want := strings.Split(syftGemspecs, "\n"); !slices.Equal(got, want) {
		t.Errorf("gemspecs:\n got %q\nwant %q", got, want)
	}
}

// TestGemspecsAgainstRubyGems loads every fixture with RubyGems itself.
func TestGemspecsAgainstRubyGems(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("ruby not installed")
	}
	var files []string
	_ = filepath.WalkDir(filepath.Join("testdata", "rootfs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".gemspec") {
			files = append(files, p)
		}
		return nil
	})
	script := `ARGV.each { |f| s = Gem::Specification.load(f); puts [s.name, s.version, s.platform.to_s, s.licenses.join(",")].join(" ") }`
	out, err := exec.Command(ruby, append([]string{"-e", script}, files...)...).Output()
	if err != nil {
		t.Fatalf("ruby: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(out)), "\n")
	sort.Strings(want)
	var got []string
	for _, f := range files {
		b, _ := os.ReadFile(f)
		p, ok, err := ParseGemspec(bytes.NewReader(b))
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", f, ok, err)
		}
		plat := p.Arch
		if plat == "" {
			plat = "ruby"
		}
		got = append(got, strings.Join([]string{p.Name, p.Version, plat, strings.Join(p.Licenses, ",")}, " "))
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("bulkhead and RubyGems disagree:\nbulkhead %q\nrubygems %q", got, want)
	}
}

func TestGemspecForms(t *testing.T) {
	for _, tt := range []struct {
		in, name, version, arch string
		lic                     []string
		ok                      bool
	}{
		{"  s.name = \"rack\".freeze\n  s.version = \"2.2.22\"\n  s.licenses = [\"MIT\".freeze]\n", "rack", "2.2.22", "", []string{"MIT"}, true},
		// RubyGems 1.x quoting.
		{"  s.name = %q{rack}\n  s.version = \"1.1.0\"\n  s.licenses = [%q{MIT}, %q<Ruby>]\n", "rack", "1.1.0", "", []string{"MIT", "Ruby"}, true},
		{"  s.name = 'x'\n  s.version = Gem::Version.new(\"1.0\")\n  s.license = \"MIT\"\n", "x", "1.0", "", []string{"MIT"}, true},
		{"  s.name = \"nokogiri\".freeze\n  s.version = \"1.16.7\"\n  s.platform = \"x86_64-linux\".freeze\n", "nokogiri", "1.16.7", "x86_64-linux", nil, true},
		{"# stub: ffi 1.17.0 x86_64-linux-gnu lib\n", "ffi", "1.17.0", "x86_64-linux-gnu", nil, true},
		{"  s.name = \"a b\"\n  s.version = \"1\"\n", "", "", "", nil, false},
		{"  s.name = name\n  s.version = VERSION\n", "", "", "", nil, false},
		{"  s.name = \"unterminated\n", "", "", "", nil, false},
	} {
		p, ok, err := ParseGemspec(strings.NewReader(tt.in))
		if err != nil || ok != tt.ok {
			t.Errorf("%q: ok=%v err=%v", tt.in, ok, err)
			continue
		}
		if ok && (p.Name != tt.name || p.Version != tt.version || p.Arch != tt.arch || !slices.Equal(p.Licenses, tt.lic)) {
			t.Errorf("%q: got %+v", tt.in, p)
		}
	}
	big := catalog.Input{Path: "/s/specifications/x.gemspec", Reader: strings.NewReader(""), Size: MaxGemspecSize + 1}
	if _, err := New().Parse(context.Background(), big); err == nil || !strings.Contains(err.Error(), big.Path) {
		t.Errorf("oversized gemspec: %v", err)
	}
}

func parseLockFile(t testing.TB, path string) []inventory.Package {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/" + path, Reader: bytes.NewReader(b), Size: int64(len(b))})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func lines(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		plat := p.Arch
		if plat == "" {
			plat = "ruby"
		}
		out = append(out, p.Name+" "+p.Version+" "+plat)
	}
	sort.Strings(out)
	return out
}

func TestGemfileLock(t *testing.T) {
	tests := []struct {
		file  string
		count int
		main  []string
		spots map[string]string // purl -> arch
	}{
		// Written by Bundler 2.3.15 here: a GIT gem, the project's own
		// gemspec (PATH remote .) and GEM gems. syft finds the same 12
		// (and fixture-app once more, from app.gemspec).
		{"bundler-2.3.15/Gemfile.lock", 12, []string{"fixture-app"}, map[string]string{
			"pkg:gem/gitgem@0.4.1": "", "pkg:gem/sinatra@3.0.5": "", "pkg:gem/rack@2.2.22": "",
		}},
		// syft reports the platform in the version (nokogiri
		// 1.16.7-x86_64-linux); Bundler splits it off, and so does
		// bulkhead, into Arch and the purl's platform qualifier.
		{"rails-excerpt/Gemfile.lock", 10, []string{"activejob", "activemodel"}, map[string]string{
			"pkg:gem/nokogiri@1.16.7?platform=x86_64-linux": "x86_64-linux",
			"pkg:gem/nokogiri@1.16.7":                       "",
			"pkg:gem/ffi@1.17.0?platform=x86_64-linux-gnu":  "x86_64-linux-gnu",
			"pkg:gem/httpclient@2.8.3":                      "",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := parseLockFile(t, filepath.Join("testdata", "lock", tt.file))
			if len(pkgs) != tt.count {
				t.Errorf("%d gems, want %d: %q", len(pkgs), tt.count, lines(pkgs))
			}
			var main []string
			byPURL := map[string]inventory.Package{}
			for _, p := range pkgs {
				if p.Main {
					main = append(main, p.Name)
				}
				if p.Dev || p.Type != inventory.TypeGem {
					t.Errorf("bad package %+v", p)
				}
				byPURL[p.PURL] = p
			}
			if !slices.Equal(main, tt.main) {
				t.Errorf("main %q, want %q", main, tt.main)
			}
			for purl, arch := range tt.spots {
				if p, ok := byPURL[purl]; !ok || p.Arch != arch {
					t.Errorf("%s: %+v", purl, p)
				}
			}
		})
	}
}

// TestGemfileLockAgainstBundler reads the fixtures with Bundler's own
// lockfile parser.
func TestGemfileLockAgainstBundler(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("ruby not installed")
	}
	if exec.Command(ruby, "-rbundler", "-e", "").Run() != nil {
		t.Skip("bundler not installed")
	}
	gemfile, _ := filepath.Abs(filepath.Join("testdata", "lock", "bundler-2.3.15", "Gemfile"))
	for _, f := range []string{"bundler-2.3.15/Gemfile.lock", "rails-excerpt/Gemfile.lock"} {
		path := filepath.Join("testdata", "lock", f)
		cmd := exec.Command(ruby, "-rbundler", "-e",
			`Bundler::LockfileParser.new(File.read(ARGV[0])).specs.each { |s| puts "#{s.name} #{s.version} #{s.platform}" }`, path)
		// PATH sources resolve against the Gemfile's directory.
		cmd.Env = append(os.Environ(), "BUNDLE_GEMFILE="+gemfile)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bundler on %s: %v", f, err)
		}
		want := strings.Split(strings.TrimSpace(string(out)), "\n")
		sort.Strings(want)
		got := lines(parseLockFile(t, path))
		for i, l := range got {
			// RubyGems before 3.5 (Debian 12's Bundler 2.3.15) folds the
			// gnu of x86_64-linux-gnu into x86_64-linux; the lockfile
			// says x86_64-linux-gnu, which bulkhead keeps.
			got[i] = strings.Replace(l, "x86_64-linux-gnu", "x86_64-linux", 1)
		}
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s:\nbulkhead %q\nbundler  %q", f, got, want)
		}
	}
}

func TestGemfileLockBounds(t *testing.T) {
	defer func(n int) { maxPackages = n }(maxPackages)
	maxPackages = 3
	b, _ := os.ReadFile(filepath.Join("testdata", "lock", "bundler-2.3.15", "Gemfile.lock"))
	_, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/Gemfile.lock", Reader: bytes.NewReader(b), Size: int64(len(b))})
	if err == nil || !strings.Contains(err.Error(), "/Gemfile.lock") {
		t.Errorf("maxPackages 3: %v", err)
	}
	big := catalog.Input{Path: "/Gemfile.lock", Reader: strings.NewReader(""), Size: MaxLockSize + 1}
	if _, err := NewLock().Parse(context.Background(), big); err == nil {
		t.Error("oversized lockfile accepted")
	}
}

// The read itself is bounded: a Gemfile.lock whose Size understates it
// fails at MaxLockSize with an error naming the file and the limit.
func TestGemfileLockReadBound(t *testing.T) {
	body := io.MultiReader(strings.NewReader("GEM\n  remote: https://rubygems.org/\n  specs:\n    rack (2.2.22)\n"),
		rand.NewChaCha8([32]byte{})) // endless
	_, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/app/Gemfile.lock", Reader: body, Size: 1})
	var tl *catalog.TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "Gemfile.lock /app/Gemfile.lock is over the") {
		t.Errorf("err = %v, want a TooLargeError naming the file", err)
	}
}
