package vulndb

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestImportSources(t *testing.T) {
	fx := fixtures(t)
	zipPath := filepath.Join(t.TempDir(), "all.zip")
	if err := os.WriteFile(zipPath, zipRecords(t, fx), 0o644); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, f := range fx {
		files = append(files, f.path)
	}
	tests := []struct {
		name    string
		sources []string
		read    int // records read (the dir and file lists hold one id twice)
	}{
		{"directory", []string{"testdata/osv"}, len(fx)},
		{"zip", []string{zipPath}, len(uniqueIDs(fx))},
		{"files", files, len(fx)},
		{"dirs", []string{"testdata/osv/Go", "testdata/osv/PyPI", "testdata/osv/crates.io", "testdata/osv/npm", "testdata/osv/Maven", "testdata/osv/AlmaLinux"}, len(fx)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "osv.db")
			res, err := Import(t.Context(), path, tc.sources, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != tc.read || res.Written != len(uniqueIDs(fx)) || res.Skipped != 0 {
				t.Errorf("result %+v, want %d read, %d written", res, tc.read, len(uniqueIDs(fx)))
			}
			checkFixtureDB(t, path, fx)
		})
	}
}

// checkFixtureDB checks a database built from all the fixtures.
func checkFixtureDB(t *testing.T, path string, fx []*fixture) {
	t.Helper()
	db := openT(t, path)
	lookups := []struct {
		eco, name string
		want      []string
	}{
		{"PyPI", "django", []string{"PYSEC-2007-1", "PYSEC-2008-1", "PYSEC-2008-2"}},
		{"PyPI", "Django", []string{"PYSEC-2007-1", "PYSEC-2008-1", "PYSEC-2008-2"}}, // PEP 503
		{"PyPI", "jw.util", []string{"PYSEC-2020-341"}},
		{"PyPI", "JW_Util", []string{"PYSEC-2020-341"}},
		{"PyPI", "jw--util", []string{"PYSEC-2020-341"}},
		{"PyPI", "jwutil", nil},
		{"crates.io", "ring", []string{"RUSTSEC-2025-0009", "RUSTSEC-2025-0010"}}, // 2025-0007 is withdrawn
		{"crates.io", "dirs", nil},                                                // only a withdrawn record
		{"crates.io", "Ring", nil},                                                // exact outside PyPI
		{"Go", "golang.org/x/net", []string{"GO-2020-0014", "GO-2021-0078", "GO-2021-0238"}},
		{"Go", "stdlib", []string{"GO-2026-6091", "GO-2026-6218"}},
		{"Go", "Golang.org/x/net", nil},
		{"npm", "json-bigint", []string{"GHSA-wgfq-7857-4jcc"}},
		{"Maven", "org.apache.hadoop:hadoop-main", []string{"GHSA-mq8p-h798-xcrp"}},
		{"AlmaLinux:8", "java-1.8.0-openjdk", []string{"ALSA-2024:0265"}},
		{"AlmaLinux:8", "frr", []string{"ALEA-2021:1907"}},
		{"AlmaLinux:9", "grafana", []string{"ALSA-2024:1501"}},
		{"AlmaLinux:10", "tar", []string{"ALSA-2026:0002"}},
		{"AlmaLinux", "grafana", nil}, // exact ecosystem strings: the matcher does release fallbacks
		{"AlmaLinux:8", "grafana", nil},
	}
	for _, l := range lookups {
		if got := lookupIDs(t, db, l.eco, l.name); !reflect.DeepEqual(got, l.want) {
			t.Errorf("Lookup(%q, %q) = %v, want %v", l.eco, l.name, got, l.want)
		}
	}
	st, err := db.Status()
	if err != nil {
		t.Fatal(err)
	}
	u := uniqueIDs(fx)
	withdrawn := 0
	for _, f := range u {
		if f.Withdrawn != "" {
			withdrawn++
		}
	}
	if st.Records != len(u) || st.Withdrawn != withdrawn || withdrawn != 2 {
		t.Errorf("status records %d withdrawn %d, want %d and %d", st.Records, st.Withdrawn, len(u), withdrawn)
	}
	got := map[string]int{}
	for _, e := range st.Ecosystems {
		got[e.Name] = e.Records
	}
	if want := expectedEcosystems(fx); !reflect.DeepEqual(got, want) {
		t.Errorf("ecosystem counts %v, want %v", got, want)
	}
	ecos, err := db.Ecosystems()
	if err != nil {
		t.Fatal(err)
	}
	if !sort.StringsAreSorted(ecos) || len(ecos) != len(got) {
		t.Errorf("Ecosystems() = %v", ecos)
	}
	// A partial import into an empty database dates nothing: its age is
	// unknown, never the time of the import.
	if !st.Updated.IsZero() || st.Data.Known() || st.Built.IsZero() || st.Written.IsZero() || !strings.HasPrefix(st.Writer, "import ") || st.SchemaVersion != SchemaVersion {
		t.Errorf("status metadata %+v", st)
	}
	// The records come back whole.
	v, err := db.Get("ALSA-2024:0265")
	if err != nil || v == nil {
		t.Fatalf("Get: %v %v", v, err)
	}
	if len(v.GetAffected()) < 4 || v.GetModified().AsTime().Format(time.RFC3339) != "2024-03-05T10:02:30Z" || len(v.GetReferences()) == 0 {
		t.Errorf("record lost fields: %d affected, modified %v", len(v.GetAffected()), v.GetModified())
	}
}

func TestImportMergeAndReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "osv.db")
	if _, err := Import(t.Context(), path, []string{"testdata/osv/Go"}, Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(t.Context(), path, []string{"testdata/osv/PyPI"}, Options{}); err != nil {
		t.Fatal(err)
	}
	db := openT(t, path)
	if len(lookupIDs(t, db, "Go", "stdlib")) != 2 || len(lookupIDs(t, db, "PyPI", "django")) != 3 {
		t.Error("second import did not add to the first")
	}
	db.Close()
	if _, err := Import(t.Context(), path, []string{"testdata/osv/PyPI"}, Options{Replace: true}); err != nil {
		t.Fatal(err)
	}
	db = openT(t, path)
	if len(lookupIDs(t, db, "Go", "stdlib")) != 0 || len(lookupIDs(t, db, "PyPI", "django")) != 3 {
		t.Error("--replace kept old records")
	}
}

func TestImportSkipsNonOSV(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"package.json": `{"name": "x", "version": "1.0.0"}`,
		"broken.json":  `{"id": "GO-2020-0014", "affected": [`,
		"bad-id.json":  `{"id": "../../etc/passwd"}`,
		"README.md":    "not json",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644)
	}
	path := filepath.Join(t.TempDir(), "osv.db")
	_, err := Import(t.Context(), path, []string{dir}, Options{})
	if err == nil || !strings.Contains(err.Error(), "no OSV records") {
		t.Fatalf("import of no records: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed import created a database")
	}
	res, err := Import(t.Context(), path, []string{dir, "testdata/osv/Go"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 3 || res.Records != 5 || len(res.Problems) != 3 {
		t.Errorf("result %+v", res)
	}
	if _, err := Import(t.Context(), path, []string{"testdata/no-such-dir"}, Options{}); err == nil {
		t.Error("missing source accepted")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	importFixtures(t, good)
	data := fileBytes(t, good)
	gst, err := openT(t, good).Status()
	if err != nil {
		t.Fatal(err)
	}
	hwm := int(gst.Size) // the pages in use; bbolt may grow the file past them

	_, err = Open(filepath.Join(dir, "missing.db"))
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "bulkhead db update") {
		t.Errorf("missing: %v", err)
	}
	rng := rand.New(rand.NewSource(1))
	garbage := make([]byte, 64<<10)
	rng.Read(garbage)
	cases := map[string][]byte{
		"empty":          {},
		"truncated-meta": data[:1000],
		"truncated-half": data[:len(data)/2],
		"truncated-tail": data[:hwm-4096],
		"garbage":        garbage,
		"text":           []byte(strings.Repeat("not a database\n", 1000)),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name+".db")
			os.WriteFile(p, content, 0o644)
			db, err := Open(p)
			if err == nil {
				db.Close()
				t.Fatal("opened a damaged file")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "bulkhead db update") {
				t.Errorf("error %v lacks ErrCorrupt or the hint", err)
			}
		})
	}
	if _, err := Open(dir); err == nil {
		t.Error("opened a directory")
	}
}

// TestOpenDamagedPages overwrites data pages (meta pages intact): Open may
// succeed, but no call may panic or fault.
func TestOpenDamagedPages(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	importFixtures(t, good)
	data := fileBytes(t, good)
	fx := fixtures(t)
	for seed := int64(0); seed < 60; seed++ {
		rng := rand.New(rand.NewSource(seed))
		bad := append([]byte(nil), data...)
		for i := 0; i < 8; i++ {
			off := 8192 + rng.Intn(len(bad)-8192-64)
			rng.Read(bad[off : off+64])
		}
		p := filepath.Join(dir, "bad.db")
		os.WriteFile(p, bad, 0o644)
		db, err := Open(p)
		if err != nil {
			continue
		}
		db.Status()
		db.Ecosystems()
		for _, f := range fx {
			for _, a := range f.Affected {
				db.Lookup(a.Package.Ecosystem, a.Package.Name)
			}
			db.Get(f.ID)
		}
		db.Close()
	}
}

func TestConcurrentLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "osv.db")
	importFixtures(t, path)
	db := openT(t, path)
	fx := fixtures(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				for _, f := range fx {
					for _, a := range f.Affected {
						if _, err := db.Lookup(a.Package.Ecosystem, a.Package.Name); err != nil {
							t.Error(err)
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestCheckAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "osv.db")
	importFixtures(t, path)
	st, err := openT(t, path).Status()
	if err != nil {
		t.Fatal(err)
	}
	// Partial imports only: the age is unknown, which is stale.
	var se *StaleError
	if err := st.CheckAge(DefaultMaxAge); !errors.As(err, &se) || !se.Unknown || !strings.Contains(err.Error(), "is unknown") || !strings.Contains(err.Error(), "--full-ecosystem") {
		t.Errorf("undated import: %v", err)
	}
	if err := st.CheckAge(0); err != nil {
		t.Errorf("max age 0 should disable the check: %v", err)
	}
	fresh := DataAge{Oldest: Freshness{Ecosystem: "Go", AsOf: time.Now().Add(-time.Hour), Kind: KindUpdate, Source: "x"}}
	if err := fresh.CheckAge(DefaultMaxAge); err != nil {
		t.Errorf("an hour-old update is stale: %v", err)
	}
	old := DataAge{Oldest: Freshness{Ecosystem: "Go", AsOf: time.Now().Add(-10 * 24 * time.Hour), Kind: KindUpdate, Source: "x"}}
	err = old.CheckAge(DefaultMaxAge)
	if !errors.As(err, &se) || se.Age < 10*24*time.Hour-time.Minute || se.Ecosystem != "Go" || !strings.Contains(err.Error(), "10 days old") || !strings.Contains(err.Error(), "db update") {
		t.Errorf("stale check: %v", err)
	}
}

func TestEnsureBundled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache", "db", "osv.db")
	m, err := Bundled()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	built, err := EnsureBundled(path)
	if err != nil || !built {
		t.Fatalf("EnsureBundled: %v %v", built, err)
	}
	t.Logf("built the bundled database (%d records) in %v", m.Records, time.Since(start))
	db := openT(t, path)
	st, err := db.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != m.Records || !st.Updated.Equal(m.Date) || !strings.Contains(st.Source, "bundled snapshot") {
		t.Errorf("status %+v vs manifest %+v", st, m)
	}
	// Every corpus folder is in: spot-check one package of each.
	for _, l := range [][2]string{{"Go", "golang.org/x/net"}, {"PyPI", "django"}, {"crates.io", "ring"}, {"npm", "json-bigint"},
		{"Maven", "org.apache.hadoop:hadoop-main"}, {"AlmaLinux:8", "java-1.8.0-openjdk"}, {"AlmaLinux:9", "grafana"}, {"AlmaLinux:10", "tar"}} {
		if len(lookupIDs(t, db, l[0], l[1])) == 0 {
			t.Errorf("bundled database has nothing for %s %s", l[0], l[1])
		}
	}
	total := 0
	for _, n := range m.Ecosystems {
		total += n
	}
	if total != m.Records || len(m.Sources) < len(m.Ecosystems) {
		t.Errorf("manifest counts %v sum to %d, records %d; %d sources", m.Ecosystems, total, m.Records, len(m.Sources))
	}
	if built, err := EnsureBundled(path); built || err != nil {
		t.Errorf("second EnsureBundled: %v %v", built, err)
	}
}

func TestNormalizeName(t *testing.T) {
	for _, c := range []struct{ eco, in, want string }{
		{"PyPI", "Django", "django"},
		{"PyPI", "zope.interface", "zope-interface"},
		{"PyPI", "Foo__Bar-.baz", "foo-bar-baz"},
		{"PyPI", "_leading", "leading"},
		{"Go", "github.com/Foo/Bar", "github.com/Foo/Bar"},
		{"npm", "@scope/Pkg", "@scope/Pkg"},
		{"Debian:12", "libssl3", "libssl3"},
	} {
		if got := NormalizeName(c.eco, c.in); got != c.want {
			t.Errorf("NormalizeName(%q, %q) = %q, want %q", c.eco, c.in, got, c.want)
		}
	}
}
