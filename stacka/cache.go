package stacka

import (
	"context"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
)

// readCache keeps recently read tenants, agents and tool descriptors so the
// executor's hot path does not open a store read per step.
//
// Config.CacheTTL bounds how stale a cached tenant, agent or tool may be
// when no change feed is wired; with one (Deps.Changes), every write
// invalidates at once, and the TTL only bounds a lost notification.
type readCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]cacheEntry
	// gen counts invalidations: a value loaded across one is not kept
	// (it may predate the write the invalidation announced).
	gen uint64
}

type cacheEntry struct {
	val any
	err error
	at  time.Time
}

func newReadCache(ttl time.Duration) *readCache {
	return &readCache{ttl: ttl, entries: map[string]cacheEntry{}}
}

func (c *readCache) get(key string, load func() (any, error)) (any, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.val, e.err
	}
	c.mu.Lock()
	gen := c.gen
	c.mu.Unlock()
	v, err := load()
	if err != nil && !core.IsCode(err, core.CodeNotFound) {
		return v, err // do not cache transient failures
	}
	c.mu.Lock()
	if c.gen != gen {
		c.mu.Unlock()
		return v, err
	}
	if len(c.entries) > 10000 {
		c.entries = map[string]cacheEntry{}
	}
	c.entries[key] = cacheEntry{val: v, err: err, at: now}
	c.mu.Unlock()
	return v, err
}

func (c *readCache) forget(key string) {
	c.mu.Lock()
	delete(c.entries, key)
	c.gen++
	c.mu.Unlock()
}

// invalidate drops what a change made stale.
func (c *readCache) invalidate(ch core.Change) {
	switch ch.Kind {
	case core.ChangeAll:
		c.mu.Lock()
		c.entries = map[string]cacheEntry{}
		c.gen++
		c.mu.Unlock()
	case core.ChangeTenant:
		c.forget("t/" + ch.TenantID)
	case core.ChangeAgent:
		c.forget("a/" + ch.TenantID + "/" + ch.ID)
	case core.ChangeTool:
		c.forget("x/" + ch.TenantID + "/" + ch.ID)
	}
}

func (s *Service) cachedTenant(ctx context.Context, tenantID string) (core.Tenant, error) {
	v, err := s.cache.get("t/"+tenantID, func() (any, error) { return s.tenants.GetTenant(ctx, tenantID) })
	t, _ := v.(core.Tenant)
	return t, err
}

func (s *Service) cachedTool(ctx context.Context, tenantID, toolID string) (core.ToolDescriptor, error) {
	v, err := s.cache.get("x/"+tenantID+"/"+toolID, func() (any, error) { return s.tools.GetTool(ctx, tenantID, toolID) })
	t, _ := v.(core.ToolDescriptor)
	return t, err
}

func (s *Service) cachedAgent(ctx context.Context, tenantID, agentID string) (core.Agent, error) {
	v, err := s.cache.get("a/"+tenantID+"/"+agentID, func() (any, error) { return s.agents.GetAgent(ctx, tenantID, agentID) })
	a, _ := v.(core.Agent)
	return a, err
}
