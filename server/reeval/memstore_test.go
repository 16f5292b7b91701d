package reeval

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/bulkhead-sec/bulkhead/finding"
	"github.com/bulkhead-sec/bulkhead/report"
	"github.com/bulkhead-sec/bulkhead/server/store"
)

// memStore keeps scans as JSON, as a database row would, for the methods
// re-evaluation uses; it stands in until the SQL store is merged.
type memStore struct {
	store.Store // the methods re-evaluation does not use: nil, panic if called

	mu      sync.Mutex
	scans   map[int64][]byte
	latest  map[string]int64
	changes []store.Change
	writes  int
	// failWrites makes Reevaluated fail.
	failWrites error
}

func newMemStore() *memStore {
	return &memStore{scans: map[int64][]byte{}, latest: map[string]int64{}}
}

func (m *memStore) PutScan(_ context.Context, s *store.Scan, _ *store.Sighting) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *s
	c.ID = int64(len(m.scans) + 1)
	b, err := json.Marshal(&c)
	if err != nil {
		return 0, err
	}
	m.scans[c.ID] = b
	m.latest[c.Digest] = c.ID
	return c.ID, nil
}

func (m *memStore) Scan(_ context.Context, id int64) (*store.Scan, error) {
	m.mu.Lock()
	b, ok := m.scans[id]
	m.mu.Unlock()
	if !ok {
		return nil, store.ErrNotFound
	}
	var s store.Scan
	return &s, json.Unmarshal(b, &s)
}

func (m *memStore) EachLatest(ctx context.Context, fn func(*store.Scan) error) error {
	m.mu.Lock()
	var ids []int64
	for _, id := range m.latest {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		s, err := m.Scan(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(s); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Reevaluated(_ context.Context, id int64, db *report.DBInfo, fs []finding.Finding, cs []store.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failWrites != nil {
		return m.failWrites
	}
	var s store.Scan
	if err := json.Unmarshal(m.scans[id], &s); err != nil {
		return err
	}
	s.DB, s.Findings = db, fs
	b, err := json.Marshal(&s)
	if err != nil {
		return err
	}
	m.scans[id] = b
	m.changes = append(m.changes, cs...)
	m.writes++
	return nil
}

func (m *memStore) Changes(_ context.Context, since time.Time, _ int) ([]store.Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Change
	for _, c := range m.changes {
		if c.At.After(since) {
			out = append(out, c)
		}
	}
	return out, nil
}
