package rpm

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/walk"
)

// TestMaxPackages: in each of the three formats, the guard counts the
// packages before go-rpmdb reads them and rejects a database over the limit.
func TestMaxPackages(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.file, func(t *testing.T) {
			data := fixtureData(t, fx)
			pkgs, err := parse(t, New(), data)
			if err != nil || len(pkgs) == 0 {
				t.Fatalf("%d packages, %v", len(pkgs), err)
			}
			if got, err := parse(t, &Cataloger{MaxPackages: len(pkgs)}, data); err != nil || len(got) != len(pkgs) {
				t.Errorf("at the limit: %d packages, %v", len(got), err)
			}
			if len(pkgs) < 2 {
				return // a limit of zero is the default
			}
			_, err = parse(t, &Cataloger{MaxPackages: len(pkgs) - 1}, data)
			var tm *catalog.TooManyPackagesError
			if !errors.As(err, &tm) || tm.Limit != len(pkgs)-1 || !strings.Contains(err.Error(), "/var/lib/rpm/Packages") {
				t.Errorf("over the limit: got %v, want a TooManyPackagesError naming the file", err)
			}
		})
	}
}

// TestCorruptDBWarns: a damaged database in an image is not skipped
// silently: the scan's warnings name the file and say it is corrupt.
func TestCorruptDBWarns(t *testing.T) {
	good := fixtureData(t, fixtures[0]) // BerkeleyDB
	bad := bytes.Clone(good)
	bad[32], bad[33], bad[34], bad[35] = 0, 0, 0, 0x40 // last page number far past the end
	ndb := bytes.Clone(fixtureData(t, fixtures[2]))
	ndb[32] = 'X' // first slot's magic
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string][]byte{"var/lib/rpm/Packages": bad, "usr/lib/sysimage/rpm/Packages.db": ndb} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	layer := walk.Layer{Info: walk.LayerInfo{Index: 0}, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}}
	col := catalog.NewCollector(context.Background(), []catalog.Cataloger{New()}, []inventory.Layer{{Index: 0}}, t.TempDir())
	if _, err := walk.Walk(context.Background(), []walk.Layer{layer}, []walk.Visitor{col}, walk.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if n := len(col.Packages()); n != 0 {
		t.Errorf("%d packages from corrupt databases", n)
	}
	w := col.Warnings()
	if len(w) != 2 {
		t.Fatalf("warnings %q, want one per database", w)
	}
	for i, path := range []string{"/usr/lib/sysimage/rpm/Packages.db", "/var/lib/rpm/Packages"} {
		if !strings.HasPrefix(w[i], "rpm: "+path+": ") || !strings.Contains(w[i], "corrupt") {
			t.Errorf("warning %q: want it to name %s and say it is corrupt", w[i], path)
		}
	}
}
