package vulndb

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulkhead-sec/bulkhead/internal/testcorpus"
)

// TestCorpusMatchesBundled imports the whole shared corpus from its JSON
// files and checks the result against the database built from the bundled
// snapshot: same records, same index. It catches a snapshot that is stale
// against the corpus or a snapshot encoding that loses records. Skipped
// without ../shared/corpus (the fixture tests above cover the same code).
func TestCorpusMatchesBundled(t *testing.T) {
	corpus := testcorpus.Dir("osv")
	if corpus == "" || testing.Short() {
		t.Skip("no ../shared/corpus/osv")
	}
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), "_") {
			sources = append(sources, filepath.Join(corpus, e.Name()))
		}
	}
	dir := t.TempDir()
	imported := filepath.Join(dir, "imported.db")
	res, err := Import(t.Context(), imported, sources, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 0 {
		t.Errorf("corpus records skipped: %v", res.Problems)
	}
	bundled := filepath.Join(dir, "bundled.db")
	if _, err := EnsureBundled(bundled); err != nil {
		t.Fatal(err)
	}
	a, b := openT(t, imported), openT(t, bundled)
	sa, _ := a.Status()
	sb, _ := b.Status()
	m, _ := Bundled()
	if sa.Records != sb.Records || sa.Records != m.Records || sa.Withdrawn != sb.Withdrawn {
		t.Fatalf("imported %d records (%d withdrawn), bundled %d (%d), manifest %d: rebuild the snapshot with scripts/build-snapshot.sh",
			sa.Records, sa.Withdrawn, sb.Records, sb.Withdrawn, m.Records)
	}
	keys := 0
	a.index.ForEach(func(k, v []byte) error {
		keys++
		if w := b.index.Get(k); !bytes.Equal(v, w) {
			t.Errorf("index %q: imported %q, bundled %q", k, v, w)
		}
		return nil
	})
	if keys != b.index.Stats().KeyN {
		t.Errorf("index keys: imported %d, bundled %d", keys, b.index.Stats().KeyN)
	}
	// Records decode to the same thing from both paths.
	a.records.ForEach(func(k, v []byte) error {
		if !bytes.Equal(v, b.records.Get(k)) {
			t.Errorf("record %s differs between import and snapshot", k)
		}
		return nil
	})
	t.Logf("%d records, %d index keys, %d ecosystems", sa.Records, keys, len(sa.Ecosystems))
}
