package dotnet

import (
	"bytes"
	"context"
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
		l := p.Name + " " + p.Version
		if p.Main {
			l += " main"
		}
		if p.Dev {
			l += " dev"
		}
		if p.PURL != "" && p.PURL != "pkg:nuget/"+p.Name+"@"+p.Version {
			l += " purl=" + p.PURL
		}
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

func parse(t testing.TB, c catalog.Cataloger, file, as string) []inventory.Package {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pkgs, err := c.Parse(context.Background(), catalog.Input{Path: as, Reader: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkgs {
		if p.Type != inventory.TypeNuGet || (p.PURL == "") != p.Main {
			t.Errorf("bad package %+v", p)
		}
	}
	return pkgs
}

// Expectations read off the files. Compared with syft v1.57.1 (`syft scan
// dir:`): the same packages, except that syft leaves out
// System.Diagnostics.DiagnosticSource and System.Runtime.CompilerServices.Unsafe
// of TestLibrary.deps.json (it drops packages whose runtime target lists no
// assemblies; they are still restored and shipped by the build, so they are
// kept here), gives the application itself a nuget purl (here: Main, no
// purl), and reports the project reference "mylib" of a lock file with
// version UNKNOWN (here: not a package).
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		c    catalog.Cataloger
		file string
		as   string
		want []string
	}{
		{NewDeps(), "testdata/TestLibrary.deps.json", "/app/TestLibrary.deps.json", []string{
			"AWSSDK.Core 3.7.10.6",
			"Microsoft.Extensions.DependencyInjection 6.0.0",
			"Microsoft.Extensions.DependencyInjection.Abstractions 6.0.0",
			"Microsoft.Extensions.Logging 6.0.0",
			"Microsoft.Extensions.Logging.Abstractions 6.0.0",
			"Microsoft.Extensions.Options 6.0.0",
			"Microsoft.Extensions.Primitives 6.0.0",
			"Newtonsoft.Json 13.0.1",
			"Serilog 2.10.0",
			"Serilog.Sinks.Console 4.0.1",
			"System.Diagnostics.DiagnosticSource 6.0.0",
			"System.Runtime.CompilerServices.Unsafe 6.0.0",
			"TestLibrary 1.0.0 main",
		}},
		// Reference assemblies are not packages.
		{NewDeps(), "testdata/MyApp.deps.json", "/app/MyApp.deps.json", []string{"MyApp 1.0.0 main", "Newtonsoft.Json 13.0.3"}},
		{NewLock(), "testdata/syft.packages.lock.json", "/src/packages.lock.json", []string{
			"AutoMapper 13.0.1",
			"Microsoft.Extensions.DependencyInjection.Abstractions 9.0.0",
			"Microsoft.Extensions.Logging 9.0.0",
			"Microsoft.Extensions.Options 9.0.0",
			"Microsoft.Extensions.Primitives 9.0.0",
			"System.Runtime.CompilerServices.Unsafe 9.0.0",
			"bootstrap 5.0.0",
			"log4net 1.2.15",
			"log4net 2.0.5",
		}},
		// Two frameworks; Newtonsoft.Json spelled two ways is one package.
		{NewLock(), "testdata/syft-multi-framework.packages.lock.json", "/src/packages.lock.json", []string{
			"MyLib 1.0.0",
			"Newtonsoft.Json 13.0.3",
			"Serilog 3.1.1",
			"log4net 1.2.15",
			"log4net 2.0.5",
			"runtime.win-x64.MyLib.Native 1.0.0",
		}},
		{NewLock(), "testdata/syft-project-reference.packages.lock.json", "/src/packages.lock.json", []string{"Newtonsoft.Json 13.0.3"}},
		{NewLock(), "testdata/sweetpotato.packages.config", "/src/packages.config", []string{"NtApiDotNet 1.1.32", "dnMerge 0.5.15 dev"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if got := lines(parse(t, tc.c, tc.file, tc.as)); !slices.Equal(got, tc.want) {
				t.Errorf("\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Package names of real NuGet advisories (the shared corpus), when present,
// through packages.config: ids with dots, dashes and mixed case survive.
func TestCorpusNames(t *testing.T) {
	dir := "../../../shared/corpus/osv/NuGet"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skip("shared corpus not present")
	}
	var b strings.Builder
	b.WriteString("<packages>\n")
	var want []string
	for _, e := range ents {
		data, err := os.ReadFile(dir + "/" + e.Name())
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(data, []byte(`"name": "`))
		if i < 0 {
			continue
		}
		name := string(data[i+9:])
		name = name[:strings.IndexByte(name, '"')]
		b.WriteString(`  <package id="` + name + `" version="1.0.0" targetFramework="net48" />` + "\n")
		want = append(want, name+" 1.0.0")
	}
	b.WriteString("</packages>\n")
	pkgs, err := ParseConfig(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if got := lines(pkgs); !slices.Equal(got, want) {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"libraries": 3}`} {
		if _, err := ParseDeps(strings.NewReader(in), ""); err == nil {
			t.Errorf("ParseDeps(%q): no error", in)
		}
	}
	for _, in := range []string{"", "{", `{"version": 1}`} {
		if _, err := ParseLock(strings.NewReader(in)); err == nil {
			t.Errorf("ParseLock(%q): no error", in)
		}
	}
	for _, in := range []string{"", "<packages>", "<other/>", "not xml"} {
		if _, err := ParseConfig(strings.NewReader(in)); err == nil {
			t.Errorf("ParseConfig(%q): no error", in)
		}
	}
	big := strings.NewReader(strings.Repeat(" ", MaxFileSize+1))
	if _, err := ParseLock(big); err == nil || !strings.Contains(err.Error(), "over") {
		t.Errorf("oversized: %v", err)
	}
}

func TestMatch(t *testing.T) {
	d, l := NewDeps(), NewLock()
	for p, want := range map[string][2]bool{
		"app/MyApp.deps.json":          {true, false},
		"app/.deps.json":               {false, false},
		"src/packages.lock.json":       {false, true},
		"src/packages.config":          {false, true},
		"app/MyApp.runtimeconfig.json": {false, false},
	} {
		if d.Match(p) != want[0] || l.Match(p) != want[1] {
			t.Errorf("Match(%q)", p)
		}
	}
	if d.Scope() != catalog.ScopeAll || l.Scope() != catalog.ScopeSource {
		t.Error("scopes")
	}
}

func BenchmarkParseDeps(b *testing.B) {
	data, err := os.ReadFile("testdata/TestLibrary.deps.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseDeps(bytes.NewReader(data), "TestLibrary"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseLock(b *testing.B) {
	data, err := os.ReadFile("testdata/syft.packages.lock.json")
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

func BenchmarkParseConfig(b *testing.B) {
	data, err := os.ReadFile("testdata/sweetpotato.packages.config")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseConfig(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
