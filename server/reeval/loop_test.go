package reeval

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

const noInvDigest = "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

// npmInventory is an image holding lodash at version v.
func npmInventory(name, v string) *inventory.Inventory {
	return &inventory.Inventory{Target: inventory.Target{Name: name, Source: "registry"},
		Packages: []inventory.Package{{Name: "lodash", Version: v, Type: "npm", PURL: "pkg:npm/lodash@" + v,
			FoundBy: "npm", Locations: []inventory.Location{{Path: "/app/node_modules/lodash/package.json"}}}}}
}

// storeImages stores n images (every other one with a vulnerable lodash)
// plus one whose inventory the store will not hand out, and returns the
// store.
func storeImages(t *testing.T, n int) *testStore {
	st := newStore(t)
	for i := range n {
		v := "4.17.21"
		if i%2 == 0 {
			v = "4.17.15"
		}
		keep := finding.Finding{ID: "DS002", Kind: finding.KindMisconfiguration, Target: "x", Location: &finding.Location{Path: "Dockerfile"}}
		_, err := st.PutScan(t.Context(), &store.Scan{Digest: fmt.Sprintf("sha256:%064d", i), Source: "upload",
			Inventory: npmInventory(fmt.Sprintf("img%d", i), v), Findings: []finding.Finding{keep}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	id, err := st.PutScan(t.Context(), &store.Scan{Digest: noInvDigest, Source: "sbom", Inventory: npmInventory("damaged", "4.17.15")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.noInv = map[int64]bool{id: true}
	return st
}

// Many images through the worker pool: each vulnerable one gets its
// finding, the walk's finding is kept everywhere, and the scan with no
// inventory is counted as failed, named, and left as it was, while the run
// completes.
func TestRunManyImagesAndAFailure(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "osv.db")
	importInto(t, dbPath, "../../match/testdata/osv/npm")
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st := storeImages(t, 40)
	sum, err := RunWith(t.Context(), st, m, nil, Options{Workers: 3})
	var ie *ImageError
	if !errors.As(err, &ie) || ie.Digest != noInvDigest {
		t.Fatalf("want the image error of the scan with no inventory, got %v", err)
	}
	if sum.Images != 40 || sum.Failed != 1 || sum.Changed != 20 || sum.Appeared != 20 || len(sum.Errors) != 1 {
		t.Errorf("summary %+v", sum)
	}
	for id := int64(1); id <= 40; id++ {
		s, err := st.Scan(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		vulns := 0
		for _, f := range s.Findings {
			if f.Kind == finding.KindVulnerability {
				vulns++
			}
		}
		want := 0
		if s.Inventory.Packages[0].Version == "4.17.15" {
			want = 1
		}
		if vulns != want || s.Findings[0].ID != "DS002" || s.DB == nil {
			t.Errorf("scan %d: %d vulnerabilities, findings %v, db %v", id, vulns, s.Findings, s.DB)
		}
	}

	// A store that fails to write stops the run with its error.
	st2 := storeImages(t, 10)
	st2.failWrites = errors.New("disk full")
	if _, err := Run(t.Context(), st2, m, nil); err == nil || !errors.Is(err, st2.failWrites) {
		t.Errorf("store error: %v", err)
	}
	// And a cancelled context stops it too.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Run(ctx, storeImages(t, 10), m, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

// The loop runs at once, then only when the database's version changes.
func TestLoopRunsWhenTheDatabaseChanges(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "osv.db")
	importInto(t, dbPath, "../../match/testdata/osv/Go")
	st := storeImages(t, 4)
	open := func() (*pipeline.Matcher, error) { return pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath}) }
	runs := make(chan Summary, 10)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Loop(ctx, 10*time.Millisecond, st, open, nil, Options{}, func(s Summary, err error) {
			var ie *ImageError
			if err != nil && !errors.As(err, &ie) {
				t.Errorf("run: %v", err)
			}
			runs <- s
		})
	}()
	first := <-runs
	if first.Images != 4 || first.Appeared != 0 {
		t.Errorf("first run %+v", first)
	}
	select {
	case s := <-runs:
		t.Fatalf("ran again with the same database: %+v", s)
	case <-time.After(100 * time.Millisecond):
	}
	importInto(t, dbPath, "../../match/testdata/osv/npm")
	select {
	case s := <-runs:
		if s.Appeared != 2 || s.DBVersion == first.DBVersion {
			t.Errorf("second run %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no run after the database changed")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("loop returned %v", err)
	}
}

// With KeepInfo a database change that changes no image's findings
// writes nothing; without it every image gets the new database's
// information, as a fresh scan reports it.
func TestKeepInfo(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "osv.db")
	importInto(t, dbPath, "../../match/testdata/osv/npm")
	open := func() *pipeline.Matcher {
		m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	st := storeImages(t, 6)
	st.noInv = nil
	if sum, err := Run(t.Context(), st, open(), nil); err != nil || sum.Updated != 7 {
		t.Fatalf("first run: %+v %v", sum, err)
	}
	before, err := st.LatestScan(t.Context(), noInvDigest)
	if err != nil {
		t.Fatal(err)
	}
	importInto(t, dbPath, "../../match/testdata/osv/Go") // more records, none for these images
	m := open()
	sum, err := RunWith(t.Context(), st, m, nil, Options{KeepInfo: true})
	if err != nil || sum.Images != 7 || sum.Updated != 0 || sum.Changed != 0 {
		t.Fatalf("KeepInfo: %+v %v", sum, err)
	}
	kept, err := st.LatestScan(t.Context(), noInvDigest)
	if err != nil {
		t.Fatal(err)
	}
	if kept.DB.Records != before.DB.Records {
		t.Errorf("KeepInfo rewrote the database information: %d -> %d records", before.DB.Records, kept.DB.Records)
	}
	sum, err = Run(t.Context(), st, m, nil)
	if err != nil || sum.Updated != 7 || sum.Changed != 0 {
		t.Fatalf("exact: %+v %v", sum, err)
	}
	after, err := st.LatestScan(t.Context(), noInvDigest)
	if err != nil {
		t.Fatal(err)
	}
	if after.DB.Records <= before.DB.Records {
		t.Errorf("database information not rewritten: %d -> %d records", before.DB.Records, after.DB.Records)
	}
}
