// Command serverload is the load test of bulkhead server's inventory
// upload (bench/server-load.sh runs it): -clients concurrent clients, each
// uploading inventories (PUT /api/v1/inventory, bulkhead's JSON report, as
// `bulkhead image --server` sends it) back to back for -duration, and
// prints the latency percentiles, the throughput and the errors.
//
// The inventories are realistic: reevaltest.Fleet's (Alpine, Debian and
// AlmaLinux package databases of the corpus and language packages named by
// its OSV records), -packages each, encoded before the run; every upload
// is a different image (its own digest), so each one is matched and
// stored as a new scan.
//
//	serverload -url http://127.0.0.1:8080 -token T [-clients 50 -duration 2m -packages 300 -corpus DIR]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/reeval/reevaltest"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080", "the server")
	token := flag.String("token", os.Getenv("BULKHEAD_TOKEN"), "an API token of role scan (default $BULKHEAD_TOKEN)")
	clients := flag.Int("clients", 50, "concurrent clients")
	duration := flag.Duration("duration", 2*time.Minute, "how long the clients upload")
	packages := flag.Int("packages", 300, "packages per inventory")
	fleet := flag.Int("fleet", 100, "distinct inventories (each upload gets its own digest)")
	corpus := flag.String("corpus", "../shared/corpus", "the shared corpus (its package databases and OSV records)")
	timeout := flag.Duration("timeout", 60*time.Second, "one upload's timeout (past it: an error)")
	flag.Parse()
	if err := run(*url, *token, *clients, *duration, *packages, *fleet, *corpus, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "serverload:", err)
		os.Exit(1)
	}
}

// placeholder is the digest in the encoded documents, replaced per upload
// by one of the same length.
var placeholder = []byte("sha256:" + strings.Repeat("f", 64))

func run(url, token string, clients int, duration time.Duration, packages, fleetSize int, corpus string, timeout time.Duration) error {
	if token == "" {
		return fmt.Errorf("give -token or $BULKHEAD_TOKEN (a token of role scan)")
	}
	fl, err := reevaltest.NewFleet(context.Background(), corpus, packages)
	if err != nil {
		return fmt.Errorf("fleet from %s: %w", corpus, err)
	}
	docs := make([][]byte, fleetSize)
	for i := range docs {
		inv := fl.Inventory(i)
		inv.Target.Digest = string(placeholder)
		var buf bytes.Buffer
		if err := report.ResultJSON(&buf, &report.Result{Inventory: inv}); err != nil {
			return err
		}
		docs[i] = buf.Bytes()
	}
	fmt.Printf("serverload: %d clients for %s, inventories of %d packages (%d distinct, %.0f KB each), against %s\n",
		clients, duration, packages, fleetSize, float64(len(docs[0]))/1024, url)

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = clients
	hc := &http.Client{Transport: tr, Timeout: timeout}
	var (
		seq    atomic.Int64
		mu     sync.Mutex
		lat    []time.Duration
		errs   = map[string]int{}
		wg     sync.WaitGroup
		nbytes atomic.Int64
	)
	start := time.Now()
	end := start.Add(duration)
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			myErrs := map[string]int{}
			for time.Now().Before(end) {
				n := seq.Add(1)
				body := bytes.Replace(docs[int(n)%len(docs)], placeholder, fmt.Appendf(nil, "sha256:%064x", n), 1)
				req, _ := http.NewRequest(http.MethodPut, url+"/api/v1/inventory", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/vnd.bulkhead.report+json")
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					myErrs[errKind(err)]++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				d := time.Since(t0)
				if resp.StatusCode != http.StatusCreated {
					myErrs[fmt.Sprintf("HTTP %d", resp.StatusCode)]++
					continue
				}
				nbytes.Add(int64(len(body)))
				mine = append(mine, d)
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range myErrs {
				errs[k] += v
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	wall := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(float64(len(lat))*p))]
	}
	nerr := 0
	for _, v := range errs {
		nerr += v
	}
	fmt.Printf("uploads: %d ok, %d errors in %s: %.1f uploads/s (%.1f MB/s of inventories, %.0f packages/s)\n",
		len(lat), nerr, wall.Round(time.Millisecond), float64(len(lat))/wall.Seconds(),
		float64(nbytes.Load())/1e6/wall.Seconds(), float64(len(lat)*packages)/wall.Seconds())
	fmt.Printf("latency: p50 %s, p90 %s, p99 %s, max %s\n", pct(0.50).Round(time.Millisecond), pct(0.90).Round(time.Millisecond),
		pct(0.99).Round(time.Millisecond), pct(1).Round(time.Millisecond))
	if nerr > 0 {
		keys := make([]string, 0, len(errs))
		for k := range errs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Printf("errors: %d × %s\n", errs[k], k)
		}
	}
	return nil
}

// errKind shortens a transport error to its kind, for counting.
func errKind(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "Client.Timeout"), strings.Contains(s, "deadline exceeded"):
		return "timeout"
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "connection reset"):
		return "connection reset"
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}
