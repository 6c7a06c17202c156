package app

import (
	"context"
	"fmt"
	"sort"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stacka/console"
)

// mountConsole serves the operator console on Stack A: the page at
// /console (public) and its aggregate endpoints under /v1/console/
// (authenticated), reading the node in-process.
func mountConsole(n *Node) {
	c, err := console.New(console.Deps{
		Health:  func(ctx context.Context) (console.NodeHealth, error) { return nodeHealth(ctx, n), nil },
		Tenants: n.store,
		Usage: func(ctx context.Context, tenantID string) (console.TenantUsage, error) {
			return tenantUsage(ctx, n, tenantID)
		},
		Alerts: func() []core.Alert { return consoleAlerts(n.Alerts()) },
		Log:    n.Log,
	})
	if err != nil {
		// Only a wiring mistake gets here; the node serves on without it.
		n.Log.Error().Err(err).Str("component", "console").Msg("console not mounted")
		return
	}
	c.Register(n.routers[StackA].echo)
}

// nodeHealth is the console's health screen: each router's readiness,
// each backend's routing state and the executor's counts.
func nodeHealth(ctx context.Context, n *Node) console.NodeHealth {
	h := console.NodeHealth{StackID: n.stackID, NodeID: n.nodeID, Version: n.Build.Version, Mode: n.Config.Mode, Status: "ok",
		Routers: []console.RouterHealth{}, Backends: []console.BackendHealth{}, Nodes: []console.ClusterNode{}}
	for _, name := range []string{StackA, StackB, StackFed} {
		checks, ok := n.Ready(ctx, name)
		st := "ok"
		if !ok {
			st, h.Status = "unavailable", "degraded"
		}
		h.Routers = append(h.Routers, console.RouterHealth{Router: name, URL: n.URL(name), Status: st, Checks: checks})
	}
	if n.stacks != nil && n.stacks.gateway != nil {
		for b, up := range n.stacks.gateway.BackendHealth() {
			h.Backends = append(h.Backends, console.BackendHealth{Backend: b, Up: up})
			if !up {
				h.Status = "degraded"
			}
		}
		sort.Slice(h.Backends, func(i, j int) bool { return h.Backends[i].Backend < h.Backends[j].Backend })
	}
	if n.stacks != nil && n.stacks.runs != nil {
		if st, err := n.stacks.runs.Stats(ctx); err == nil {
			h.Runs = console.RunStats{QueueDepth: st.QueueDepth, ActiveRuns: st.ActiveRuns, Workers: st.Workers, Streams: st.Streams}
		}
		// The cluster's live nodes; a store that cannot list them leaves the
		// list empty rather than failing the whole screen.
		if nodes, err := n.LiveNodes(ctx); err == nil {
			for _, ni := range nodes {
				h.Nodes = append(h.Nodes, console.ClusterNode{NodeInfo: ni, Self: ni.NodeID == n.nodeID})
			}
		} else {
			n.Log.Warn().Err(err).Str("component", "console").Msg("listing the cluster's nodes")
		}
	}
	return h
}

// tenantUsage reads a tenant's usage in its current budget window through
// the gateway (which settles pending usage first). A disabled tenant,
// which the gateway refuses, is read from the ledger directly.
// Errors: not_found for an unknown tenant.
func tenantUsage(ctx context.Context, n *Node, tenantID string) (console.TenantUsage, error) {
	t, err := n.store.GetTenant(ctx, tenantID)
	if err != nil {
		return console.TenantUsage{}, err
	}
	l := t.EffectiveLimits()
	u := console.TenantUsage{TenantID: t.TenantID, Name: t.Name, Status: t.Status, PlanTier: t.PlanTier,
		Window: l.BudgetWindow, MaxTokens: l.MaxTokens, MaxCostUSD: l.MaxCostUSD}
	var rec core.UsageRecord
	if t.Status != core.TenantDisabled && n.stacks != nil && n.stacks.gateway != nil {
		rec, err = n.stacks.gateway.CurrentUsage(ctx, systemAuth(tenantID))
	} else {
		rec, err = n.store.GetUsage(ctx, tenantID, l.BudgetWindow, core.UsagePeriod(l.BudgetWindow, core.Now()))
	}
	if err != nil {
		return u, fmt.Errorf("usage of %s: %w", tenantID, err)
	}
	u.Period = rec.Period
	if u.Period == "" {
		u.Period = core.UsagePeriod(l.BudgetWindow, core.Now())
	}
	u.Requests, u.TotalTokens, u.CostUSD = rec.Requests, rec.TotalTokens, rec.CostUSD
	return u, nil
}

// consoleAlerts is what the console shows of the engine's alerts.
func consoleAlerts(in []AlertStatus) []core.Alert {
	out := make([]core.Alert, 0, len(in))
	for _, a := range in {
		out = append(out, a.Alert)
	}
	return out
}
