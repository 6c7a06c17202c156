package app

import (
	"context"
	"time"

	"github.com/agentos/agentos/core"
)

// publishingStore is the node's store as every component sees it: each
// write of a tenant, token, agent or tool that commits is published on the
// change feed before the call returns, so no cache (Stack A's tenants,
// agents and tools, Stack B's tenants) serves the old object to the next
// request. Whoever writes — admin API, Stack A, the CLI, the seed — goes
// through here.
type publishingStore struct {
	core.Storage
	feed core.ChangeFeed
}

func (p publishingStore) publish(ctx context.Context, kind, tenantID, id string) {
	p.feed.Publish(ctx, core.Change{Kind: kind, TenantID: tenantID, ID: id})
}

func (p publishingStore) CreateTenant(ctx context.Context, t core.Tenant, audit *core.AuditRecord) error {
	err := p.Storage.CreateTenant(ctx, t, audit)
	if err == nil {
		// A miss may have been cached while the tenant did not exist.
		p.publish(ctx, core.ChangeTenant, t.TenantID, "")
	}
	return err
}

func (p publishingStore) UpdateTenant(ctx context.Context, tenantID string, fn func(*core.Tenant) error, audit *core.AuditRecord) (core.Tenant, error) {
	t, err := p.Storage.UpdateTenant(ctx, tenantID, fn, audit)
	if err == nil {
		p.publish(ctx, core.ChangeTenant, tenantID, "")
	}
	return t, err
}

func (p publishingStore) CreateToken(ctx context.Context, tok core.Token, audit *core.AuditRecord) error {
	err := p.Storage.CreateToken(ctx, tok, audit)
	if err == nil {
		p.publish(ctx, core.ChangeToken, tok.TenantID, tok.TokenID)
	}
	return err
}

func (p publishingStore) RotateToken(ctx context.Context, tenantID, tokenID, newHash string, audit *core.AuditRecord) (core.Token, error) {
	tok, err := p.Storage.RotateToken(ctx, tenantID, tokenID, newHash, audit)
	if err == nil {
		p.publish(ctx, core.ChangeToken, tenantID, tokenID)
	}
	return tok, err
}

func (p publishingStore) RevokeToken(ctx context.Context, tenantID, tokenID string, audit *core.AuditRecord) (core.Token, error) {
	tok, err := p.Storage.RevokeToken(ctx, tenantID, tokenID, audit)
	if err == nil {
		p.publish(ctx, core.ChangeToken, tenantID, tokenID)
	}
	return tok, err
}

func (p publishingStore) PutAgent(ctx context.Context, ag core.Agent) (core.Agent, error) {
	out, err := p.Storage.PutAgent(ctx, ag)
	if err == nil {
		p.publish(ctx, core.ChangeAgent, ag.TenantID, ag.AgentID)
	}
	return out, err
}

func (p publishingStore) PutTool(ctx context.Context, td core.ToolDescriptor) (core.ToolDescriptor, error) {
	out, err := p.Storage.PutTool(ctx, td)
	if err == nil {
		p.publish(ctx, core.ChangeTool, td.TenantID, td.ToolID)
	}
	return out, err
}

// openChanges builds the node's change feed: in-process on a single node;
// on a shared store, a SharedChanges whose listener is connected before
// the node serves, so no write another node makes from then on is missed.
func (n *Node) openChanges(ctx context.Context) error {
	port, ok := n.store.(core.ChangeNoticePort)
	if !ok || !n.clustered() {
		n.changes = core.NewLocalChanges()
		return nil
	}
	var members func(context.Context) ([]string, error)
	if nr, ok := n.store.(core.NodeRegistryPort); ok {
		// Publish waits for every node that sent a heartbeat within one
		// lease (nodes beat every third of it); a node killed moments ago
		// costs a write at most core.EchoWait, and only until its
		// heartbeat is a lease old.
		members = func(ctx context.Context) ([]string, error) {
			live, err := nr.LiveNodes(ctx, n.Config.RunLease)
			ids := make([]string, 0, len(live))
			for _, l := range live {
				ids = append(ids, l.NodeID)
			}
			return ids, err
		}
	}
	feed := core.NewSharedChanges(port, n.nodeID, members)
	lctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = feed.Listen(lctx)
	}()
	n.changes = feed
	n.stopChanges = func() { cancel(); <-done }
	// Wait for the first connection (bounded: a store that went away just
	// after opening is reported by the readiness probe, not here).
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !feed.Listening() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			n.Log.Warn().Msg("cluster: change listener not connected yet; caches fall back to their TTL until it is")
			return nil
		case <-tick.C:
		}
	}
	return nil
}

// ChangesListening reports whether this node hears the other nodes'
// changes now (always true on a single node).
func (n *Node) ChangesListening() bool {
	if f, ok := n.changes.(*core.SharedChanges); ok {
		return f.Listening()
	}
	return true
}
