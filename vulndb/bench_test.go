package vulndb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
)

// corpusSources lists every ecosystem folder of the shared corpus, or the
// committed fixtures when the corpus is absent.
func corpusSources(b *testing.B) []string {
	dir := testcorpus.Dir("osv")
	if dir == "" {
		return []string{"testdata/osv"}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "_") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// BenchmarkImport imports the whole corpus (Go, PyPI, crates.io, npm, Maven,
// NuGet, AlmaLinux) from its JSON files into a fresh database.
func BenchmarkImport(b *testing.B) {
	sources := corpusSources(b)
	path := filepath.Join(b.TempDir(), "osv.db")
	var records int
	var size int64
	start := time.Now()
	for b.Loop() {
		res, err := Import(b.Context(), path, sources, Options{Replace: true})
		if err != nil {
			b.Fatal(err)
		}
		records = res.Records
	}
	elapsed := time.Since(start)
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	b.ReportMetric(float64(records), "records")
	b.ReportMetric(float64(records)*float64(b.N)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(size)/1e6, "db-MB")
}

// BenchmarkEnsureBundled builds the database from the embedded snapshot:
// the cost of a first offline scan.
func BenchmarkEnsureBundled(b *testing.B) {
	dir := b.TempDir()
	i := 0
	for b.Loop() {
		i++
		if _, err := EnsureBundled(filepath.Join(dir, "db", strings.Repeat("x", i%5+1)+".db")); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(filepath.Join(dir, "db"))
	}
}

// BenchmarkLookup10k looks up 10,000 (ecosystem, name) pairs on a warm
// database holding the whole bundled corpus: half are packages with
// advisories, half are not (most of an image's packages have none).
func BenchmarkLookup10k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "osv.db")
	if _, err := EnsureBundled(path); err != nil {
		b.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var pairs [][2]string
	db.index.ForEach(func(k, _ []byte) error {
		eco, name := splitIndexKey(k)
		pairs = append(pairs, [2]string{eco, name})
		return nil
	})
	var queries [][2]string
	for i := 0; len(queries) < 10000; i++ {
		p := pairs[(i*7919)%len(pairs)]
		if i%2 == 1 {
			p[1] += "-not-vulnerable"
		}
		queries = append(queries, p)
	}
	found := 0
	for _, q := range queries { // warm the cache, as a scan's second image would
		vs, err := db.Lookup(q[0], q[1])
		if err != nil {
			b.Fatal(err)
		}
		found += len(vs)
	}
	if found == 0 {
		b.Fatal("no hits")
	}
	for b.Loop() {
		for _, q := range queries {
			if _, err := db.Lookup(q[0], q[1]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
}

// BenchmarkLookup10kCold is the same on a freshly opened handle: every
// record is decoded once.
func BenchmarkLookup10kCold(b *testing.B) {
	path := filepath.Join(b.TempDir(), "osv.db")
	if _, err := EnsureBundled(path); err != nil {
		b.Fatal(err)
	}
	var queries [][2]string
	db, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	db.index.ForEach(func(k, _ []byte) error {
		eco, name := splitIndexKey(k)
		if len(queries) < 10000 {
			queries = append(queries, [2]string{eco, name})
		}
		return nil
	})
	db.Close()
	for b.Loop() {
		db, err := Open(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range queries {
			if _, err := db.Lookup(q[0], q[1]); err != nil {
				b.Fatal(err)
			}
		}
		db.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/10k")
}
