package sqlstore

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/internal/pgtest"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

const (
	childEnv  = "BULKHEAD_STORE_CHILD_DSN"
	childPkgs = 300
	// childWriters store at the same time, so that on SQLite the kill
	// lands in group commits of several writes.
	childWriters = 8
)

// durabilityChild stores scans from childWriters goroutines until it is
// killed and prints "ack SEED ID" for each PutScan that returned.
func durabilityChild() int {
	ctx := context.Background()
	s, err := Open(ctx, os.Getenv(childEnv), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var mu sync.Mutex
	fail := make(chan struct{}, childWriters)
	for w := range childWriters {
		go func() {
			for i := w; i < 100000; i += childWriters {
				sc := genScan(i, childPkgs)
				id, err := s.PutScan(ctx, sc, &store.Sighting{Kind: "ci", CIRun: fmt.Sprintf("run-%d", i)})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					fail <- struct{}{}
					return
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d\n", i, id) // os.Stdout is unbuffered
				mu.Unlock()
			}
		}()
	}
	<-fail
	return 2
}

// TestDurability: a process storing scans (several at once) is killed with SIGKILL in the
// middle of the stream (on PostgreSQL the server is killed too, and
// replays its WAL). Every scan whose PutScan returned is there, whole,
// and the database passes its integrity check.
func TestDurability(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			dsn := b.dsn(t)
			// Create the schema first, so the child starts writing at once.
			s0, err := Open(context.Background(), dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			s0.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+dsn)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			acked := map[int]int64{}
			sc := bufio.NewScanner(out)
			killAt := 15 + rand.IntN(10)
			killed := false
			for sc.Scan() {
				var seed int
				var id int64
				if _, err := fmt.Sscanf(sc.Text(), "ack %d %d", &seed, &id); err != nil {
					t.Fatalf("child wrote %q", sc.Text())
				}
				acked[seed] = id
				if len(acked) == killAt && !killed {
					// Land the kill inside the next write.
					time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
				}
			}
			err = cmd.Wait()
			if !killed {
				t.Fatalf("child ended before the kill: %v", err)
			}
			if b.name == Postgres {
				t0 := time.Now()
				pgtest.Crash(t)
				t.Logf("crash+restart %v", time.Since(t0))
			}
			ctx := context.Background()
			s := openT(t, dsn, Options{})
			if err := s.Verify(ctx); err != nil {
				t.Fatalf("after the kill: %v", err)
			}
			for seed, id := range acked {
				got, err := s.Scan(ctx, id)
				if err != nil {
					t.Fatalf("acknowledged scan %d (seed %d) lost: %v", id, seed, err)
				}
				want := genScan(seed, childPkgs)
				if got.Digest != want.Digest || !reflect.DeepEqual(got.Inventory, want.Inventory) || !reflect.DeepEqual(got.Findings, want.Findings) {
					t.Fatalf("acknowledged scan %d (seed %d) differs from what was sent", id, seed)
				}
			}
			var n int
			s.db.QueryRow("SELECT COUNT(*) FROM scans").Scan(&n)
			if n < len(acked) || n > len(acked)+childWriters {
				t.Fatalf("%d scans stored, %d acknowledged (at most one more per writer may have committed unacknowledged)", n, len(acked))
			}
			t.Logf("%d acknowledged, %d stored, all whole", len(acked), n)
		})
	}
}
