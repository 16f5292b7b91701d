package scanner_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-sec/bulkhead/operator/scanner"
)

// flaky fails its first n scans.
type flaky struct {
	mu    sync.Mutex
	n     int
	calls int
}

func (f *flaky) Scan(context.Context, scanner.Target) (*scanner.Outcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.n {
		return nil, errors.New("scan Job failed")
	}
	return &scanner.Outcome{ScannedAt: time.Now()}, nil
}

type memStore struct {
	mu   sync.Mutex
	puts int
}

func (s *memStore) ScannedAt(context.Context, string) (time.Time, bool, bool, error) {
	return time.Time{}, false, false, nil
}

func (s *memStore) Put(context.Context, scanner.Target, *scanner.Outcome, error) error {
	s.mu.Lock()
	s.puts++
	s.mu.Unlock()
	return nil
}

// A digest that keeps failing is tried again after RetryAfter, then
// twice as long after each further failure in a row; a success ends the
// backoff. The Executor (Job mode's Runner) is what scans.
func TestFailuresBackOff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ex := &flaky{n: 3}
	st := &memStore{}
	s := scanner.NewScheduler(&scanner.Config{Executor: ex}, st, scanner.SchedulerOptions{Workers: 1, TTL: time.Hour, RetryAfter: 40 * time.Millisecond})
	s.Start(ctx)
	target := scanner.Target{Digest: "sha256:0000000000000000000000000000000000000000000000000000000000000001", Repository: "r/app"}
	// run asks for the digest until its scan number n has been stored.
	run := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			st.mu.Lock()
			puts := st.puts
			st.mu.Unlock()
			if puts >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("scan %d not stored after 10s", n)
			}
			if _, _, err := s.Want(ctx, target); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i, want := range []time.Duration{40 * time.Millisecond, 80 * time.Millisecond, 160 * time.Millisecond} {
		run(i + 1)
		if got := s.Backoff(target.Digest); got != want {
			t.Fatalf("after failure %d: backoff %v, want %v", i+1, got, want)
		}
		if state, _, _ := s.Want(ctx, target); state != scanner.Fresh {
			t.Fatalf("after failure %d: asked again at once, the digest is %v, not waiting", i+1, state)
		}
	}
	run(4)
	if got := s.Backoff(target.Digest); got != 0 {
		t.Fatalf("after a success: backoff %v", got)
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.calls != 4 {
		t.Fatalf("%d scans, want 4", ex.calls)
	}
}
