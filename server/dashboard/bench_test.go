package dashboard

// Page server times on a loaded SQLite store: 1,000 images (latest scans)
// with 300 findings each (300,000 stored findings), 600 packages each,
// 3,000 cluster workloads, 20,000 runtime alerts and 2,000 decisions,
// 5,000 re-evaluation changes. bench/dashboard.sh runs these and prints
// the times; the store is built once per benchmark binary (BENCH_IMAGES
// and BENCH_FINDINGS scale it).

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/base"
	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/inventory"
	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

type loaded struct {
	d      *Dashboard
	token  string
	digest string // an image with findings
	topID  string // the vulnerability that hits the most images
	scanA  int64
	scanB  int64
	build  time.Duration
	images int
	finds  int
	// snapshot is the slowest SnapshotFleet of the 30.
	snapshot time.Duration
}

var (
	loadOnce sync.Once
	load     *loaded
	loadErr  error
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchDigest(i int) string { return fmt.Sprintf("sha256:%064x", 0xbe0000+i) }

// benchScan is image i: 600 Debian packages over 3 layers, 300 findings
// drawn from 3,000 vulnerability IDs (skewed: low IDs are common).
func benchScan(i, nFind int) *store.Scan {
	layers := []inventory.Layer{
		{Index: 0, Digest: benchDigest(1000000 + i), CreatedBy: "ADD rootfs.tar.xz /"},
		{Index: 1, Digest: benchDigest(2000000 + i), CreatedBy: "RUN apt-get install -y libssl3 curl"},
		{Index: 2, Digest: benchDigest(3000000 + i), CreatedBy: "COPY app /app"},
	}
	inv := &inventory.Inventory{Target: inventory.Target{Name: fmt.Sprintf("registry.example/team-%d/app-%d:1.%d", i%20, i%100, i), Digest: benchDigest(i), Layers: layers},
		OS: &inventory.OS{ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)"}}
	nPkg := max(600, nFind)
	for j := range nPkg {
		l := &layers[j%3]
		inv.Packages = append(inv.Packages, inventory.Package{Name: fmt.Sprintf("pkg%04d", j), Version: fmt.Sprintf("1.%d.%d", j%7, i%5), Type: inventory.TypeDeb,
			PURL: fmt.Sprintf("pkg:deb/debian/pkg%04d@1.%d", j, j%7), Locations: []inventory.Location{{Path: "/var/lib/dpkg/status", Layer: l}}})
	}
	fs := make([]finding.Finding, 0, nFind)
	for k := range nFind {
		v := (k*k + i*7) % 3000
		if k < 20 {
			v = k // the 20 most common: in every image
		}
		p := &inv.Packages[k%nPkg]
		f := finding.Finding{ID: fmt.Sprintf("CVE-2026-%05d", v), Kind: finding.KindVulnerability, Aliases: []string{fmt.Sprintf("GHSA-%04d-bench", v)},
			Severity: finding.Severity(v % 5), Title: "benchmark advisory", Target: "debian 12",
			Package: &finding.Package{Name: p.Name, Version: p.Version, Type: p.Type, Layer: p.Locations[0].Layer}}
		if v%3 == 0 {
			f.FixedVersions = []string{p.Version + "+fix"}
		}
		fs = append(fs, f)
	}
	return &store.Scan{Digest: benchDigest(i), Repository: fmt.Sprintf("registry.example/team-%d/app-%d", i%20, i%100), Source: "registry",
		ScannedAt: time.Now().UTC().Add(-time.Duration(i) * time.Minute), Inventory: inv, Findings: fs, Provenance: benchProvenance(i)}
}

// benchProvenance is a base detection with a recommendation ranking 12
// candidates, and a verified signature with an attestation.
func benchProvenance(i int) *store.Provenance {
	rec := &base.Recommendation{Image: fmt.Sprintf("app-%d", i), Current: base.Summary{Ref: "debian:12", OS: "Debian GNU/Linux 12", Libc: "glibc", Size: 120 << 20, Packages: 400,
		Vulns: map[string]int{"CRITICAL": 1, "HIGH": 12, "MEDIUM": 40, "LOW": 80, "UNKNOWN": 5}}}
	for k := range 12 {
		rec.Candidates = append(rec.Candidates, base.Candidate{Summary: base.Summary{Ref: fmt.Sprintf("registry.example/bases/candidate-%d:latest", k), OS: "Wolfi"},
			VulnsDelta: map[string]int{"HIGH": -12 + k, "MEDIUM": -40 + k}, SizeDelta: -int64(100-k) << 20, Gains: []string{"fewer vulnerabilities", "smaller"},
			NeedsChanges: []string{"no shell"}, Score: float64(100 - k)})
	}
	return &store.Provenance{
		Base: &store.BaseImage{Detection: base.Detection{Method: base.MethodLayers, BaseRef: "debian:12", Layers: 1, Of: 3, Reason: "the image's first 1 of 3 layers are exactly debian:12's layers"},
			Recommendation: rec},
		Signature: &store.SignatureStatus{Status: store.SignatureVerified, CheckedBy: store.CheckedByServer, CheckedAt: time.Now().UTC(),
			Rules: []store.SignatureRule{{Policy: "release", Key: "release.pub", Signatures: []store.SignatureRef{{Layout: "legacy", Where: "sha256-x.sig"}},
				Attestations: []store.SignatureRef{{Layout: "legacy", Where: "sha256-x.att", PredicateType: "https://cyclonedx.org/bom"}}}}},
	}
}

func loadStore(b *testing.B) *loaded {
	b.Helper()
	loadOnce.Do(func() { load, loadErr = buildLoaded(b.TempDir()) })
	if loadErr != nil {
		b.Fatal(loadErr)
	}
	return load
}

func buildLoaded(dir string) (*loaded, error) {
	ctx := context.Background()
	nImg, nFind := envInt("BENCH_IMAGES", 1000), envInt("BENCH_FINDINGS", 300)
	start := time.Now()
	st, err := sqlstore.Open(ctx, filepath.Join(dir, "bench.db"), sqlstore.Options{})
	if err != nil {
		return nil, err
	}
	l := &loaded{images: nImg, finds: nImg * nFind}
	// Writers in parallel, as uploads arrive (SQLite serialises them).
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < nImg; i += 4 {
				sc := benchScan(i, nFind)
				var seen *store.Sighting
				if i%3 != 2 {
					seen = &store.Sighting{Kind: "cluster", Cluster: fmt.Sprintf("c%d", i%3), Namespace: fmt.Sprintf("ns%d", i%50), Workload: fmt.Sprintf("Deployment/w%d", i)}
				}
				id, err := st.PutScan(ctx, sc, seen)
				if err != nil {
					errs <- err
					return
				}
				if i == 0 {
					l.scanA = id
				}
				if i == 1 {
					l.scanB = id
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	for i := range 3000 {
		if err := st.AddSighting(ctx, &store.Sighting{Digest: benchDigest(i % nImg), Kind: "cluster", Cluster: "prod", Namespace: fmt.Sprintf("ns%d", i%50), Workload: fmt.Sprintf("Deployment/x%d", i)}); err != nil {
			return nil, err
		}
	}
	now := time.Now().UTC()
	for i := range 22000 {
		e := &store.Event{Kind: "runtime", Digest: benchDigest(i % nImg), Priority: []string{"Critical", "Warning", "Notice"}[i%3],
			Rule: fmt.Sprintf("rule %d", i%40), Container: fmt.Sprintf("c%d", i%500), Namespace: fmt.Sprintf("ns%d", i%50),
			Output: "benchmark alert", Body: []byte("{}"), At: now.Add(-time.Duration(i) * time.Second)}
		if i%11 == 0 {
			e.Kind, e.Priority, e.Rule, e.Container, e.Namespace = "admission", "deny", "no-critical", "", ""
		}
		if _, err := st.PutEvent(ctx, e); err != nil {
			return nil, err
		}
	}
	// Re-evaluations: 50 images, 100 changes each.
	for i := 0; i < min(50, nImg); i++ {
		sc, err := st.LatestScan(ctx, benchDigest(i))
		if err != nil {
			return nil, err
		}
		var ch []store.Change
		for k := 0; k < min(100, len(sc.Findings)); k++ {
			ch = append(ch, store.Change{Kind: []string{"appeared", "disappeared"}[k%2], Finding: sc.Findings[k], At: now.Add(-time.Duration(k) * time.Hour)})
		}
		if err := st.Reevaluated(ctx, sc.ID, nil, sc.Findings, ch); err != nil {
			return nil, err
		}
	}
	// The overview's trend: a snapshot for each of the last 30 days (the
	// server takes them after scans and re-evaluations); the time of one
	// snapshot at this size is what each of those costs.
	for k := 30; k >= 1; k-- {
		t0 := time.Now()
		if err := st.SnapshotFleet(ctx, now.AddDate(0, 0, -k)); err != nil {
			return nil, err
		}
		l.snapshot = max(l.snapshot, time.Since(t0))
	}
	l.token = "bkh_bench-token"
	h := sha256.Sum256([]byte(l.token))
	if _, err := st.PutToken(ctx, &store.Token{Name: "bench", Role: "read", Hash: h[:]}); err != nil {
		return nil, err
	}
	l.d, err = New(st, Options{Auth: storeAuth(st)})
	if err != nil {
		return nil, err
	}
	l.digest = benchDigest(0)
	l.topID = "CVE-2026-00004" // in every image, CRITICAL
	l.build = time.Since(start)
	return l, nil
}

// benchPages are the pages benchmarked (bench/dashboard.sh prints them).
func benchPages(l *loaded) []struct{ name, path string } {
	return []struct{ name, path string }{
		{"overview", Prefix},
		{"images", Prefix + "images"},
		{"images_worst_critical", Prefix + "images?worst=critical"},
		{"images_package", Prefix + "images?package=pkg0100&after=500"},
		{"image", Prefix + "images/" + l.digest},
		{"image_packages", Prefix + "images/" + l.digest + "?tab=packages"},
		{"image_layers", Prefix + "images/" + l.digest + "?tab=layers"},
		{"image_where", Prefix + "images/" + l.digest + "?tab=where"},
		{"vulnerabilities", Prefix + "vulnerabilities"},
		{"vulnerability_top", Prefix + "vulnerabilities/" + l.topID},
		{"alerts", Prefix + "alerts"},
		{"alerts_filtered", Prefix + "alerts?container=c7&namespace=ns7"},
		{"decisions", Prefix + "decisions"},
		{"changes", Prefix + "changes"},
		{"compare", Prefix + "compare?a=" + strconv.FormatInt(l.scanA, 10) + "&b=" + strconv.FormatInt(l.scanB, 10)},
		{"search_cve", Prefix + "search?q=GHSA-0004-bench"},
		{"search_package", Prefix + "search?q=pkg0042"},
		{"search_image", Prefix + "search?q=team-7"},
	}
}

func BenchmarkDashboard(b *testing.B) {
	l := loadStore(b)
	b.Logf("store: %d images, %d findings, built in %s; one fleet snapshot took at most %s", l.images, l.finds, l.build.Round(time.Second), l.snapshot.Round(100*time.Microsecond))
	for _, p := range benchPages(l) {
		b.Run(p.name, func(b *testing.B) {
			var worst time.Duration
			// CPU time of the process per page: less inflated than the
			// wall time when other work shares the machine.
			cpu0, n := cpuTime(), 0
			for b.Loop() {
				n++
				req := httptest.NewRequest("GET", p.path, nil)
				req.AddCookie(&http.Cookie{Name: CookieName, Value: l.token})
				w := httptest.NewRecorder()
				t0 := time.Now()
				l.d.ServeHTTP(w, req)
				worst = max(worst, time.Since(t0))
				if w.Code != 200 {
					b.Fatalf("%s: %d %.300s", p.path, w.Code, w.Body.String())
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(max(n, 1)), "cpu-ms/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
