package edge

import (
	"context"
	"time"

	"github.com/agentos/agentos/core"
)

// credentialCache keeps what authentication reads from the store — the
// token a key's secret hash names, and the status of the token's tenant —
// so a request does not cost two store reads and two JSON decodes.
//
// Invalidation: every committed write of a token or tenant is published on
// the node's core.ChangeFeed before the write returns (publishingStore),
// and the cache drops the object in the subscriber, so a revoked or
// rotated key or a disabled tenant is refused by the very next request on
// this node. A fill that raced with an invalidation (read the old state
// before the write, stored it after) is discarded: fills carry the
// generation they started at and are kept only when no change came in
// between. On a cluster the feed carries other nodes' writes too (and a
// ChangeAll after missed notices). Entries also expire after ttl, which
// bounds staleness should a notice ever be lost. Only positive answers are kept: an unknown key
// or tenant is read again each time (unknown keys are limited per client
// address by the failure limiter).
type credentialCache struct {
	// now is the clock entries expire by (tests move it).
	now     func() time.Time
	tokens  *core.Cache[string, core.Token]  // secret hash → token
	tenants *core.Cache[string, core.Tenant] // tenant id → tenant
}

// DefaultCredentialCacheTTL bounds how long an entry is reused without a
// change notice when Watch is given none; the change feed makes writes
// visible at once.
const DefaultCredentialCacheTTL = time.Second

// credentialCacheMax bounds each map; past it the map is emptied (a burst
// of distinct keys costs reads, never memory).
const credentialCacheMax = 10000

func newCredentialCache(ttl time.Duration) *credentialCache {
	c := &credentialCache{now: time.Now}
	clock := func() time.Time { return c.now() }
	c.tokens = core.NewCache[string, core.Token](ttl, credentialCacheMax, clock)
	c.tenants = core.NewCache[string, core.Tenant](ttl, credentialCacheMax, clock)
	return c
}

// invalidate drops what c names; it is the change feed subscriber.
func (c *credentialCache) invalidate(ch core.Change) {
	switch ch.Kind {
	case core.ChangeAll:
		c.tokens.ForgetAll()
		c.tenants.ForgetAll()
	case core.ChangeToken:
		// A rotated token may be cached under its old and its new hash.
		c.tokens.ForgetWhere(func(_ string, tok core.Token) bool {
			return tok.TokenID == ch.ID && (tok.TenantID == ch.TenantID || ch.TenantID == "")
		})
	case core.ChangeTenant:
		c.tenants.Forget(ch.TenantID)
	}
}

// tokenByHash is TokenBySecretHash through the cache.
func (a *Authenticator) tokenByHash(ctx context.Context, hash string) (core.Token, error) {
	if a.cache == nil {
		return a.tokens.TokenBySecretHash(ctx, hash)
	}
	return a.cache.tokens.Load(hash, func() (core.Token, error) { return a.tokens.TokenBySecretHash(ctx, hash) })
}

// getTenant is GetTenant through the cache.
func (a *Authenticator) getTenant(ctx context.Context, id string) (core.Tenant, error) {
	if a.cache == nil {
		return a.tenants.GetTenant(ctx, id)
	}
	return a.cache.tenants.Load(id, func() (core.Tenant, error) { return a.tenants.GetTenant(ctx, id) })
}

// Watch turns on the credential cache, fed by feed: from now on keys and
// tenants read for authentication are reused until feed reports them
// changed (ChangeAll drops everything), or for at most ttl (the node's
// --cache-ttl; DefaultCredentialCacheTTL when not positive), which only
// bounds a lost notice. The returned func stops it.
func (a *Authenticator) Watch(feed core.ChangeFeed, ttl time.Duration) (cancel func()) {
	if ttl <= 0 {
		ttl = DefaultCredentialCacheTTL
	}
	c := newCredentialCache(ttl)
	unsub := feed.Subscribe(c.invalidate)
	a.cache = c
	return func() {
		unsub()
	}
}
