package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
)

// partial returns one package and a PartialError, as a parser that skipped
// part of its input does.
type partial struct{ problems []error }

func (*partial) Name() string           { return "partial" }
func (*partial) Match(path string) bool { return strings.HasPrefix(path, "usr/bin/") }
func (p *partial) Parse(_ context.Context, in catalog.Input) ([]inventory.Package, error) {
	pkgs := []inventory.Package{{Name: "kept", Version: "1", Type: inventory.TypeGo}}
	return pkgs, fmt.Errorf("wrapped %s: %w", in.Path, catalog.Partial(p.problems...))
}

func TestPartialKeepsPackagesAndWarns(t *testing.T) {
	cat := &partial{problems: []error{errors.New("inner.jar: too deep"), nil, errors.New("inner.jar: too deep"), errors.New("bomb.jar: ratio")}}
	col := collect(t, context.Background(), []catalog.Cataloger{cat}, layerOf(t, map[string][]byte{"usr/bin/tool": []byte("x")}))
	if got := col.Packages(); len(got) != 1 || got[0].Name != "kept" || got[0].FoundBy != "partial" || got[0].Locations[0].Path != "/usr/bin/tool" {
		t.Fatalf("packages %+v, want the one package, attributed", got)
	}
	want := []string{"partial: /usr/bin/tool: inner.jar: too deep", "partial: /usr/bin/tool: bomb.jar: ratio"}
	if got := col.Warnings(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings %q, want %q", got, want)
	}
}

func TestPartial(t *testing.T) {
	if catalog.Partial() != nil || catalog.Partial(nil, nil) != nil {
		t.Error("no problems must give a nil error")
	}
	var many []error
	for i := range catalog.MaxProblems + 7 {
		many = append(many, fmt.Errorf("problem %d", i))
	}
	var pe *catalog.PartialError
	if !errors.As(catalog.Partial(many...), &pe) {
		t.Fatal("not a PartialError")
	}
	if n := len(pe.Problems); n != catalog.MaxProblems+1 || pe.Problems[n-1].Error() != "and 7 more problems" {
		t.Errorf("%d problems, last %v", n, pe.Problems[n-1])
	}
}

func TestCheckPackageCount(t *testing.T) {
	if err := catalog.CheckPackageCount(catalog.DefaultMaxPackages-1, 0, "x"); err != nil {
		t.Errorf("below the default: %v", err)
	}
	err := catalog.CheckPackageCount(10, 10, "apk database")
	var tm *catalog.TooManyPackagesError
	if !errors.As(err, &tm) || tm.Limit != 10 || !strings.Contains(err.Error(), "more than 10 packages in one apk database") {
		t.Errorf("at the limit: %v", err)
	}
}

func TestInterner(t *testing.T) {
	in := catalog.NewInterner(2)
	a := in.Bytes([]byte("1.2.3"))
	b := in.Bytes([]byte("1.2.3"))
	if a != "1.2.3" || b != a || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatal("the same bytes must give the same stored string")
	}
	// Full: new values are still returned right, just not stored.
	in.Bytes([]byte("x86_64"))
	if got := in.Bytes([]byte("aarch64")); got != "aarch64" {
		t.Errorf("got %q", got)
	}
	if got := in.Bytes([]byte(strings.Repeat("L", 1000))); len(got) != 1000 {
		t.Errorf("long value: %d bytes", len(got))
	}
}

func TestPackageBlocks(t *testing.T) {
	var b catalog.PackageBlocks
	if b.Slice() != nil {
		t.Error("empty: not nil")
	}
	for i := range 2500 {
		b.Append(inventory.Package{Name: fmt.Sprint(i)})
	}
	s := b.Slice()
	if len(s) != 2500 || cap(s) != 2500 || s[0].Name != "0" || s[2499].Name != "2499" || b.Len() != 0 {
		t.Errorf("len %d cap %d", len(s), cap(s))
	}
}

// TestMaxPackagesEnv runs this test binary again with the variable set: the
// default is read once per process.
func TestMaxPackagesEnv(t *testing.T) {
	if os.Getenv("BULKHEAD_TEST_CHILD") == "1" {
		fmt.Println("limit", catalog.MaxPackagesOr(0), catalog.MaxPackagesOr(7))
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMaxPackagesEnv$")
	cmd.Env = append(os.Environ(), "BULKHEAD_TEST_CHILD=1", catalog.MaxPackagesEnv+"=250000")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "limit 250000 7") {
		t.Fatalf("%v: %s", err, out)
	}
	if got := catalog.MaxPackagesOr(0); got != catalog.DefaultMaxPackages {
		t.Errorf("without the variable: %d", got)
	}
}
