package alerts

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Sources is everything the built-in rules read. app wires each field from
// the node; a nil reader turns its rules off (they find nothing).
type Sources struct {
	// Metrics is the registry the rate and quantile rules sample.
	Metrics prometheus.Gatherer
	// Readiness reports each router's failed checks.
	Readiness Readiness
	// Store is pinged by the store rule.
	Store Pinger
	// Backends reports which model backends are in routing.
	Backends BackendHealth
	// Queue reports the run queue.
	Queue Queue
	// Tenants reports every tenant's usage in its budget window.
	Tenants TenantUsages
	// DataDir is the directory whose filesystem the disk rule watches.
	DataDir string
	// Node names the node in mails; ConsoleURL (stack A's base URL) links
	// its console.
	Node       string
	ConsoleURL string
}

// Readiness reports, per router (stack name), the checks that fail; an
// empty list means the router is ready. Routers not running are absent.
type Readiness interface {
	NotReady(ctx context.Context) map[string][]string
}

// Pinger answers whether the store is reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// BackendHealth reports, per model backend, whether it is in routing.
type BackendHealth interface {
	BackendHealth() map[string]bool
}

// QueueStats is the run queue at one moment.
type QueueStats struct {
	QueueDepth, ActiveRuns, Workers int
}

// Queue reports the run queue.
type Queue interface {
	QueueStats(ctx context.Context) (QueueStats, error)
}

// TenantUsage is one tenant's model usage in its current budget window.
type TenantUsage struct {
	TenantID string
	// Disabled tenants get gauges but no alert.
	Disabled    bool
	Window      string
	Period      string
	Requests    int64
	TotalTokens int64
	MaxTokens   int64
	CostUSD     float64
	MaxCostUSD  float64
}

// TenantUsages lists every tenant's usage.
type TenantUsages interface {
	TenantUsages(ctx context.Context) ([]TenantUsage, error)
}
