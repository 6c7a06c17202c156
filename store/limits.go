package store

import (
	"context"

	"github.com/agentos/agentos/core"
)

// The limits of a bbolt node live in its process (core.LocalLimits): one
// process owns the file, so in-memory counters are the cluster-wide ones,
// and the request path never waits for a disk sync.

var _ core.LimitsPort = (*Store)(nil)

// ReserveBudget implements core.LimitsPort.
func (s *Store) ReserveBudget(ctx context.Context, h core.BudgetHold, maxTokens int64, maxCostUSD float64) (core.BudgetUse, bool, error) {
	return s.limits.ReserveBudget(ctx, h, maxTokens, maxCostUSD)
}

// SettleBudget implements core.LimitsPort.
func (s *Store) SettleBudget(ctx context.Context, h core.BudgetHold, usedTokens int64, usedCostUSD float64) error {
	return s.limits.SettleBudget(ctx, h, usedTokens, usedCostUSD)
}

// ReleaseBudget implements core.LimitsPort.
func (s *Store) ReleaseBudget(ctx context.Context, h core.BudgetHold) error {
	return s.limits.ReleaseBudget(ctx, h)
}

// CountInWindow implements core.LimitsPort.
func (s *Store) CountInWindow(ctx context.Context, tenantID, name, window string, limit int) (int, bool, error) {
	return s.limits.CountInWindow(ctx, tenantID, name, window, limit)
}
