// Command snapshot builds bulkhead's bundled vulnerability snapshot
// (vulndb/snapshot/) from a folder of OSV records, one sub-folder per source
// (the project's corpus: ../shared/corpus/osv). Every record is parsed with
// vulndb.ParseRecord (so the snapshot only holds what the database accepts),
// de-duplicated by id (newer `modified` wins), sorted by id and written with
// vulndb.EncodeSnapshot (deterministic protobuf in one zstd stream): the same
// input always gives the same bytes. It fails if a record has a field the
// osv-schema bindings do not model, since the snapshot would drop it.
//
//	go run ./tools/snapshot -corpus ../shared/corpus/osv -out vulndb/snapshot
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ossf/osv-schema/bindings/go/osvschema"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/bulkhead-sec/bulkhead/vulndb"
)

// strict is protojson without DiscardUnknown: it finds fields the bindings
// would drop.
var strict = protojson.UnmarshalOptions{}

const snapshotFile = "osv-snapshot.pb.zst"

func main() {
	corpus := flag.String("corpus", "../shared/corpus/osv", "folder of OSV records, one sub-folder per source")
	sources := flag.String("sources", "", "SOURCES.tsv with the provenance of each folder (default: <corpus>/../SOURCES.tsv)")
	out := flag.String("out", "vulndb/snapshot", "output folder")
	flag.Parse()
	if *sources == "" {
		*sources = filepath.Join(*corpus, "..", "SOURCES.tsv")
	}
	if err := run(*corpus, *sources, *out); err != nil {
		fmt.Fprintln(os.Stderr, "snapshot:", err)
		os.Exit(1)
	}
}

type rec struct {
	id   string
	dir  string
	mod  time.Time
	line []byte // compact JSON, to order duplicates deterministically
	v    *osvschema.Vulnerability
}

func run(corpus, sourcesTSV, out string) error {
	entries, err := os.ReadDir(corpus)
	if err != nil {
		return err
	}
	byID := map[string]rec{}
	perDir := map[string]int{}
	var dirs []string
	for _, e := range entries {
		// Folders starting with "_" hold conformance cases (some invalid on
		// purpose) and provenance, not advisories.
		if !e.IsDir() || strings.HasPrefix(e.Name(), "_") {
			continue
		}
		dirs = append(dirs, e.Name())
		root := filepath.Join(corpus, e.Name())
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) != ".json" {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v, err := vulndb.ParseRecord(data)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			if err := strict.Unmarshal(data, &osvschema.Vulnerability{}); err != nil {
				return fmt.Errorf("%s: the bindings would drop part of it: %w", p, err)
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, data); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			r := rec{id: v.GetId(), dir: e.Name(), mod: v.GetModified().AsTime(), line: buf.Bytes(), v: v}
			if old, ok := byID[r.id]; ok {
				if r.mod.Before(old.mod) || (r.mod.Equal(old.mod) && bytes.Compare(r.line, old.line) <= 0) {
					return nil
				}
				perDir[old.dir]--
			}
			byID[r.id] = r
			perDir[r.dir]++
			return nil
		})
		if err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var newest time.Time
	records := make([]*osvschema.Vulnerability, 0, len(ids))
	jsonBytes := 0
	for _, id := range ids {
		r := byID[id]
		records = append(records, r.v)
		jsonBytes += len(r.line)
		if r.mod.After(newest) {
			newest = r.mod
		}
	}
	data, err := vulndb.EncodeSnapshot(records)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	m := vulndb.SnapshotManifest{
		Date: newest.UTC(), Records: len(ids), Ecosystems: perDir,
		File: snapshotFile, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]),
	}
	m.Sources, err = provenance(sourcesTSV, dirs)
	if err != nil {
		return err
	}
	mj, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, snapshotFile), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "manifest.json"), append(mj, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("%d records (%d bytes of JSON) -> %s, %d bytes; newest record modified %s\n",
		len(ids), jsonBytes, filepath.Join(out, snapshotFile), len(data), newest.UTC().Format(time.RFC3339))
	return nil
}

// provenance picks the SOURCES.tsv rows (destination, repository, path,
// commit, licence) that cover each folder.
func provenance(path string, dirs []string) ([]vulndb.SnapshotSource, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	defer f.Close()
	var out []vulndb.SnapshotSource
	found := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 5 || !strings.HasPrefix(cols[0], "osv/") || strings.HasPrefix(cols[0], "osv/_") {
			continue
		}
		dest := strings.TrimPrefix(cols[0], "osv/")
		for _, d := range dirs {
			if strings.HasPrefix(dest, d+"/") || (strings.HasPrefix(dest, "{") && strings.Contains(dest, d)) {
				out = append(out, vulndb.SnapshotSource{Dir: d, Repo: cols[1], Path: cols[2], Commit: cols[3], License: cols[4]})
				found[d] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if !found[d] {
			return nil, fmt.Errorf("provenance: no row for osv/%s/ in %s", d, path)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, nil
}
