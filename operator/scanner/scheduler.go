package scanner

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/log"
	"sync"
	"time"
)

// Store is where the latest outcome of each digest is kept (the operator:
// ImageReports in the cluster). Fresh says when the stored report of a
// digest was made (ok false when there is none); Put stores an outcome or
// a failure (err non-nil).
type Store interface {
	ScannedAt(ctx context.Context, digest string) (at time.Time, failed bool, ok bool, err error)
	Put(ctx context.Context, t Target, o *Outcome, err error) error
}

// SchedulerOptions bound a Scheduler.
type SchedulerOptions struct {
	// Workers is the number of scans run at once (default 2).
	Workers int
	// TTL is how long a report stays fresh (default 24 hours).
	TTL time.Duration
	// RetryAfter is how long after a failed scan it is tried again
	// (default 5 minutes); it doubles with each further failure in a row
	// of the same digest, up to TTL.
	RetryAfter time.Duration
	// QueueLimit bounds the digests waiting (default 10,000); beyond it
	// Want answers Busy and the caller asks again later.
	QueueLimit int
	// Metrics is told of queue changes (may be nil).
	Metrics *Metrics
}

// State is what Want did with a digest.
type State int

const (
	// Fresh: its report is fresh; nothing to do.
	Fresh State = iota
	// Queued: a scan is queued or running (now or already).
	Queued
	// Busy: the queue is full; ask again later.
	Busy
)

// Scheduler dedupes digests cluster-wide and scans them in a bounded
// worker pool: a digest is queued once, however many workloads ask, and
// not at all while its report is fresh.
type Scheduler struct {
	cfg   *Config
	store Store
	o     SchedulerOptions

	mu      sync.Mutex
	pending map[string]bool      // queued or running
	done    map[string]time.Time // scanned (or failed) at, this process
	failed  map[string]bool
	fails   map[string]int    // failures in a row, this process
	targets map[string]Target // every digest asked for, for Refresh
	queue   chan Target
	onDone  []func(digest string)
	wg      sync.WaitGroup
	started bool
}

// NewScheduler makes a Scheduler; Start runs its workers.
func NewScheduler(cfg *Config, store Store, o SchedulerOptions) *Scheduler {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.TTL <= 0 {
		o.TTL = 24 * time.Hour
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = 5 * time.Minute
	}
	if o.QueueLimit <= 0 {
		o.QueueLimit = 10000
	}
	return &Scheduler{cfg: cfg, store: store, o: o, pending: map[string]bool{}, done: map[string]time.Time{}, failed: map[string]bool{}, fails: map[string]int{}, targets: map[string]Target{}, queue: make(chan Target, o.QueueLimit)}
}

// TTL is how long a report stays fresh.
func (s *Scheduler) TTL() time.Duration { return s.o.TTL }

// OnDone registers f, called after each digest's report is stored.
func (s *Scheduler) OnDone(f func(digest string)) { s.onDone = append(s.onDone, f) }

// Expiry is when a report made at at (failed or not) is due again.
func (s *Scheduler) Expiry(at time.Time, failed bool) time.Time {
	if failed {
		return at.Add(min(s.o.RetryAfter, s.o.TTL))
	}
	return at.Add(s.o.TTL)
}

// expiry is Expiry with the backoff of a digest's failures in a row:
// RetryAfter, doubled for each further failure, at most TTL. Call with
// s.mu held.
func (s *Scheduler) expiry(digest string, at time.Time, failed bool) time.Time {
	if !failed {
		return at.Add(s.o.TTL)
	}
	d := s.o.RetryAfter
	for n := s.fails[digest]; n > 1 && d < s.o.TTL; n-- {
		d *= 2
	}
	return at.Add(min(d, s.o.TTL))
}

// Backoff is how long after its last failure a digest is tried again
// (0 when its last scan did not fail).
func (s *Scheduler) Backoff(digest string) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.done[digest]
	if !ok || !s.failed[digest] {
		return 0
	}
	return s.expiry(digest, at, true).Sub(at)
}

// Want asks for t's digest to be scanned unless its report is fresh or a
// scan of it is already queued or running. Until says when the report
// goes stale (for a Fresh digest).
func (s *Scheduler) Want(ctx context.Context, t Target) (State, time.Time, error) {
	s.mu.Lock()
	s.targets[t.Digest] = t
	if s.pending[t.Digest] {
		s.mu.Unlock()
		return Queued, time.Time{}, nil
	}
	if at, ok := s.done[t.Digest]; ok {
		if exp := s.expiry(t.Digest, at, s.failed[t.Digest]); time.Now().Before(exp) {
			s.mu.Unlock()
			return Fresh, exp, nil
		}
	}
	s.mu.Unlock()
	at, failed, ok, err := s.store.ScannedAt(ctx, t.Digest)
	if err != nil {
		return 0, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[t.Digest] {
		return Queued, time.Time{}, nil
	}
	if ok {
		if exp := s.expiry(t.Digest, at, failed); time.Now().Before(exp) {
			// Known from the store (a restart): remember it.
			if prev, seen := s.done[t.Digest]; !seen || at.After(prev) {
				s.done[t.Digest], s.failed[t.Digest] = at, failed
			}
			return Fresh, exp, nil
		}
	}
	select {
	case s.queue <- t:
		s.pending[t.Digest] = true
		s.o.Metrics.queued(1)
		return Queued, time.Time{}, nil
	default:
		return Busy, time.Time{}, nil
	}
}

// Refresh queues a digest again though its report is fresh (bulkhead
// server re-evaluated it: with a server, the refresh pulls nothing). It
// reports whether the digest was queued: false when it was never asked
// for, is already queued, or the queue is full.
func (s *Scheduler) Refresh(digest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.targets[digest]
	if !ok || s.pending[digest] {
		return false
	}
	select {
	case s.queue <- t:
		s.pending[digest] = true
		s.o.Metrics.queued(1)
		return true
	default:
		return false
	}
}

// Start runs the workers until ctx ends; Wait waits for them.
func (s *Scheduler) Start(ctx context.Context) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return
	}
	s.started = true
	s.mu.Unlock()
	for range s.o.Workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case t := <-s.queue:
					s.run(ctx, t)
				}
			}
		}()
	}
}

// Wait waits for the workers to stop.
func (s *Scheduler) Wait() { s.wg.Wait() }

func (s *Scheduler) run(ctx context.Context, t Target) {
	s.o.Metrics.queued(-1)
	s.o.Metrics.running(1)
	out, err := s.cfg.Scan(ctx, t)
	s.o.Metrics.running(-1)
	s.o.Metrics.finished(out, err)
	if ctx.Err() != nil {
		s.mu.Lock()
		delete(s.pending, t.Digest)
		s.mu.Unlock()
		return
	}
	if err != nil {
		log.FromContext(ctx).Error(err, "scan failed", "image", t.Pinned())
	}
	perr := s.store.Put(ctx, t, out, err)
	if perr != nil {
		log.FromContext(ctx).Error(perr, "storing the report failed; the digest will be scanned again", "image", t.Pinned())
	}
	// A report that could not be stored counts as a failure: tried again
	// after RetryAfter, not at once (each try pulls the image).
	s.mu.Lock()
	delete(s.pending, t.Digest)
	at := time.Now()
	if out != nil && err == nil {
		at = out.ScannedAt
	}
	s.done[t.Digest], s.failed[t.Digest] = at, err != nil || perr != nil
	if s.failed[t.Digest] {
		s.fails[t.Digest]++
	} else {
		delete(s.fails, t.Digest)
	}
	s.mu.Unlock()
	for _, f := range s.onDone {
		f(t.Digest)
	}
}

// Reports lists the scan times of the digests this process knows, for
// the oldest-report metric.
func (s *Scheduler) oldest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old time.Time
	for _, at := range s.done {
		if old.IsZero() || at.Before(old) {
			old = at
		}
	}
	return old, !old.IsZero()
}

// Known is the number of digests whose report this process has seen
// (scanned, or found fresh in the store).
func (s *Scheduler) Known() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.done)
}
