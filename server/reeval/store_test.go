package reeval

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bulkhead-sec/bulkhead/server/store"
	"github.com/bulkhead-sec/bulkhead/server/store/sqlstore"
)

// testStore is the server's real SQLite store, counting the
// re-evaluations written and, for the failure tests, failing writes or
// handing out a scan without its inventory (as a damaged row would).
type testStore struct {
	*sqlstore.Store
	writes     atomic.Int64
	failWrites error
	refuse     int64        // ReevaluatedBatch refuses a batch holding this scan (ErrInvalid), as the store refuses bad input
	batches    atomic.Int64 // ReevaluatedBatch calls of more than one image
	noInv      map[int64]bool
}

func newStore(t testing.TB) *testStore {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "server.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &testStore{Store: s}
}

func (s *testStore) EachLatest(ctx context.Context, fn func(*store.Scan) error) error {
	return s.Store.EachLatest(ctx, func(sc *store.Scan) error {
		if s.noInv[sc.ID] {
			sc.Inventory = nil
		}
		return fn(sc)
	})
}

func (s *testStore) ReevaluatedBatch(ctx context.Context, rs []store.Reevaluation) error {
	if s.failWrites != nil {
		return s.failWrites
	}
	for _, r := range rs {
		if r.ScanID == s.refuse {
			return fmt.Errorf("re-evaluated scan %d: %w: refused by the test", r.ScanID, store.ErrInvalid)
		}
	}
	if len(rs) > 1 {
		s.batches.Add(1)
	}
	if err := s.Store.ReevaluatedBatch(ctx, rs); err != nil {
		return err
	}
	s.writes.Add(int64(len(rs)))
	return nil
}
