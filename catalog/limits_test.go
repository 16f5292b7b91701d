package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/catalog/apk"
	"github.com/bulkhead-sec/bulkhead/catalog/dpkg"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
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

// apkDB is an apk installed database of n packages; pad makes the name of
// every package whose index is in padded that many bytes longer.
func apkDB(n int, nameLen func(i int) int) []byte {
	var b strings.Builder
	for i := range n {
		name := fmt.Sprintf("p%d", i)
		if l := nameLen(i); l > len(name) {
			name += strings.Repeat("n", l-len(name))
		}
		fmt.Fprintf(&b, "P:%s\nV:1.0.%d-r0\nA:x86_64\no:%s\nL:MIT\n\n", name, i, name)
	}
	return []byte(b.String())
}

func collectBudget(t *testing.T, b catalog.Budget, files map[string][]byte) *catalog.Collector {
	t.Helper()
	ctx := context.Background()
	col := catalog.NewCollector(ctx, []catalog.Cataloger{apk.New(), dpkg.New()}, []inventory.Layer{{Index: 0}}, t.TempDir())
	col.SetBudget(b)
	if _, err := walk.Walk(ctx, []walk.Layer{layerOf(t, files)}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir(), Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	return col
}

// A package whose name is longer than any real one is skipped with a
// warning that names the file and counts the skipped packages; the others
// are kept.
func TestFieldCapsSkipWithWarning(t *testing.T) {
	long := map[int]bool{3: true, 7: true, 8: true}
	db := apkDB(10, func(i int) int {
		if long[i] {
			return catalog.MaxNameLen + 1
		}
		return catalog.MaxNameLen // at the cap: kept
	})
	col := collectBudget(t, catalog.Budget{}, map[string][]byte{"lib/apk/db/installed": db})
	if got := len(col.Packages()); got != 7 {
		t.Errorf("kept %d packages, want 7", got)
	}
	for _, p := range col.Packages() {
		if len(p.Name) > catalog.MaxNameLen {
			t.Errorf("kept a package with a %d-byte name", len(p.Name))
		}
	}
	ws := col.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], "/lib/apk/db/installed") || !strings.Contains(ws[0], "3 packages skipped") || !strings.Contains(ws[0], "name is 513 bytes") {
		t.Errorf("warnings = %q, want one naming the file, 3 packages and the name", ws)
	}
}

func TestCheckPackage(t *testing.T) {
	for _, tc := range []struct {
		p     inventory.Package
		field string
	}{
		{inventory.Package{Name: "a", Version: strings.Repeat("1", catalog.MaxVersionLen+1)}, "version"},
		{inventory.Package{Name: "a", SourceName: strings.Repeat("s", catalog.MaxNameLen+1)}, "source name"},
		{inventory.Package{Name: "a", Arch: strings.Repeat("x", catalog.MaxArchLen+1)}, "architecture"},
		{inventory.Package{Name: "a", Maintainer: strings.Repeat("m", catalog.MaxFieldLen+1)}, "maintainer"},
		{inventory.Package{Name: "a", Licenses: []string{strings.Repeat("l", catalog.MaxFieldLen+1)}}, "licence"},
		{inventory.Package{Name: "a", Licenses: slices.Repeat([]string{strings.Repeat("l", 1000)}, 9)}, "licence list"},
		{inventory.Package{Name: "a", Locations: []inventory.Location{{Path: "/" + strings.Repeat("d", catalog.MaxFieldLen)}}}, "location"},
	} {
		_, err := catalog.CheckPackage(&tc.p)
		var fe *catalog.FieldTooLongError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: err = %v, want a FieldTooLongError for it", tc.field, err)
		}
	}
	p := inventory.Package{Name: "musl", Version: "1.2.5-r0", Type: "apk", Licenses: []string{"MIT"}}
	if n, err := catalog.CheckPackage(&p); err != nil || n != int64(catalog.PackageOverhead+len("musl1.2.5-r0apkMIT")) {
		t.Errorf("CheckPackage(musl) = %d, %v", n, err)
	}
}

// apkCost is what package i of apkDB costs against the budget.
func apkCost(i, nameLen int) int64 {
	name := fmt.Sprintf("p%d", i)
	name += strings.Repeat("n", max(0, nameLen-len(name)))
	v := fmt.Sprintf("1.0.%d-r0", i)
	n, _ := catalog.CheckPackage(&inventory.Package{Name: name, Version: v, Type: "apk", Arch: "x86_64", SourceName: name, SourceVersion: v, Licenses: []string{"MIT"}})
	return n
}

// Past the file budget the rest of the file is skipped with a warning; past
// the image budget, the rest of the image.
func TestBudgetSkipsWithWarning(t *testing.T) {
	db := apkDB(100, func(int) int { return 200 })
	var first40, first20 int64
	for i := range 40 {
		if i < 20 {
			first20 += apkCost(i, 200)
		}
		first40 += apkCost(i, 200)
	}

	col := collectBudget(t, catalog.Budget{FileBytes: first40}, map[string][]byte{"lib/apk/db/installed": db})
	if n := len(col.Packages()); n != 40 {
		t.Errorf("file budget of 40 packages kept %d", n)
	}
	ws := col.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], "apk: /lib/apk/db/installed: 60 packages skipped: the 40 before them already keep") {
		t.Errorf("warnings = %q", ws)
	}

	status := []byte("Package: x\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n\n" +
		"Package: y\nStatus: install ok installed\nVersion: 2\nArchitecture: all\n\n")
	parsed, err := dpkg.New().Parse(context.Background(), catalog.Input{Path: "/var/lib/dpkg/status", Reader: bytes.NewReader(status), Size: int64(len(status))})
	if err != nil || len(parsed) != 2 {
		t.Fatalf("dpkg: %v, %d packages", err, len(parsed))
	}
	var dpkgCost int64
	for i := range parsed {
		n, _ := catalog.CheckPackage(&parsed[i])
		dpkgCost += n
	}
	// apk's database comes first and fills its share; dpkg's two small
	// packages still fit, and nothing else would.
	col = collectBudget(t, catalog.Budget{ImageBytes: first20 + dpkgCost}, map[string][]byte{"lib/apk/db/installed": db, "var/lib/dpkg/status": status})
	if n := len(col.Packages()); n != 22 {
		t.Errorf("image budget of 22 packages kept %d", n)
	}
	if v := versions(col); v["dpkg"] == "" {
		t.Errorf("dpkg packages lost: %v", v)
	}
	ws = col.Warnings()
	if len(ws) != 1 || !strings.Contains(ws[0], "apk: /lib/apk/db/installed: 80 packages skipped: the packages of this scan already keep") {
		t.Errorf("warnings = %q", ws)
	}
}

// PackageBlocks skips what the Collector would, as the parser adds
// packages, so that a parser never holds a hostile file's packages whole.
func TestPackageBlocksBudget(t *testing.T) {
	b := catalog.PackageBlocks{MaxBytes: 10 * (catalog.PackageOverhead + 2)}
	for i := range 30 {
		name := fmt.Sprintf("%02d", i)
		if i == 3 {
			name = strings.Repeat("n", catalog.MaxNameLen+1)
		}
		b.Append(inventory.Package{Name: name})
	}
	if b.Len() != 30 {
		t.Errorf("Len = %d, want every package added", b.Len())
	}
	probs := fmt.Sprint(b.Problems())
	s := b.Slice()
	if len(s) != 10 || s[3].Name != "04" {
		t.Errorf("kept %d packages", len(s))
	}
	for _, want := range []string{"1 packages skipped as corrupt or hostile", "name is 513 bytes", "19 packages skipped: the 10 before them already keep 2580 bytes"} {
		if !strings.Contains(probs, want) {
			t.Errorf("problems %s lack %q", probs, want)
		}
	}
}

// The apk parser reports what it skipped, as a PartialError, and keeps
// the rest.
func TestParserSkipsLongFields(t *testing.T) {
	db := apkDB(5, func(i int) int { return map[bool]int{true: 600, false: 10}[i%2 == 1] })
	pkgs, err := apk.Parse(context.Background(), bytes.NewReader(db))
	var pe *catalog.PartialError
	if len(pkgs) != 3 || !errors.As(err, &pe) || !strings.Contains(err.Error(), "2 packages skipped as corrupt or hostile") {
		t.Errorf("got %d packages, err %v", len(pkgs), err)
	}
}

// Each layer rewrites the apk database; every package is attributed to the
// layer that introduced it at its version, whichever order the walk
// finishes the layers in.
func TestLayerAttributionAcrossRewrites(t *testing.T) {
	dbs := []string{
		"P:a\nV:1\n\nP:b\nV:1\n\n",
		"P:a\nV:1\n\nP:b\nV:2\n\nP:c\nV:1\n\n",
		"P:a\nV:1\n\nP:b\nV:2\n\nP:c\nV:1\n\nP:d\nV:1\n\n",
		"P:a\nV:1\n\nP:b\nV:2\n\nP:c\nV:1\n\nP:d\nV:1\n\nP:e\nV:1\n\n",
	}
	var layers []walk.Layer
	var infos []inventory.Layer
	for i, db := range dbs {
		l := layerOf(t, map[string][]byte{"lib/apk/db/installed": []byte(db)})
		l.Info.Index = i
		layers = append(layers, l)
		infos = append(infos, inventory.Layer{Index: i})
	}
	for _, jobs := range []int{1, 4} {
		ctx := context.Background()
		col := catalog.NewCollector(ctx, []catalog.Cataloger{apk.New()}, infos, t.TempDir())
		if _, err := walk.Walk(ctx, layers, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir(), Jobs: jobs}); err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, p := range col.Packages() {
			got[p.Name+"@"+p.Version] = p.Locations[0].Layer.Index
		}
		want := map[string]int{"a@1": 0, "b@2": 1, "c@1": 1, "d@1": 2, "e@1": 3}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("jobs %d: layers %v, want %v", jobs, got, want)
		}
	}
}

// TestIncomplete: packages left out because a file is over a limit for
// hostile input (a budget, a field cap, too many packages) make the
// inventory incomplete, which a gate must not pass as clean; a file that is
// merely malformed is a warning only.
func TestIncomplete(t *testing.T) {
	db := apkDB(100, func(int) int { return 20 })
	if col := collectBudget(t, catalog.Budget{}, map[string][]byte{"lib/apk/db/installed": db}); len(col.Incomplete()) != 0 {
		t.Errorf("a normal database: incomplete %q", col.Incomplete())
	}
	// Over the file budget.
	col := collectBudget(t, catalog.Budget{FileBytes: 10 * apkCost(0, 20)}, map[string][]byte{"lib/apk/db/installed": db})
	if inc := col.Incomplete(); len(inc) != 1 || !strings.Contains(inc[0], "/lib/apk/db/installed") || !strings.Contains(inc[0], "skipped") {
		t.Errorf("file budget: incomplete %q", inc)
	}
	// Over the image budget.
	col = collectBudget(t, catalog.Budget{ImageBytes: 10 * apkCost(0, 20)}, map[string][]byte{"lib/apk/db/installed": db})
	if inc := col.Incomplete(); len(inc) != 1 {
		t.Errorf("image budget: incomplete %q", inc)
	}
	// A field over its cap.
	long := apkDB(5, func(i int) int {
		if i == 2 {
			return catalog.MaxNameLen + 1
		}
		return 10
	})
	col = collectBudget(t, catalog.Budget{}, map[string][]byte{"lib/apk/db/installed": long})
	if inc := col.Incomplete(); len(inc) != 1 || !strings.Contains(inc[0], "1 packages skipped") {
		t.Errorf("field cap: incomplete %q", inc)
	}
	// Too many packages: the whole database is rejected.
	ctx := context.Background()
	col = catalog.NewCollector(ctx, []catalog.Cataloger{&apk.Cataloger{MaxPackages: 50}}, []inventory.Layer{{Index: 0}}, t.TempDir())
	if _, err := walk.Walk(ctx, []walk.Layer{layerOf(t, map[string][]byte{"lib/apk/db/installed": db})}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir(), Jobs: 1}); err != nil {
		t.Fatal(err)
	}
	if inc := col.Incomplete(); len(inc) != 1 || !strings.Contains(inc[0], "more than 50 packages") {
		t.Errorf("too many packages: incomplete %q, warnings %q", inc, col.Warnings())
	}
	// Malformed, not over a limit: a warning, not incomplete.
	bad := []byte("Package: x\nStatus: install ok installed\nVersion: 1\n\n\x00\x01garbage without a colon\n")
	col = collectBudget(t, catalog.Budget{}, map[string][]byte{"var/lib/dpkg/status": bad})
	if inc := col.Incomplete(); len(inc) != 0 {
		t.Errorf("malformed status: incomplete %q (warnings %q)", inc, col.Warnings())
	}
}
