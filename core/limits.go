package core

import (
	"context"
	"strings"
	"sync"
)

// BudgetHold is what one model request holds against its tenant's budget
// window from before the call until it is settled or released: the most
// the call may cost (input estimate + maximum output, and its price).
type BudgetHold struct {
	// HoldID is unique per request (NewID("hold")).
	HoldID   string
	TenantID string
	Window   string
	Period   string
	Tokens   int64
	CostUSD  float64
}

// BudgetUse is a budget window's settled use and what is held against it.
type BudgetUse struct {
	UsedTokens      int64
	UsedCostUSD     float64
	ReservedTokens  int64
	ReservedCostUSD float64
}

// LimitsPort keeps the counters behind the tenant limits every node
// sharing a store must agree on: model budget reservations and windowed
// rate counters. A single-node store keeps them in process (LocalLimits:
// a mutex and a map, nothing on disk); a shared store (PostgreSQL) keeps
// them in the database, each call one transaction, so that nodes
// reserving at once never overshoot together.
type LimitsPort interface {
	// ReserveBudget holds h against its window unless the window's used
	// plus reserved plus h would pass maxTokens or maxCostUSD (0: no
	// limit); ok is false then and nothing is held. The returned use is
	// the window's before h. A window's used starts from the usage ledger
	// (UsagePort.GetUsage) the first time it is reserved against, then
	// grows by what SettleBudget settles.
	ReserveBudget(ctx context.Context, h BudgetHold, maxTokens int64, maxCostUSD float64) (use BudgetUse, ok bool, err error)
	// SettleBudget ends h: its reservation is replaced by what the call
	// used. Settling a hold that is not held (released, expired) adds the
	// use all the same.
	SettleBudget(ctx context.Context, h BudgetHold, usedTokens int64, usedCostUSD float64) error
	// ReleaseBudget ends h unused (the call failed).
	ReleaseBudget(ctx context.Context, h BudgetHold) error
	// CountInWindow counts one more event of name (e.g. "tool_calls") for
	// tenantID in window (an opaque period id, e.g. UsagePeriod of the
	// minute) unless limit are counted there already; ok is false then and
	// nothing is counted. n is the count after the call.
	CountInWindow(ctx context.Context, tenantID, name, window string, limit int) (n int, ok bool, err error)
}

// LocalLimits is the in-process LimitsPort of a single node: the window
// state lives in memory, seeded from the ledger the first time a window is
// used in this process (what was settled before a restart counts).
type LocalLimits struct {
	usage UsagePort

	mu      sync.Mutex
	windows map[string]*localWindow // tenant|window|period
	holds   map[string]BudgetHold
	counts  map[string]int // tenant|name|window
	// lastCountWindow is the newest count window seen; counts of other
	// windows are dropped when a new one starts.
	lastCountWindow string
}

type localWindow struct {
	used, reserved BudgetUse
	period         string
}

// NewLocalLimits returns the in-process limits over usage (the ledger a
// window's settled use is read from when first reserved against).
func NewLocalLimits(usage UsagePort) *LocalLimits {
	return &LocalLimits{usage: usage, windows: map[string]*localWindow{}, holds: map[string]BudgetHold{}, counts: map[string]int{}}
}

func budgetKey(h BudgetHold) string { return h.TenantID + "|" + h.Window + "|" + h.Period }

// ReserveBudget implements LimitsPort.
func (l *LocalLimits) ReserveBudget(ctx context.Context, h BudgetHold, maxTokens int64, maxCostUSD float64) (BudgetUse, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := budgetKey(h)
	w := l.windows[k]
	if w == nil {
		rec, err := l.usage.GetUsage(ctx, h.TenantID, h.Window, h.Period)
		if err != nil {
			return BudgetUse{}, false, err
		}
		w = &localWindow{period: h.Period, used: BudgetUse{UsedTokens: rec.TotalTokens, UsedCostUSD: rec.CostUSD}}
		l.windows[k] = w
		l.pruneLocked(h)
	}
	use := BudgetUse{UsedTokens: w.used.UsedTokens, UsedCostUSD: w.used.UsedCostUSD,
		ReservedTokens: w.reserved.ReservedTokens, ReservedCostUSD: w.reserved.ReservedCostUSD}
	if !BudgetFits(use, h, maxTokens, maxCostUSD) {
		return use, false, nil
	}
	w.reserved.ReservedTokens += h.Tokens
	w.reserved.ReservedCostUSD += h.CostUSD
	l.holds[h.HoldID] = h
	return use, true, nil
}

// BudgetFits reports whether h fits a window with use under maxTokens and
// maxCostUSD (0: no limit).
func BudgetFits(use BudgetUse, h BudgetHold, maxTokens int64, maxCostUSD float64) bool {
	if maxTokens > 0 && use.UsedTokens+use.ReservedTokens+h.Tokens > maxTokens {
		return false
	}
	if maxCostUSD > 0 && use.UsedCostUSD+use.ReservedCostUSD+h.CostUSD > maxCostUSD {
		return false
	}
	return true
}

// pruneLocked drops window states of other periods of h's tenant and
// window that hold nothing (a new period started).
func (l *LocalLimits) pruneLocked(h BudgetHold) {
	for k, w := range l.windows {
		if w.period != h.Period && w.reserved.ReservedTokens == 0 && w.reserved.ReservedCostUSD == 0 {
			delete(l.windows, k)
		}
	}
}

func (l *LocalLimits) end(h BudgetHold, usedTokens int64, usedCost float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.windows[budgetKey(h)]
	if _, held := l.holds[h.HoldID]; held {
		delete(l.holds, h.HoldID)
		if w != nil {
			w.reserved.ReservedTokens -= h.Tokens
			w.reserved.ReservedCostUSD -= h.CostUSD
		}
	}
	if w != nil {
		w.used.UsedTokens += usedTokens
		w.used.UsedCostUSD += usedCost
	}
}

// SettleBudget implements LimitsPort.
func (l *LocalLimits) SettleBudget(_ context.Context, h BudgetHold, usedTokens int64, usedCostUSD float64) error {
	l.end(h, usedTokens, usedCostUSD)
	return nil
}

// ReleaseBudget implements LimitsPort.
func (l *LocalLimits) ReleaseBudget(_ context.Context, h BudgetHold) error {
	l.end(h, 0, 0)
	return nil
}

// CountInWindow implements LimitsPort.
func (l *LocalLimits) CountInWindow(_ context.Context, tenantID, name, window string, limit int) (int, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if window > l.lastCountWindow {
		// A new window: the older ones are over (windows are ordered
		// period ids).
		l.lastCountWindow = window
		for k := range l.counts {
			if !strings.HasSuffix(k, "|"+window) {
				delete(l.counts, k)
			}
		}
	}
	k := tenantID + "|" + name + "|" + window
	n := l.counts[k]
	if n >= limit {
		return n, false, nil
	}
	n++
	l.counts[k] = n
	return n, true, nil
}

// PositiveOr is v when it is above zero, else def: the rule for a count,
// size or interval setting that is left zero (or set below zero) taking
// its default.
func PositiveOr[T ~int | ~int64 | ~float64](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}
