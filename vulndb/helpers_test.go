package vulndb

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// fixture is one committed OSV record, read with encoding/json (not the
// code under test) to derive the expected answers.
type fixture struct {
	path, feed string
	data       []byte
	ID         string `json:"id"`
	Modified   string `json:"modified"`
	Withdrawn  string `json:"withdrawn"`
	Affected   []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

func fixtures(t testing.TB) []*fixture {
	t.Helper()
	var out []*fixture
	err := filepath.Walk("testdata/osv", func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || filepath.Ext(p) != ".json" {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f := &fixture{path: p, data: data, feed: strings.Split(filepath.ToSlash(p), "/")[2]}
		if err := json.Unmarshal(data, f); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// expectedEcosystems counts distinct non-withdrawn ids per ecosystem.
func expectedEcosystems(fx []*fixture) map[string]int {
	sets := map[string]map[string]bool{}
	for _, f := range fx {
		if f.Withdrawn != "" {
			continue
		}
		for _, a := range f.Affected {
			e := a.Package.Ecosystem
			if sets[e] == nil {
				sets[e] = map[string]bool{}
			}
			sets[e][f.ID] = true
		}
	}
	out := map[string]int{}
	for e, s := range sets {
		out[e] = len(s)
	}
	return out
}

func uniqueIDs(fx []*fixture) map[string]*fixture {
	m := map[string]*fixture{}
	for _, f := range fx {
		m[f.ID] = f
	}
	return m
}

// zipRecords builds an OSV-bucket style all.zip: one <ID>.json per record.
func zipRecords(t testing.TB, fx []*fixture) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	seen := map[string]bool{}
	for _, f := range fx {
		if seen[f.ID] {
			continue
		}
		seen[f.ID] = true
		w, err := zw.Create(f.ID + ".json")
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// lookupIDs returns the sorted ids Lookup finds.
func lookupIDs(t testing.TB, db *DB, eco, name string) []string {
	t.Helper()
	vs, err := db.Lookup(eco, name)
	if err != nil {
		t.Fatalf("Lookup(%q, %q): %v", eco, name, err)
	}
	var out []string
	for _, v := range vs {
		out = append(out, v.GetId())
	}
	sort.Strings(out)
	return out
}

func importFixtures(t testing.TB, dbPath string) {
	t.Helper()
	if _, err := Import(t.Context(), dbPath, []string{"testdata/osv"}, Options{}); err != nil {
		t.Fatal(err)
	}
}

func openT(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func fileBytes(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
