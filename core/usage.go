package core

import (
	"context"
	"encoding/json"
	"time"
)

// Usage windows of a token budget (§2.1).
const (
	WindowMinute = "minute"
	WindowHour   = "hour"
	WindowDay    = "day"
)

// UsagePeriod names the period of window that contains t, as used in the
// ledger key tenant/{id}/usage/{window}/{date}: "2026-11-25" for a day,
// "2026-11-25T17" for an hour, "2026-11-25T17:30" for a minute (UTC).
func UsagePeriod(window string, t time.Time) string {
	t = t.UTC()
	switch window {
	case WindowMinute:
		return t.Format("2006-01-02T15:04")
	case WindowHour:
		return t.Format("2006-01-02T15")
	default:
		return t.Format("2006-01-02")
	}
}

// UsageRecord is one ledger entry: a tenant's settled model usage in one
// period of one window.
type UsageRecord struct {
	TenantID     string    `json:"tenant_id"`
	Window       string    `json:"window"`
	Period       string    `json:"date"`
	Requests     int64     `json:"requests"`
	InputTokens  int64     `json:"input_tokens"`
	OutputTokens int64     `json:"output_tokens"`
	TotalTokens  int64     `json:"total_tokens"`
	CostUSD      float64   `json:"cost_usd"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// UsageDelta is settled usage to add to one ledger entry.
type UsageDelta struct {
	TenantID     string
	Window       string
	Period       string
	Requests     int64
	InputTokens  int64
	OutputTokens int64
	CostUSD      float64
	At           time.Time
}

// ModelReplay is the stored answer of a model request, replayed when the
// same request_id comes again for the same tenant (§4.2).
type ModelReplay struct {
	TenantID  string          `json:"tenant_id"`
	RequestID string          `json:"request_id"`
	Operation string          `json:"operation"`
	Response  json.RawMessage `json:"response"`
	CreatedAt time.Time       `json:"created_at"`
}

// UsagePort is the metering ledger and the request_id replay store of
// Stack B. Reservations against budgets are held by the gateway in memory
// (so the request path never waits for a disk sync); the port persists what
// was settled, in batches.
type UsagePort interface {
	// GetUsage returns the ledger entry of tenantID for window and period;
	// a zero record (with the keys filled in) when nothing was settled yet.
	// Errors are store failures (internal_error).
	GetUsage(ctx context.Context, tenantID, window, period string) (UsageRecord, error)
	// ListUsage returns a tenant's ledger entries, newest period first
	// within each window, at most UsagePageSize(limit). Only tenantID's
	// entries.
	ListUsage(ctx context.Context, tenantID string, limit int) ([]UsageRecord, error)
	// RecordUsage adds every delta to its entry and stores every replay in
	// one transaction, so usage and the answers it paid for commit
	// together. A replay whose request_id is already stored is kept as it
	// was (first answer wins). Errors are store failures (internal_error).
	RecordUsage(ctx context.Context, deltas []UsageDelta, replays []ModelReplay) error
	// GetReplay returns the stored answer of requestID in tenantID;
	// not_found when there is none (or it belongs to another tenant).
	GetReplay(ctx context.Context, tenantID, requestID string) (ModelReplay, error)
}

// UsagePageSize is how many ledger entries ListUsage returns for limit:
// 100 when it is not positive.
func UsagePageSize(limit int) int {
	if limit <= 0 {
		return 100
	}
	return limit
}
