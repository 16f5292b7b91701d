package sqlstore

import (
	"context"
	"runtime"
	"sync"

	"github.com/bulkhead-sec/bulkhead/server/store"
)

// decodeEach decodes n scans on every core and hands them to fn one at a
// time, in order. At most two per core are decoded ahead of fn, so memory
// stays bounded while fn runs. The first error stops it.
func (s *Store) decodeEach(ctx context.Context, n int, decode func(int) (*store.Scan, error), fn func(*store.Scan) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			sc, err := decode(i)
			if err != nil {
				return err
			}
			if err := fn(sc); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		sc  *store.Scan
		err error
	}
	out := make([]chan result, n)
	for i := range out {
		out[i] = make(chan result, 1)
	}
	ahead := make(chan struct{}, 2*workers)
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				sc, err := decode(i)
				out[i] <- result{sc, err}
			}
		})
	}
	go func() {
		defer close(next)
		for i := range n {
			select {
			case ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Stop the feeder, then wait for the workers, on every return.
	defer func() { cancel(); wg.Wait() }()
	for i := range n {
		var r result
		select {
		case r = <-out[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-ahead
		if r.err != nil {
			return r.err
		}
		if err := fn(r.sc); err != nil {
			return err
		}
	}
	return nil
}
