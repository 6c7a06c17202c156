package edge

import (
	"context"
	"sync"
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
	ttl time.Duration
	now func() time.Time

	mu      sync.RWMutex
	gen     uint64
	tokens  map[string]cachedToken  // secret hash → token
	tenants map[string]cachedTenant // tenant id → tenant
}

type cachedToken struct {
	tok     core.Token
	expires time.Time
}

type cachedTenant struct {
	t       core.Tenant
	expires time.Time
}

// DefaultCredentialCacheTTL bounds how long an entry is reused without a
// change notice when Watch is given none; the change feed makes writes
// visible at once.
const DefaultCredentialCacheTTL = time.Second

// credentialCacheMax bounds each map; past it the map is emptied (a burst
// of distinct keys costs reads, never memory).
const credentialCacheMax = 10000

func newCredentialCache(ttl time.Duration) *credentialCache {
	return &credentialCache{ttl: ttl, now: time.Now, tokens: map[string]cachedToken{}, tenants: map[string]cachedTenant{}}
}

// invalidate drops what c names; it is the change feed subscriber.
func (c *credentialCache) invalidate(ch core.Change) {
	switch ch.Kind {
	case core.ChangeToken, core.ChangeTenant, core.ChangeAll:
	default:
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	switch ch.Kind {
	case core.ChangeAll:
		clear(c.tokens)
		clear(c.tenants)
	case core.ChangeToken:
		// A rotated token may be cached under its old and its new hash.
		for h, e := range c.tokens {
			if e.tok.TokenID == ch.ID && (e.tok.TenantID == ch.TenantID || ch.TenantID == "") {
				delete(c.tokens, h)
			}
		}
	case core.ChangeTenant:
		delete(c.tenants, ch.TenantID)
	}
}

// generation is the count of invalidations so far; a fill started at one
// generation is stored only if it is still current.
func (c *credentialCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *credentialCache) token(hash string) (core.Token, bool) {
	c.mu.RLock()
	e, ok := c.tokens[hash]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return core.Token{}, false
	}
	return e.tok, true
}

func (c *credentialCache) putToken(gen uint64, hash string, tok core.Token) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.tokens) >= credentialCacheMax {
		clear(c.tokens)
	}
	c.tokens[hash] = cachedToken{tok: tok, expires: c.now().Add(c.ttl)}
}

func (c *credentialCache) tenant(id string) (core.Tenant, bool) {
	c.mu.RLock()
	e, ok := c.tenants[id]
	c.mu.RUnlock()
	if !ok || !c.now().Before(e.expires) {
		return core.Tenant{}, false
	}
	return e.t, true
}

func (c *credentialCache) putTenant(gen uint64, t core.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.tenants) >= credentialCacheMax {
		clear(c.tenants)
	}
	c.tenants[t.TenantID] = cachedTenant{t: t, expires: c.now().Add(c.ttl)}
}

// tokenByHash is TokenBySecretHash through the cache.
func (a *Authenticator) tokenByHash(ctx context.Context, hash string) (core.Token, error) {
	if a.cache == nil {
		return a.tokens.TokenBySecretHash(ctx, hash)
	}
	if tok, ok := a.cache.token(hash); ok {
		return tok, nil
	}
	gen := a.cache.generation()
	tok, err := a.tokens.TokenBySecretHash(ctx, hash)
	if err == nil {
		a.cache.putToken(gen, hash, tok)
	}
	return tok, err
}

// getTenant is GetTenant through the cache.
func (a *Authenticator) getTenant(ctx context.Context, id string) (core.Tenant, error) {
	if a.cache == nil {
		return a.tenants.GetTenant(ctx, id)
	}
	if t, ok := a.cache.tenant(id); ok {
		return t, nil
	}
	gen := a.cache.generation()
	t, err := a.tenants.GetTenant(ctx, id)
	if err == nil {
		a.cache.putTenant(gen, t)
	}
	return t, err
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
