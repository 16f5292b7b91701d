package golang

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

func parseMod(t testing.TB, path string) []inventory.Package {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The fixture is named for its origin; the cataloger reads go.mod.
	pkgs, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/src/go.mod", Reader: f})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// Expectations read off the files (and counted with `go mod edit -json`),
// not from the parser.
func TestModFileFixtures(t *testing.T) {
	for _, tc := range []struct {
		file  string
		count int // the module plus its requirements
		want  []string
		not   []string
	}{
		{"testdata/hello/go.mod", 1 + 6, []string{
			"example.com/hello  main",
			"github.com/google/uuid v1.6.0",
			"github.com/pkg/errors v0.8.1",                            // replace without old version
			"github.com/golang-jwt/jwt v3.2.1+incompatible",           // replaced by the fork
			"github.com/golang-jwt/jwt v3.2.2+incompatible",           // and required itself (indirect)
			"golang.org/x/xerrors v0.0.0-20200804184101-5ec99f83aff1", // replace of one version
			"example.com/local ",                                      // replaced by ./local
		}, []string{"github.com/pkg/errors v0.9.1", "github.com/dgrijalva/jwt-go v3.2.0+incompatible"}},
		// Local replacements of modules of the same repository.
		{"testdata/gomod/otel-metric-v1.43.0.mod", 1 + 10, []string{
			"go.opentelemetry.io/otel/metric  main",
			"go.opentelemetry.io/otel ",
			"go.opentelemetry.io/otel/trace ",
			"gopkg.in/yaml.v3 v3.0.1", // indirect
			"github.com/stretchr/testify v1.11.1",
		}, nil},
		{"testdata/gomod/syft-v1.57.1.mod", 1 + 337, []string{
			"github.com/anchore/syft  main",
			"github.com/anchore/stereoscope v0.4.1",
			"golang.org/x/mod v0.42.0",
		}, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			pkgs := parseMod(t, tc.file)
			if len(pkgs) != tc.count {
				t.Errorf("%d packages, want %d", len(pkgs), tc.count)
			}
			got := lines(pkgs)
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("missing %q in %q", w, got)
				}
			}
			for _, n := range tc.not {
				if slices.Contains(got, n) {
					t.Errorf("unexpected %q", n)
				}
			}
			for _, p := range pkgs {
				if p.Type != inventory.TypeGo || !strings.HasPrefix(p.PURL, "pkg:golang/") {
					t.Errorf("bad package %+v", p)
				}
			}
		})
	}
}

func TestModFileErrors(t *testing.T) {
	for _, in := range []string{
		"module x\nrequire (\n",
		"this is not a go.mod\n",
		"module x\nrequire github.com/a/b\n", // no version
	} {
		if _, err := ParseModFile("go.mod", []byte(in)); err == nil {
			t.Errorf("no error for %q", in)
		}
	}
	big := strings.NewReader(strings.Repeat("// x\n", MaxModFileSize/5+10))
	if _, err := NewLock().Parse(context.Background(), catalog.Input{Path: "/go.mod", Reader: big}); err == nil || !strings.Contains(err.Error(), "go.mod /go.mod is over the 8388608-byte limit") {
		t.Errorf("oversized go.mod: %v", err)
	}
}

func TestModFileMatch(t *testing.T) {
	c := NewLock()
	for p, want := range map[string]bool{"go.mod": true, "src/app/go.mod": true, "go.sum": false, "x/go.mod.bak": false} {
		if c.Match(p) != want {
			t.Errorf("Match(%q) != %v", p, want)
		}
	}
	if c.Scope() != catalog.ScopeSource {
		t.Error("go.mod is a source-tree input")
	}
}

func BenchmarkParseModFile(b *testing.B) {
	data, err := os.ReadFile("testdata/gomod/syft-v1.57.1.mod")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseModFile("go.mod", data); err != nil {
			b.Fatal(err)
		}
	}
}
