package reeval

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
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

func (s *testStore) Reevaluated(ctx context.Context, id int64, db *report.DBInfo, fs []finding.Finding, cs []store.Change) error {
	if s.failWrites != nil {
		return s.failWrites
	}
	s.writes.Add(1)
	return s.Store.Reevaluated(ctx, id, db, fs, cs)
}
