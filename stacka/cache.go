package stacka

import (
	"context"
	"time"

	"github.com/agentos/agentos/core"
)

// readCache keeps recently read tenants, agents and tool descriptors so the
// executor's hot path does not open a store read per step. A not_found
// answer is kept too (an unknown id asked again and again costs no reads);
// any other failure is not.
//
// Config.CacheTTL bounds how stale a cached tenant, agent or tool may be
// when no change feed is wired; with one (Deps.Changes), every write
// invalidates at once, and the TTL only bounds a lost notification.
type readCache struct {
	c *core.Cache[string, readResult]
}

// readResult is what a load answered: a value, or not_found.
type readResult struct {
	val any
	err error
}

// readCacheMax bounds the entries; past it the cache starts over.
const readCacheMax = 10000

func newReadCache(ttl time.Duration) *readCache {
	return &readCache{c: core.NewCache[string, readResult](ttl, readCacheMax, nil)}
}

func (c *readCache) get(key string, load func() (any, error)) (any, error) {
	if r, ok := c.c.Get(key); ok {
		return r.val, r.err
	}
	gen := c.c.Generation()
	v, err := load()
	if err != nil && !core.IsCode(err, core.CodeNotFound) {
		return v, err // do not cache transient failures
	}
	c.c.Put(gen, key, readResult{val: v, err: err})
	return v, err
}

func (c *readCache) forget(key string) { c.c.Forget(key) }

// invalidate drops what a change made stale.
func (c *readCache) invalidate(ch core.Change) {
	switch ch.Kind {
	case core.ChangeAll:
		c.c.ForgetAll()
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
