package core

import "time"

// Alert states.
const (
	AlertPending = "pending"
	AlertFiring  = "firing"
)

// Alert is one pending or firing alert of a node's rules engine, as
// GET /v1/console/alerts (the ConsoleAlert schema) and `agentos status`
// show it. The alert engine produces them; the console filters them by
// tenant.
type Alert struct {
	Name     string            `json:"name"`
	Severity string            `json:"severity"`
	State    string            `json:"state"` // AlertPending | AlertFiring
	Labels   map[string]string `json:"labels"`
	Summary  string            `json:"summary"`
	Value    float64           `json:"value"`
	Since    time.Time         `json:"since"`
	// FiringSince is set once the rule's "for" duration has passed.
	FiringSince *time.Time `json:"firing_since"`
	// TenantID is set on tenant alerts; other tenants never see them.
	TenantID string `json:"tenant_id,omitempty"`
}
