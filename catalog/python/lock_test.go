package python

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func TestLockMatch(t *testing.T) {
	tests := map[string]bool{
		"requirements.txt":                   true,
		"src/requirements-dev.txt":           true,
		"src/1-requirements-dev.txt":         true,
		"extra-requirements.txt":             true,
		"poetry.lock":                        true,
		"app/Pipfile.lock":                   true,
		"uv.lock":                            true,
		"scripts/script.py.lock":             true,
		"requirements.in":                    false,
		"requirements/base.txt":              false,
		"Pipfile":                            false,
		"pyproject.toml":                     false,
		"pdm.lock":                           false,
		".py.lock":                           false,
		"usr/share/doc/requirements.txt.gz":  false,
		"node_modules/foo/package-lock.json": false,
	}
	c := NewLock()
	for p, want := range tests {
		if got := c.Match(p); got != want {
			t.Errorf("Match(%q) = %v, want %v", p, got, want)
		}
	}
}

func parseLock(t testing.TB, file string) []inventory.Package {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/" + file, Reader: f})
	if err != nil {
		t.Fatalf("Parse(%s): %v", file, err)
	}
	return pkgs
}

func nameVersions(pkgs []inventory.Package) []string {
	var out []string
	for _, p := range pkgs {
		out = append(out, NormalizeName(p.Name)+" "+p.Version)
	}
	sort.Strings(out)
	return out
}

func flagged(pkgs []inventory.Package, f func(inventory.Package) bool) []string {
	var out []string
	for _, p := range pkgs {
		if f(p) {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// The "syft" lists are what syft v1.57.1 reports for the same files
// (`syft scan dir:testdata/lock/<dir> -o json`), names normalised as syft
// does. Where bulkhead differs, the test says why.
func TestParseLockFixtures(t *testing.T) {
	tests := []struct {
		file  string
		syft  []string
		extra []string // found by bulkhead, not by syft
		skip  []string // found by syft, not by bulkhead
		dev   []string
		main  []string
	}{
		{
			file: "poetry-old-lock/poetry.lock",
			syft: []string{"certifi 2020.6.20", "chardet 3.0.4", "docker 4.3.1", "idna 2.10", "pywin32 227", "requests 2.24.0", "six 1.15.0", "urllib3 1.25.10", "websocket-client 0.57.0"},
		},
		{
			file: "syft-poetry-dev-deps/poetry.lock",
			syft: []string{"added-value 0.14.2", "alabaster 0.7.12", "appnope 0.1.0", "asciitree 0.3.3"},
			dev:  []string{"added-value", "alabaster", "appnope", "asciitree"},
		},
		{
			file: "syft-pipfile/Pipfile.lock",
			syft: []string{"aio-pika 6.8.0", "aiodns 2.0.0", "aiohttp 3.7.4.post0", "aiohttp-jinja2 1.4.2"},
			// syft reads only "default"; the "develop" section is part
			// of the lock too, and bulkhead reports it marked Dev.
			extra: []string{"astroid 2.5.2", "autopep8 1.5.6"},
			dev:   []string{"astroid", "autopep8"},
		},
		{
			file: "syft-uv-simple-deps/uv.lock",
			syft: []string{"certifi 2025.1.31", "charset-normalizer 3.4.1", "idna 3.10", "requests 2.32.3", "testpkg 0.1.0", "urllib3 2.3.0"},
			main: []string{"testpkg"},
		},
		{
			file: "scalibr-uv-grouped/uv.lock",
			syft: []string{"black 24.10.0", "click 8.1.7", "colorama 0.4.6", "emoji 2.14.0", "flake8 7.1.1", "mccabe 0.7.0", "mypy-extensions 1.0.0", "packaging 24.2", "pathspec 0.12.1", "platformdirs 4.3.6", "pycodestyle 2.12.1", "pyflakes 3.2.0", "tomli 2.2.1", "typing-extensions 4.12.2", "uv-lockfiles 0.1.0"},
			main: []string{"uv-lockfiles"},
		},
		{
			file: "syft-requires/requirements.txt",
			syft: []string{"argh 0.26.2", "argh 0.26.3", "celery 4.4.7", "dots-allowed 1.0.0", "flask 4.0.0", "foo 1.0.0", "friendly-bard 1.0.0", "githubsampleproject 3.7.1", "local-version 1.2.3+gcr.2", "someproject 5.4", "urllib3 1.26.20"},
		},
		{
			file: "scalibr-requirements/per-req-options-requirements.txt",
			syft: []string{"foo1 1.0", "foo10 --hash=sha256", "foo11 1.0", "foo12 1.0", "foo13 1.0", "foo14 1.0", "foo15 --config-settings", "foo16-client 1.0", "foo17-hash 1.0", "foo18-client 1.0", "foo2 1.0", "foo3 1.0", "foo4 1.0", "foo5 1.0", "foo6 1.0", "foo7 1.0", "foo8 1.0", "foo9 1.0"},
			// "foo10== --hash=..." and "foo15== --config-settings ..."
			// pin no version: syft takes the option for one.
			skip: []string{"foo10 --hash=sha256", "foo15 --config-settings"},
		},
		{
			file: "scalibr-requirements/extras-requirements.txt",
			syft: []string{"celery 4.4.7", "pyjwt 2.1.0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			pkgs := parseLock(t, filepath.Join("testdata/lock", tt.file))
			var want []string
			for _, s := range append(slices.Clone(tt.syft), tt.extra...) {
				if !slices.Contains(tt.skip, s) {
					want = append(want, s)
				}
			}
			sort.Strings(want)
			if got := nameVersions(pkgs); !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if got := flagged(pkgs, func(p inventory.Package) bool { return p.Dev }); !slices.Equal(got, tt.dev) {
				t.Errorf("dev %q, want %q", got, tt.dev)
			}
			if got := flagged(pkgs, func(p inventory.Package) bool { return p.Main }); !slices.Equal(got, tt.main) {
				t.Errorf("main %q, want %q", got, tt.main)
			}
			for _, p := range pkgs {
				if p.Type != inventory.TypePyPI || p.PURL != "pkg:pypi/"+NormalizeName(p.Name)+"@"+strings.ReplaceAll(p.Version, "+", "%2B") {
					t.Errorf("bad package %+v", p)
				}
			}
		})
	}
}

func TestParseRequirementLines(t *testing.T) {
	tests := map[string]string{ // line -> "name version" or ""
		"Django==4.2.7":             "Django 4.2.7",
		"django == 4.2.7  # pinned": "django 4.2.7",
		"requests[socks,security]==2.31.0 ; python_version >= '3.8'": "requests 2.31.0",
		"pkg===1.0-legacy":          "pkg 1.0-legacy",
		"numpy>=1.20":               "",
		"numpy==1.*":                "",
		"numpy==1.20,<2":            "",
		"numpy~=1.20":               "",
		"-r other-requirements.txt": "",
		"-e git+https://github.com/pallets/flask#egg=flask": "",
		"--index-url https://pypi.org/simple":               "",
		"flask @ https://example.com/flask-3.0.0.whl":       "",
		"pkg==${VERSION}":  "",
		"# just a comment": "",
		"urllib3==2.0.7 --hash=sha256:abc --hash=sha256:def": "urllib3 2.0.7",
	}
	for line, want := range tests {
		p, ok := parseRequirementLine(line)
		got := ""
		if ok {
			got = p.Name + " " + p.Version
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", line, got, want)
		}
	}
}

func TestParseLockErrors(t *testing.T) {
	tests := []struct{ path, in, want string }{
		{"/poetry.lock", "[[package]\nname=", "parse TOML"},
		{"/uv.lock", "version = [", "parse TOML"},
		{"/Pipfile.lock", "{\"default\": [}", "parse JSON"},
	}
	for _, tt := range tests {
		_, err := NewLock().Parse(context.Background(), catalog.Input{Path: tt.path, Reader: strings.NewReader(tt.in)})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.path) {
			t.Errorf("%s: err = %v, want %q", tt.path, err, tt.want)
		}
	}
	// Continuation lines join; a backslash on the last line is harmless.
	pkgs, err := ParseRequirements(context.Background(), strings.NewReader("argh==0.26.2 \\\n  --hash=sha256:a9b3 \\\n"))
	if err != nil || len(pkgs) != 1 || pkgs[0].Version != "0.26.2" {
		t.Errorf("continuation: %v %+v", err, pkgs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ParseRequirements(ctx, strings.NewReader("a==1\n")); err == nil {
		t.Error("cancelled context not reported")
	}
}

func BenchmarkParseUVLock(b *testing.B) {
	data, err := os.ReadFile("testdata/lock/scalibr-uv-grouped/uv.lock")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseUVLock(strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequirements(b *testing.B) {
	data, err := os.ReadFile("testdata/lock/syft-requires/requirements.txt")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequirements(context.Background(), strings.NewReader(string(data))); err != nil {
			b.Fatal(err)
		}
	}
}
