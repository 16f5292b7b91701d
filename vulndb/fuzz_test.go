package vulndb

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

func FuzzParseRecord(f *testing.F) {
	for _, fx := range fixtures(f) {
		f.Add(fx.data)
	}
	f.Add([]byte(`[{"id":"GO-2020-0014"}]`))
	f.Add([]byte(osvJSON("GO-T-1", strings.Repeat("E", MaxEcosystemLen+1), "m", time.Now())))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range parseItem("fuzz", data) {
			if p.err != nil {
				continue
			}
			v := p.v
			if v.GetId() == "" {
				t.Fatal("accepted a record without id")
			}
			for _, k := range indexKeys(v) {
				eco, name := splitIndexKey([]byte(k))
				if eco == "" || strings.ContainsRune(eco+name, 0) || len(eco) > MaxEcosystemLen || len(k) > bolt.MaxKeySize {
					t.Fatalf("bad index key %.100q (%d bytes)", k, len(k))
				}
			}
			pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			back := &osvschema.Vulnerability{}
			if err := proto.Unmarshal(pb, back); err != nil || !proto.Equal(v, back) {
				t.Fatalf("protobuf round trip: %v", err)
			}
		}
	})
}

// FuzzImport imports arbitrary bytes as a JSON file next to a real record:
// one bad file never fails the import (it is skipped, named), and the
// database opens and answers, also after a full import of the ecosystem.
func FuzzImport(f *testing.F) {
	for _, fx := range fixtures(f)[:6] {
		f.Add(fx.data)
	}
	big := strings.Repeat("x", 100<<10)
	now := time.Now()
	f.Add([]byte(osvJSON("GO-T-1", big, "m", now)))
	f.Add([]byte(osvJSON("GO-T-1", "Go", big, now)))
	f.Add([]byte(osvJSON("GO-T-"+big, "Go", "m", now)))
	f.Add([]byte("[" + osvJSON("GO-T-1", "Go", "m", now) + "," + osvJSON("GO-T-2", "Debian:"+big, "m", now) + "]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		os.MkdirAll(src, 0o755)
		os.WriteFile(filepath.Join(src, "fuzz.json"), data, 0o644)
		os.WriteFile(filepath.Join(src, "real.json"), fileBytes(t, "testdata/osv/Go/GO-2020-0014.json"), 0o644)
		path := filepath.Join(dir, "osv.db")
		if _, err := Import(t.Context(), path, []string{src}, Options{}); err != nil {
			t.Fatalf("one bad file failed the import: %v", err)
		}
		if _, err := Import(t.Context(), path, []string{src}, Options{FullEcosystem: "Go"}); err != nil {
			t.Fatalf("full import: %v", err)
		}
		db, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		st, err := db.Status()
		if err != nil || st.Records < 1 {
			t.Fatalf("status %+v %v", st, err)
		}
		for _, e := range st.Ecosystems {
			if _, err := db.Lookup(e.Name, "x"); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := db.Lookup("Go", "golang.org/x/net"); len(got) == 0 && !bytes.Contains(data, []byte("GO-2020-0014")) {
			t.Fatal("real record lost")
		}
		tr := db.Track()
		tr.Lookup("Go", "x")
		if a, err := tr.DataAge(); err != nil || a.Oldest.Ecosystem != "Go" || a.Oldest.Kind != KindFullImport {
			t.Fatalf("data age after a full import: %+v %v", a, err)
		}
	})
}

func FuzzReadExport(f *testing.F) {
	dir := f.TempDir()
	src := filepath.Join(dir, "osv.db")
	if _, err := Import(f.Context(), src, []string{"testdata/osv/crates.io"}, Options{}); err != nil {
		f.Fatal(err)
	}
	file := filepath.Join(dir, "export.tar.gz")
	if _, err := Export(src, file); err != nil {
		f.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(data[:100])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := readExport(bytes.NewReader(data), io.Discard, 64<<20)
		if err == nil && (m.Format != exportFormat || m.DB.Size <= 0) {
			t.Fatalf("accepted manifest %+v", m)
		}
	})
}

func FuzzParseModifiedIDs(f *testing.F) {
	f.Add("2026-03-01T10:00:00.123456Z,PYSEC-2026-3\n2026-02-01T10:00:00Z,PyPI/PYSEC-2026-2\n")
	f.Add("modified,id\r\n2026-01-01T00:00:00Z,GO-2026-1\r\n")
	f.Fuzz(func(t *testing.T, csv string) {
		ids, _, err := parseModifiedIDs(strings.NewReader(csv), time.Time{})
		if err != nil {
			return
		}
		for _, id := range ids {
			if !idPattern().MatchString(id) {
				t.Fatalf("bad id %q", id)
			}
		}
	})
}
