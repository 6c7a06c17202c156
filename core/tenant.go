package core

import "time"

// SystemTenantID names the audit chain of node-level actions that belong
// to no tenant (secrets read at startup, for one). It is never a tenant a
// credential can belong to.
const SystemTenantID = "tnt_system"

// Plan tiers with limits of their own (PlanDefaults); any other tier gets
// PlanFree's. A tenant created without one is PlanFree.
const (
	PlanFree       = "free"
	PlanDemo       = "demo"
	PlanPro        = "pro"
	PlanEnterprise = "enterprise"
)

// Tenant statuses.
const (
	TenantActive   = "active"
	TenantDisabled = "disabled"
)

// Tenant is the tenant object of CONTRACT.md §2.1.
type Tenant struct {
	TenantID        string         `json:"tenant_id"`
	Name            string         `json:"name"`
	Status          string         `json:"status"`
	PlanTier        string         `json:"plan_tier"`
	CreatedAt       time.Time      `json:"created_at"`
	UpdatedAt       time.Time      `json:"updated_at"`
	DefaultPolicyID string         `json:"default_policy_id"`
	Entitlements    Entitlements   `json:"entitlements"`
	Quotas          Quotas         `json:"quotas"`
	Metadata        map[string]any `json:"metadata"`
}

// Entitlements say which model tiers, backends and tools a tenant may use.
type Entitlements struct {
	ModelTiersAllowed    []string `json:"model_tiers_allowed"`
	ModelBackendsAllowed []string `json:"model_backends_allowed"`
	ToolIDsAllowed       []string `json:"tool_ids_allowed"`
}

// Quotas of §2.1. Every field is optional: nil means the plan tier's default
// (see EffectiveQuotas), never unlimited by accident.
type Quotas struct {
	Runs    *RunQuotas     `json:"runs,omitempty"`
	Tools   *ToolQuotas    `json:"tools,omitempty"`
	Models  *ModelQuotas   `json:"models,omitempty"`
	Storage *StorageQuotas `json:"storage,omitempty"`
	// Retention overrides the node's retention for this tenant (days per
	// kind of record; see retention.go).
	Retention *RetentionQuotas `json:"retention,omitempty"`
}

// RunQuotas limit run creation and concurrency.
type RunQuotas struct {
	MaxConcurrentRuns *int     `json:"max_concurrent_runs,omitempty"`
	RunCreateQPS      *float64 `json:"run_create_qps,omitempty"`
	RunCreateBurst    *int     `json:"run_create_burst,omitempty"`
}

// ToolQuotas limit tool calls.
type ToolQuotas struct {
	ToolCallsPerMinute *int `json:"tool_calls_per_minute,omitempty"`
}

// TokenBudget is a per-window token and cost budget.
type TokenBudget struct {
	Window     string   `json:"window,omitempty"`
	MaxTokens  *int64   `json:"max_tokens,omitempty"`
	MaxCostUSD *float64 `json:"max_cost_usd,omitempty"`
}

// ModelQuotas limit model usage.
type ModelQuotas struct {
	TokenBudget          *TokenBudget `json:"token_budget,omitempty"`
	MaxTokensPerRequest  *int         `json:"max_tokens_per_request,omitempty"`
	MaxRequestsPerMinute *int         `json:"max_requests_per_minute,omitempty"`
}

// StorageQuotas limit tenant memory.
type StorageQuotas struct {
	MaxMemoryBytes *int64 `json:"max_memory_bytes,omitempty"`
}

// Limits is a tenant's quotas with every default filled in: what the
// enforcing code reads.
type Limits struct {
	MaxConcurrentRuns    int
	RunCreateQPS         float64
	RunCreateBurst       int
	ToolCallsPerMinute   int
	BudgetWindow         string
	MaxTokens            int64
	MaxCostUSD           float64
	MaxTokensPerRequest  int
	MaxRequestsPerMinute int
	MaxMemoryBytes       int64
}

// PlanDefaults returns the limits of a plan tier; unknown tiers get the
// PlanFree limits, the tightest.
func PlanDefaults(planTier string) Limits {
	switch planTier {
	case PlanEnterprise:
		return Limits{MaxConcurrentRuns: 200, RunCreateQPS: 100, RunCreateBurst: 200, ToolCallsPerMinute: 6000,
			BudgetWindow: "day", MaxTokens: 50_000_000, MaxCostUSD: 5000, MaxTokensPerRequest: 32768,
			MaxRequestsPerMinute: 6000, MaxMemoryBytes: 10 << 30}
	case PlanPro:
		return Limits{MaxConcurrentRuns: 50, RunCreateQPS: 20, RunCreateBurst: 40, ToolCallsPerMinute: 1200,
			BudgetWindow: "day", MaxTokens: 5_000_000, MaxCostUSD: 500, MaxTokensPerRequest: 16384,
			MaxRequestsPerMinute: 1200, MaxMemoryBytes: 4 << 30}
	case PlanDemo:
		return Limits{MaxConcurrentRuns: 10, RunCreateQPS: 5, RunCreateBurst: 10, ToolCallsPerMinute: 120,
			BudgetWindow: "day", MaxTokens: 100_000, MaxCostUSD: 25, MaxTokensPerRequest: 4096,
			MaxRequestsPerMinute: 120, MaxMemoryBytes: 1 << 30}
	default:
		return Limits{MaxConcurrentRuns: 5, RunCreateQPS: 2, RunCreateBurst: 5, ToolCallsPerMinute: 60,
			BudgetWindow: "day", MaxTokens: 50_000, MaxCostUSD: 5, MaxTokensPerRequest: 2048,
			MaxRequestsPerMinute: 60, MaxMemoryBytes: 256 << 20}
	}
}

// EffectiveLimits fills the tenant's absent quota fields from its plan tier.
func (t Tenant) EffectiveLimits() Limits {
	l := PlanDefaults(t.PlanTier)
	q := t.Quotas
	if r := q.Runs; r != nil {
		setInt(&l.MaxConcurrentRuns, r.MaxConcurrentRuns)
		if r.RunCreateQPS != nil {
			l.RunCreateQPS = *r.RunCreateQPS
		}
		setInt(&l.RunCreateBurst, r.RunCreateBurst)
	}
	if q.Tools != nil {
		setInt(&l.ToolCallsPerMinute, q.Tools.ToolCallsPerMinute)
	}
	if m := q.Models; m != nil {
		if b := m.TokenBudget; b != nil {
			if b.Window != "" {
				l.BudgetWindow = b.Window
			}
			if b.MaxTokens != nil {
				l.MaxTokens = *b.MaxTokens
			}
			if b.MaxCostUSD != nil {
				l.MaxCostUSD = *b.MaxCostUSD
			}
		}
		setInt(&l.MaxTokensPerRequest, m.MaxTokensPerRequest)
		setInt(&l.MaxRequestsPerMinute, m.MaxRequestsPerMinute)
	}
	if q.Storage != nil && q.Storage.MaxMemoryBytes != nil {
		l.MaxMemoryBytes = *q.Storage.MaxMemoryBytes
	}
	return l
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

// Ptr returns a pointer to v; handy for optional quota fields.
func Ptr[T any](v T) *T { return &v }

// Token is an API key's stored record. The secret is never stored: only
// SecretHash (hex SHA-256 of the secret), which never leaves the store.
type Token struct {
	TokenID       string     `json:"token_id"`
	TenantID      string     `json:"tenant_id"`
	PrincipalID   string     `json:"principal_id"`
	PrincipalType string     `json:"principal_type"`
	DisplayName   string     `json:"display_name,omitempty"`
	Scopes        []string   `json:"scopes"`
	Roles         []string   `json:"roles"`
	CreatedAt     time.Time  `json:"created_at"`
	ExpiresAt     *time.Time `json:"expires_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	SecretHash    string     `json:"-"`
}

// Active reports whether the token may authenticate at time now.
func (t Token) Active(now time.Time) bool {
	return t.RevokedAt == nil && (t.ExpiresAt == nil || now.Before(*t.ExpiresAt))
}

// AuditRecord is one immutable audit record (§3.6). Records of a tenant form
// a hash chain: Hash = sha256(PrevHash + canonical JSON of the record without
// Hash), so a changed or removed record breaks verification.
type AuditRecord struct {
	AuditID     string         `json:"audit_id"`
	Time        time.Time      `json:"time"`
	TenantID    string         `json:"tenant_id"`
	PrincipalID string         `json:"principal_id"`
	Action      string         `json:"action"`
	ObjectType  string         `json:"object_type"`
	ObjectID    string         `json:"object_id"`
	Outcome     string         `json:"outcome"`
	Details     map[string]any `json:"details"`
	PrevHash    string         `json:"prev_hash"`
	Hash        string         `json:"hash"`
}

// AuditFilter selects audit records. Zero values select everything.
type AuditFilter struct {
	Action string
	Since  time.Time
	Limit  int
}

// PageSize is how many records one audit page holds: Limit, 100 when it is
// unset or above 1000.
func (f AuditFilter) PageSize() int {
	if f.Limit <= 0 || f.Limit > 1000 {
		return 100
	}
	return f.Limit
}

// SecretReadAudit is the audit record of reading a secret: ref names it
// ("env:NAME" or "file:path"), never its value.
func SecretReadAudit(tenantID, principalID, ref, purpose string) AuditRecord {
	return AuditRecord{TenantID: tenantID, PrincipalID: principalID, Action: "secret.read", ObjectType: "secret",
		ObjectID: ref, Outcome: "success", Details: map[string]any{"purpose": purpose}}
}

// NewAudit builds an audit record for the principal of a.
func NewAudit(a Auth, action, objectType, objectID, outcome string, details map[string]any) AuditRecord {
	if details == nil {
		details = map[string]any{}
	}
	return AuditRecord{TenantID: a.TenantID, PrincipalID: a.Principal.PrincipalID, Action: action,
		ObjectType: objectType, ObjectID: objectID, Outcome: outcome, Details: details}
}
