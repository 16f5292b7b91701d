package vulndb

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
)

func TestExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "online", "osv.db")
	importFixtures(t, src)
	file := filepath.Join(dir, "bulkhead-db.tar.gz")
	m, err := Export(src, file)
	if err != nil {
		t.Fatal(err)
	}
	if !IsExportFile(file) || IsExportFile(src) || IsExportFile("testdata/osv/Go/GO-2020-0014.json") {
		t.Error("IsExportFile")
	}
	dst := filepath.Join(dir, "airgap", "osv.db")
	got, err := ImportExport(file, dst)
	if err != nil {
		t.Fatal(err)
	}
	if got.DB.SHA256 != m.DB.SHA256 || got.Status.Records != len(uniqueIDs(fixtures(t))) {
		t.Errorf("manifest %+v", got)
	}
	checkFixtureDB(t, dst, fixtures(t))
	// The copy keeps the source's freshness: the air-gapped side must not
	// look newer than the data it received.
	a, _ := openT(t, src).Status()
	b, _ := openT(t, dst).Status()
	if !a.Updated.Equal(b.Updated) || a.Source != b.Source || !reflect.DeepEqual(a.Data, b.Data) {
		t.Errorf("status changed in transit: %+v vs %+v", a.Data, b.Data)
	}
}

// rewrite rebuilds an export with the database bytes changed by edit but
// the original manifest: what a tampered file looks like.
func rewrite(t *testing.T, file string, edit func([]byte) []byte) []byte {
	t.Helper()
	f, _ := os.Open(file)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		if h.Name == exportDBName {
			data = edit(data)
			h.Size = int64(len(data))
		}
		tw.WriteHeader(h)
		tw.Write(data)
	}
	tw.Close()
	zw.Close()
	return out.Bytes()
}

func TestImportExportRefusesTampering(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	importFixtures(t, src)
	file := filepath.Join(dir, "export.tar.gz")
	if _, err := Export(src, file); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "dst.db")
	if _, err := Import(t.Context(), dst, []string{"testdata/osv/Go"}, Options{}); err != nil {
		t.Fatal(err)
	}
	before := sum(t, dst)
	raw := fileBytes(t, file)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)/2] ^= 0x40
	cases := map[string]struct {
		data []byte
		want string
	}{
		"db byte changed": {rewrite(t, file, func(b []byte) []byte { b[len(b)/2] ^= 1; return b }), "sha256"},
		"db truncated":    {rewrite(t, file, func(b []byte) []byte { return b[:len(b)-4096] }), "manifest says"},
		"byte flipped":    {flipped, ""},
		"file truncated":  {raw[:len(raw)*3/4], ""},
		"not gzip":        {fileBytes(t, "testdata/osv/Go/GO-2020-0014.json"), ""},
		"a zip":           {zipRecords(t, fixtures(t)), ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.tar.gz")
			os.WriteFile(p, tc.data, 0o644)
			_, err := ImportExport(p, dst)
			if err == nil {
				t.Fatal("tampered export accepted")
			}
			if !errors.Is(err, ErrBadExport) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want ErrBadExport mentioning %q", err, tc.want)
			}
			if sum(t, dst) != before {
				t.Error("refused export changed the database")
			}
			assertNoTemp(t, dst)
		})
	}
}
