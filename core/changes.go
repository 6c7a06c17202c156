package core

import (
	"context"
	"sync"
)

// Kinds of Change.
const (
	ChangeTenant = "tenant"
	ChangeAgent  = "agent"
	ChangeTool   = "tool"
	ChangeToken  = "token"
)

// Change names one stored object whose cached copies are now stale.
type Change struct {
	Kind     string // ChangeTenant, ChangeAgent, ChangeTool or ChangeToken
	TenantID string
	// ID is the agent, tool or token id; empty for a tenant.
	ID string
}

// ChangeFeed carries invalidations from whoever writes tenants, agents,
// tools and tokens to every cache that holds them (read-your-writes).
//
// Publish is called after the write committed and is synchronous on the
// node: when it returns, every local subscriber has dropped its copy, so
// the next request on this node — the writer's own or anyone's — reads the
// new state. A cluster adapter (several nodes on one PostgreSQL, with
// LISTEN/NOTIFY) implements the same interface: Publish also notifies the
// other nodes, and it calls its local subscribers for what they publish.
type ChangeFeed interface {
	Publish(ctx context.Context, c Change)
	// Subscribe registers fn for every change published from now on; fn
	// must be quick and must not publish. cancel unregisters it.
	Subscribe(fn func(Change)) (cancel func())
}

// LocalChanges is the in-process ChangeFeed of a single node.
type LocalChanges struct {
	mu   sync.RWMutex
	next int
	subs map[int]func(Change)
}

// NewLocalChanges returns an empty feed.
func NewLocalChanges() *LocalChanges { return &LocalChanges{subs: map[int]func(Change){}} }

// Publish calls every subscriber before it returns.
func (l *LocalChanges) Publish(_ context.Context, c Change) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, fn := range l.subs {
		fn(c)
	}
}

// Subscribe implements ChangeFeed.
func (l *LocalChanges) Subscribe(fn func(Change)) func() {
	l.mu.Lock()
	id := l.next
	l.next++
	l.subs[id] = fn
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.subs, id)
		l.mu.Unlock()
	}
}
