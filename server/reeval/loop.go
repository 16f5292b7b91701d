package reeval

import (
	"context"
	"errors"
	"time"

	"github.com/bulkhead-sec/bulkhead/pipeline"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// Loop re-evaluates whenever the vulnerability database changes: at once,
// then every interval it opens a matcher with open (a database written in
// place of the old one is only seen by a new handle), and runs when the
// database's version (DBVersion) differs from the last run's. done (may be
// nil) is told of each run. It returns when ctx ends; an error opening the
// matcher or of a run is given to done and retried at the next tick.
func Loop(ctx context.Context, interval time.Duration, st store.Store, open func() (*pipeline.Matcher, error), n Notifier, o Options, done func(Summary, error)) error {
	if done == nil {
		done = func(Summary, error) {}
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	last := ""
	for {
		if ver, sum, err := once(ctx, last, st, open, n, o); ver != "" || err != nil {
			if ver != "" {
				last = ver // recorded, even with failed images or notification
			}
			done(sum, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// once runs when the database's version is not last; ver is "" when it
// did not run.
func once(ctx context.Context, last string, st store.Store, open func() (*pipeline.Matcher, error), n Notifier, o Options) (ver string, sum Summary, err error) {
	m, err := open()
	if err != nil {
		return "", sum, err
	}
	defer m.Close()
	v, err := DBVersion(m)
	if err != nil || v == last {
		return "", sum, err
	}
	sum, err = RunWith(ctx, st, m, n, o)
	var ne *NotifyError
	var ie *ImageError
	if err != nil && !errors.As(err, &ne) && !errors.As(err, &ie) {
		return "", sum, err // run again at the next tick
	}
	return v, sum, err
}
