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
// Closed loop (the default): each client sends its next upload as soon as
// the last one is answered, so the offered load follows the server's
// speed. Open loop (-rate N): N uploads per second in total are scheduled
// at fixed times (start + i/N) and taken by whichever client is free; an
// upload's latency is measured from its SCHEDULED time, not from when a
// client got round to sending it, so a server that falls behind shows it
// in the latency instead of in a lower request rate (no coordinated
// omission). Uploads scheduled before the end but not sent by then are
// counted as errors ("behind schedule").
//
//	serverload -url http://127.0.0.1:8080 -token T [-clients 50 -duration 2m -packages 300 -corpus DIR] [-rate 40]
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
	rate := flag.Float64("rate", 0, "open loop: uploads per second in total, spread over the clients, latency from the scheduled time (0: closed loop, back to back)")
	flag.Parse()
	if *rate < 0 || *clients < 1 {
		fmt.Fprintln(os.Stderr, "serverload: -rate must be >= 0 and -clients >= 1")
		os.Exit(2)
	}
	if err := run(*url, *token, *clients, *duration, *packages, *fleet, *corpus, *timeout, *rate); err != nil {
		fmt.Fprintln(os.Stderr, "serverload:", err)
		os.Exit(1)
	}
}

// placeholder is the digest in the encoded documents, replaced per upload
// by one of the same length.
var placeholder = []byte("sha256:" + strings.Repeat("f", 64))

func run(url, token string, clients int, duration time.Duration, packages, fleetSize int, corpus string, timeout time.Duration, rate float64) error {
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
	mode := "closed loop (back to back)"
	if rate > 0 {
		mode = fmt.Sprintf("open loop at %.1f uploads/s in total (latency from the scheduled time)", rate)
	}
	fmt.Printf("serverload: %d clients for %s, %s, inventories of %d packages (%d distinct, %.0f KB each), against %s\n",
		clients, duration, mode, packages, fleetSize, float64(len(docs[0]))/1024, url)

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
	// next is the open loop's next slot: slot i is due at start + i/rate.
	var next atomic.Int64
	due := func(i int64) time.Time { return start.Add(time.Duration(float64(i) / rate * float64(time.Second))) }
	behind := atomic.Int64{}
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			myErrs := map[string]int{}
			for time.Now().Before(end) {
				var t0 time.Time // when the upload is due: latency counts from it
				if rate > 0 {
					t0 = due(next.Add(1) - 1)
					if !t0.Before(end) {
						break
					}
					if now := time.Now(); now.After(end) {
						behind.Add(1) // due before the end, but no client was free
						continue
					} else if t0.After(now) {
						time.Sleep(t0.Sub(now))
					}
				}
				n := seq.Add(1)
				body := bytes.Replace(docs[int(n)%len(docs)], placeholder, fmt.Appendf(nil, "sha256:%064x", n), 1)
				req, _ := http.NewRequest(http.MethodPut, url+"/api/v1/inventory", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/vnd.bulkhead.report+json")
				if rate == 0 {
					t0 = time.Now()
				}
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
	if rate > 0 {
		// Slots due before the end that no client took: each is late.
		for i := next.Load(); due(i).Before(end); i++ {
			behind.Add(1)
		}
		if b := behind.Load(); b > 0 {
			errs["behind schedule (due before the end, never sent: every client was busy)"] += int(b)
		}
	}
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
