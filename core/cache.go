package core

import (
	"sync"
	"time"
)

// Cache keeps values read from storage on a request path (tenants, agents,
// tool descriptors, credentials) so the path does not read and decode them
// on every request. It is one half of a rule whose other half is the
// ChangeFeed: the owner subscribes and Forgets what a change names, so a
// write is seen at once, and the TTL only bounds how stale a value may get
// should a notice be lost.
//
// A fill that raced an invalidation is discarded: the reader takes
// Generation before it reads the store and hands it to Put, which keeps the
// value only if nothing was forgotten in between (the value may predate
// the write the invalidation announced). A TTL ≤ 0 keeps nothing. Past max
// entries the cache is emptied, so a burst of distinct keys costs reads,
// never memory. Safe for concurrent use.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.RWMutex
	gen     uint64
	entries map[K]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v       V
	expires time.Time
}

// NewCache makes a cache whose entries live ttl by the clock now (nil:
// time.Now) and which holds at most max of them.
func NewCache[K comparable, V any](ttl time.Duration, max int, now func() time.Time) *Cache[K, V] {
	if now == nil {
		now = time.Now
	}
	return &Cache[K, V]{ttl: ttl, max: max, now: now, entries: map[K]cacheEntry[V]{}}
}

// Get returns k's value unless it is absent or has expired.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Generation counts the invalidations so far: take it before reading the
// store and pass it to Put.
func (c *Cache[K, V]) Generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// Put keeps v under k, unless an invalidation came since gen.
func (c *Cache[K, V]) Put(gen uint64, k K, v V) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[k] = cacheEntry[V]{v: v, expires: c.now().Add(c.ttl)}
}

// Load is Get, reading k with load on a miss; what load returns without
// error is Put (an error is returned, never kept).
func (c *Cache[K, V]) Load(k K, load func() (V, error)) (V, error) {
	if v, ok := c.Get(k); ok {
		return v, nil
	}
	gen := c.Generation()
	v, err := load()
	if err == nil {
		c.Put(gen, k, v)
	}
	return v, err
}

// Forget drops k and discards the fills in flight.
func (c *Cache[K, V]) Forget(k K) {
	c.mu.Lock()
	delete(c.entries, k)
	c.gen++
	c.mu.Unlock()
}

// ForgetWhere drops every entry match says yes to and discards the fills
// in flight.
func (c *Cache[K, V]) ForgetWhere(match func(K, V) bool) {
	c.mu.Lock()
	for k, e := range c.entries {
		if match(k, e.v) {
			delete(c.entries, k)
		}
	}
	c.gen++
	c.mu.Unlock()
}

// ForgetAll drops every entry and discards the fills in flight.
func (c *Cache[K, V]) ForgetAll() {
	c.mu.Lock()
	clear(c.entries)
	c.gen++
	c.mu.Unlock()
}
