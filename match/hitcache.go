package match

import "sync"

// HitCache remembers, for one vulnerability database, which records affect
// a package query (ecosystem, name, version), so that packages shared by a
// fleet's inventories (the same base image in a thousand images) are looked
// up and compared once rather than once per inventory. Queries whose
// evaluation warned (a version not understood) are not cached, so every
// inventory still gets its own warning. A cache belongs to one database:
// make a new one when the data changes. Safe for concurrent use.
type HitCache struct {
	mu  sync.RWMutex
	m   map[query][]hit
	max int
}

// DefaultHitCacheEntries bounds a HitCache: about a fleet's distinct
// packages; past it, queries are evaluated as without a cache.
const DefaultHitCacheEntries = 500_000

// NewHitCache returns a cache of at most max queries (DefaultHitCacheEntries
// when max <= 0).
func NewHitCache(max int) *HitCache {
	if max <= 0 {
		max = DefaultHitCacheEntries
	}
	return &HitCache{m: map[query][]hit{}, max: max}
}

func (c *HitCache) get(q query) ([]hit, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	h, ok := c.m[q]
	return h, ok
}

func (c *HitCache) put(q query, h []hit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) < c.max {
		c.m[q] = h
	}
}

// Len is the number of queries cached.
func (c *HitCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// ecosystemToucher is a Source that notes which ecosystems a scan used
// (vulndb.Tracked): told of the ecosystems answered from the cache too, so
// the data age a result reports does not depend on the cache.
type ecosystemToucher interface {
	Touch(ecosystem string)
}
