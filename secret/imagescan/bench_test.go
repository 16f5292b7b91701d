package imagescan

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/catalog"
	"github.com/bulkhead-sec/bulkhead/image"
	"github.com/bulkhead-sec/bulkhead/scan"
	"github.com/bulkhead-sec/bulkhead/secret"
)

// TestImageThroughput prints secret-scanning throughput on a real image
// archive named by BULKHEAD_BENCH_IMAGE (bench/secrets.sh sets it): the
// walk alone, then the walk with the secret scanner, best of three each.
func TestImageThroughput(t *testing.T) {
	path := os.Getenv("BULKHEAD_BENCH_IMAGE")
	if path == "" {
		t.Skip("set BULKHEAD_BENCH_IMAGE to an image archive (bench/secrets.sh)")
	}
	ctx := context.Background()
	run := func(sc *Scanner) time.Duration {
		best := time.Duration(1 << 62)
		for i := 0; i < 3; i++ {
			img, err := image.Open(ctx, path, image.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			opts := scan.Options{TempDir: t.TempDir(), Catalogers: []catalog.Cataloger{}}
			if sc != nil {
				sc.reset()
				opts.Scanners = []scan.Scanner{sc}
			}
			start := time.Now()
			res, err := scan.Image(ctx, img, opts)
			d := time.Since(start)
			img.Close()
			if err != nil {
				t.Fatal(err)
			}
			if sc != nil && i == 0 {
				t.Logf("secret findings: %d", len(res.Findings))
				for _, f := range res.Findings {
					t.Logf("  %s %s:%d %s", f.ID, f.Location.Path, f.Location.StartLine, f.Description)
				}
			}
			if d < best {
				best = d
			}
		}
		return best
	}
	base := run(nil)
	sc := New(secret.Default())
	with := run(sc)
	files, bytes, busy := sc.Stats()
	mb := float64(bytes) / 1e6
	t.Logf("image %s", path)
	t.Logf("walk only: %v; walk + secret scan: %v (wall, best of 3)", base.Round(time.Millisecond), with.Round(time.Millisecond))
	t.Logf("secret scanner: %d text files, %.1f MB read and matched in %v of visitor time: %.0f MB/s per core",
		files, mb, busy.Round(time.Millisecond), mb/busy.Seconds())
}
