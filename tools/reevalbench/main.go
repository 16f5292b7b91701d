// Command reevalbench measures the server's re-evaluation
// (bench/server-reeval.sh runs it):
//
//	reevalbench populate -store S -vulndb V -corpus C [-images 1000 -packages 300]
//	    stores a fleet of realistic inventories (reevaltest.Fleet) with
//	    their findings, matched against V (built from the bundled snapshot
//	    when missing), in the SQL store S;
//	reevalbench advisory -vulndb V
//	    imports one new OSV record (a busybox advisory for every Alpine
//	    release the fleet holds), as `bulkhead db import` would;
//	reevalbench run -store S -vulndb V
//	    one re-evaluation of every stored image (time this one);
//	reevalbench rescan -vulndb V IMAGE...
//	    scans each image from scratch (pipeline.Run, as `bulkhead image`)
//	    and prints the time per image, for comparison.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/audit"
	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
	"github.com/bulkhead-sec/bulkhead/secret/imagescan"
	"github.com/bulkhead-sec/bulkhead/server/reeval"
	"github.com/bulkhead-sec/bulkhead/server/reeval/reevaltest"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
	"github.com/bulkhead-sec/bulkhead/vulndb"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: reevalbench populate|advisory|run|rescan [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	storePath := fs.String("store", "", "SQLite file or postgres:// DSN of the server's store")
	dbPath := fs.String("vulndb", "", "vulnerability database file")
	corpus := fs.String("corpus", "../shared/corpus", "the shared corpus")
	images := fs.Int("images", 1000, "images to store")
	packages := fs.Int("packages", 300, "packages per image")
	keepInfo := fs.Bool("keep-info", false, "run: reeval.Options.KeepInfo (write only the images whose findings changed)")
	id := fs.String("id", "BULKBENCH-2026-0001", "advisory: the new record's id")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the command here")
	fs.Parse(os.Args[2:])
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reevalbench:", err)
			os.Exit(1)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	var err error
	switch os.Args[1] {
	case "populate":
		err = populate(ctx, *storePath, *dbPath, *corpus, *images, *packages)
	case "advisory":
		err = advisory(ctx, *dbPath, *id)
	case "run":
		err = run(ctx, *storePath, *dbPath, *keepInfo)
	case "rescan":
		err = rescan(ctx, *dbPath, fs.Args())
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "reevalbench:", err)
		os.Exit(1)
	}
}

func populate(ctx context.Context, storePath, dbPath, corpus string, n, size int) error {
	start := time.Now()
	fl, err := reevaltest.NewFleet(ctx, corpus, size)
	if err != nil {
		return err
	}
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath})
	if err != nil {
		return err
	}
	defer m.Close()
	st, err := sqlstore.Open(ctx, storePath, sqlstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	jobs := make(chan int)
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	var mu sync.Mutex
	pkgs, findings := 0, 0
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range jobs {
				res, err := pipeline.Inventory(ctx, fl.Inventory(i), pipeline.Options{Matcher: m})
				if err == nil {
					_, err = st.PutScan(ctx, &store.Scan{Digest: reevaltest.Digest(i), Repository: "registry.example/fleet",
						ScannedAt: time.Now(), Source: "registry", DB: res.DB, Inventory: res.Inventory, Findings: res.Findings},
						&store.Sighting{Digest: reevaltest.Digest(i), Kind: "registry", Reference: res.Inventory.Target.Name, SeenAt: time.Now()})
				}
				if err != nil {
					errs <- fmt.Errorf("image %d: %w", i, err)
					return
				}
				mu.Lock()
				pkgs += len(res.Inventory.Packages)
				findings += len(res.Findings)
				mu.Unlock()
			}
		})
	}
	var ferr error
feed:
	for i := range n {
		select {
		case jobs <- i:
		case ferr = <-errs:
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	select {
	case err := <-errs:
		return err
	default:
	}
	fmt.Printf("stored %d images, %d packages (%.0f per image), %d findings (%.0f per image) in %.1f s\n",
		n, pkgs, float64(pkgs)/float64(n), findings, float64(findings)/float64(n), time.Since(start).Seconds())
	return nil
}

// advisory imports a new busybox advisory for the Alpine releases the
// fleet holds.
func advisory(ctx context.Context, dbPath, id string) error {
	var affected []map[string]any
	for _, r := range []string{"v3.12", "v3.14", "v3.16", "v3.18", "v3.20"} {
		affected = append(affected, map[string]any{
			"package": map[string]string{"ecosystem": "Alpine:" + r, "name": "busybox"},
			"ranges":  []map[string]any{{"type": "ECOSYSTEM", "events": []map[string]string{{"introduced": "0"}, {"fixed": "9.9.9-r0"}}}},
		})
	}
	rec := map[string]any{"schema_version": "1.6.0", "id": id, "modified": time.Now().UTC().Format(time.RFC3339),
		"published": time.Now().UTC().Format(time.RFC3339), "summary": "benchmark advisory: busybox in every Alpine release",
		"severity": []map[string]string{{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		"affected": affected}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "reevalbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := filepath.Join(dir, "record.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		return err
	}
	start := time.Now()
	res, err := vulndb.Import(ctx, dbPath, []string{f}, vulndb.Options{})
	if err != nil {
		return err
	}
	fmt.Printf("imported %d record (%s) in %.2f s\n", res.Written, id, time.Since(start).Seconds())
	return nil
}

func run(ctx context.Context, storePath, dbPath string, keepInfo bool) error {
	st, err := sqlstore.Open(ctx, storePath, sqlstore.Options{})
	if err != nil {
		return err
	}
	defer st.Close()
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath})
	if err != nil {
		return err
	}
	defer m.Close()
	sum, err := reeval.RunWith(ctx, st, m, nil, reeval.Options{KeepInfo: keepInfo})
	if err != nil {
		return err
	}
	fmt.Printf("re-evaluated %d images in %.2f s: %d updated, %d changed, %d appeared, %d disappeared, %d failed (database %s)\n",
		sum.Images, sum.Duration.Seconds(), sum.Updated, sum.Changed, sum.Appeared, sum.Disappeared, sum.Failed, sum.DBVersion)
	return nil
}

func rescan(ctx context.Context, dbPath string, refs []string) error {
	m, err := pipeline.OpenMatcher(pipeline.MatchOptions{DBPath: dbPath})
	if err != nil {
		return err
	}
	defer m.Close()
	var total time.Duration
	pkgs := 0
	for _, ref := range refs {
		start := time.Now()
		res, err := pipeline.Run(ctx, ref, pipeline.Options{Matcher: m,
			Scanners: []scan.Scanner{imagescan.New(secret.Default()), audit.New()}})
		if err != nil {
			return fmt.Errorf("%s: %w", ref, err)
		}
		d := time.Since(start)
		total += d
		pkgs += len(res.Inventory.Packages)
		fmt.Printf("rescan %s: %d packages, %d findings, %.3f s\n", ref, len(res.Inventory.Packages), len(res.Findings), d.Seconds())
	}
	if len(refs) > 0 {
		per := total / time.Duration(len(refs))
		fmt.Printf("rescan from scratch: %.3f s per image (%.0f packages on average) -> %.0f s for 1,000 such images (extrapolated, image already local: no pull)\n",
			per.Seconds(), float64(pkgs)/float64(len(refs)), per.Seconds()*1000)
	}
	return nil
}
