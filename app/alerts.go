package app

import (
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/agentos/agentos/alerts"
	"github.com/agentos/agentos/core"
)

// AlertStatus is one pending or firing alert (see alerts.Status).
type AlertStatus = alerts.Status

// startAlerts evaluates the built-in rules on n every interval and mails
// firing and resolved alerts through n.Config.SMTP when it is enabled;
// without SMTP the state is still kept for the console and `agentos
// status`. stop ends the loop and waits for it.
func startAlerts(n *Node) (stop func()) {
	cfg := alerts.DefaultConfig()
	if n.Config.AlertInterval > 0 {
		cfg.Interval = n.Config.AlertInterval
	}
	cfg.RepeatInterval = n.Config.AlertRepeat
	return startAlertsWith(n, cfg)
}

// startAlertsWith is startAlerts with explicit settings.
func startAlertsWith(n *Node, cfg alerts.Config) (stop func()) {
	var send func(ctx context.Context, subject, body string) error
	if n.Config.SMTP.Enabled() {
		smtp := n.Config.SMTP
		send = func(ctx context.Context, subject, body string) error {
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			return SendMail(ctx, smtp, subject, body)
		}
	}
	e := alerts.New(cfg, n.Log, n.registry, alertSources(n), send)
	n.alertsMu.Lock()
	n.alerts = e
	n.alertsMu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
			n.alertsMu.Lock()
			if n.alerts == e {
				n.alerts = nil
			}
			n.alertsMu.Unlock()
		})
	}
}

// Alerts lists the node's pending and firing alerts (nil when the alert
// engine is not running).
func (n *Node) Alerts() []AlertStatus {
	n.alertsMu.Lock()
	e := n.alerts
	n.alertsMu.Unlock()
	if e == nil {
		return nil
	}
	return e.Status()
}

// alertSources wires the alert rules' readers to the node.
func alertSources(n *Node) alerts.Sources {
	r := nodeAlertReaders{n}
	return alerts.Sources{Metrics: n.registry, Readiness: r, Store: n.store, Backends: r, Queue: r, Tenants: r,
		DataDir: n.Config.DataDir, Node: n.stackID, ConsoleURL: n.URL(StackA)}
}

// nodeAlertReaders answers the alert rules from the node's routers and
// stacks (which may not exist yet, or at all, on a partial node).
type nodeAlertReaders struct{ n *Node }

// NotReady dials each router's listener and runs its readiness checks.
func (r nodeAlertReaders) NotReady(ctx context.Context) map[string][]string {
	out := map[string][]string{}
	for _, name := range []string{StackA, StackB, StackFed} {
		rt := r.n.routers[name]
		if rt == nil {
			continue
		}
		failed := []string{}
		if conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", rt.listener.Addr().String()); err != nil {
			failed = append(failed, "listener: "+err.Error())
		} else {
			conn.Close()
		}
		if checks, ok := r.n.Ready(ctx, name); !ok {
			for k, v := range checks {
				if v != "ok" {
					failed = append(failed, k+": "+v)
				}
			}
		}
		sort.Strings(failed)
		out[name] = failed
	}
	return out
}

func (r nodeAlertReaders) BackendHealth() map[string]bool {
	if r.n.stacks == nil || r.n.stacks.gateway == nil {
		return nil
	}
	return r.n.stacks.gateway.BackendHealth()
}

func (r nodeAlertReaders) QueueStats(ctx context.Context) (alerts.QueueStats, error) {
	if r.n.stacks == nil || r.n.stacks.runs == nil {
		return alerts.QueueStats{}, nil
	}
	st, err := r.n.stacks.runs.Stats(ctx)
	if err != nil {
		return alerts.QueueStats{}, fmt.Errorf("run stats: %w", err)
	}
	return alerts.QueueStats{QueueDepth: st.QueueDepth, ActiveRuns: st.ActiveRuns, Workers: st.Workers}, nil
}

func (r nodeAlertReaders) TenantUsages(ctx context.Context) ([]alerts.TenantUsage, error) {
	if r.n.stacks == nil || r.n.stacks.gateway == nil {
		return nil, nil
	}
	tenants, err := r.n.store.ListTenants(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tenants: %w", err)
	}
	out := make([]alerts.TenantUsage, 0, len(tenants))
	for _, t := range tenants {
		u, err := tenantUsage(ctx, r.n, t.TenantID)
		if err != nil {
			return nil, err
		}
		out = append(out, alerts.TenantUsage{TenantID: t.TenantID, Disabled: t.Status == core.TenantDisabled,
			Window: u.Window, Period: u.Period, Requests: u.Requests, TotalTokens: u.TotalTokens,
			MaxTokens: u.MaxTokens, CostUSD: u.CostUSD, MaxCostUSD: u.MaxCostUSD})
	}
	return out, nil
}
