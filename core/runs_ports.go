package core

import (
	"context"
	"encoding/json"
	"time"
)

// OpenStep describes the step a run was executing when its record was last
// committed: the executor commits before each model or tool call, so after a
// crash recovery knows which call may have been lost and closes it.
type OpenStep struct {
	StepID     string    `json:"step_id"`
	Kind       string    `json:"kind"` // "model" or "tool"
	Name       string    `json:"name"`
	ToolCallID string    `json:"tool_call_id,omitempty"`
	StartedAt  time.Time `json:"started_at"`
}

// RunRecord is a run as stored: the public Run plus what the executor needs
// to resume it after a restart (the creator's Auth, the conversation, the
// tool set) and what idempotency needs (key and body hash).
type RunRecord struct {
	Run
	Auth           Auth          `json:"auth,omitzero"` // absent once the run is finished
	ModelRef       string        `json:"model_ref"`
	Instructions   string        `json:"instructions,omitempty"`
	Traceparent    string        `json:"traceparent,omitempty"`
	IdempotencyKey string        `json:"idempotency_key"`
	BodyHash       string        `json:"body_hash"`
	Deadline       *time.Time    `json:"deadline,omitempty"`
	Messages       []ChatMessage `json:"messages,omitempty"`
	// PendingCalls are tool calls the model asked for that have no result yet.
	PendingCalls []ToolCall `json:"pending_calls,omitempty"`
	Open         *OpenStep  `json:"open_step,omitempty"`
	MaxSteps     int        `json:"max_steps_effective"`
	TimeoutMS    int64      `json:"timeout_ms_effective"`
	Priority     string     `json:"priority_effective"`
}

// DropResumeState clears what only executing the run needs, for a run
// that has just become terminal: the conversation, the pending tool calls,
// the open step, the creator's credentials and the agent's instructions.
// A finished run's record keeps the public run and what idempotency needs
// (key and body hash), and is that much smaller to store.
func (rec *RunRecord) DropResumeState() {
	rec.Messages, rec.PendingCalls, rec.Open = nil, nil, nil
	rec.Auth, rec.Instructions = Auth{}, ""
}

// EventDraft is an event before the store sequences it.
type EventDraft struct {
	Type    string
	StepID  string
	Payload any
}

// RunFilter selects runs of one tenant for listing, newest first. Cursor
// is the run_id after which to continue (exclusive).
type RunFilter struct {
	AgentID string
	Status  string
	Limit   int
	Cursor  string
}

// PageSize is how many runs one ListRuns page holds: Limit, 50 when it is
// unset (the HTTP edge bounds what a caller may ask for).
func (f RunFilter) PageSize() int {
	if f.Limit <= 0 {
		return 50
	}
	return f.Limit
}

// RunRef names a run in the durable queue or the active set.
type RunRef struct {
	TenantID string
	RunID    string
	Status   string
}

// ErrRunFinished is returned by AdvanceRun when the run became terminal
// (canceled) before the change could commit.
var ErrRunFinished = Errorf(CodeConflict, "run already finished")

// AgentPort stores versioned agents.
type AgentPort interface {
	// PutAgent creates or replaces an agent, bumping version (1 on create)
	// and keeping created_at; returns the stored agent.
	PutAgent(ctx context.Context, ag Agent) (Agent, error)
	// GetAgent returns not_found when the agent is not in tenantID.
	GetAgent(ctx context.Context, tenantID, agentID string) (Agent, error)
	// ListAgents lists a tenant's agents ordered by id.
	ListAgents(ctx context.Context, tenantID string) ([]Agent, error)
}

// ToolRegistryPort stores a tenant's registered tools.
type ToolRegistryPort interface {
	// PutTool creates or replaces a tool descriptor; returns it stored.
	PutTool(ctx context.Context, td ToolDescriptor) (ToolDescriptor, error)
	// GetTool returns not_found when the tool is not registered in tenantID.
	GetTool(ctx context.Context, tenantID, toolID string) (ToolDescriptor, error)
	// ListTools lists a tenant's registered tools ordered by id.
	ListTools(ctx context.Context, tenantID string) ([]ToolDescriptor, error)
}

// RunStatePort stores runs, their events and idempotency keys. Every state
// change and the events it causes commit in one transaction.
type RunStatePort interface {
	// CreateRun stores rec with the given events (sequenced from 1), the
	// idempotency key and, for non-terminal runs, the durable queue entry,
	// plus the audit record, in one transaction. When the key is already
	// used by the same tenant, principal and agent it returns the stored
	// run and replayed=true if the body hash matches, or conflict if not.
	CreateRun(ctx context.Context, rec RunRecord, events []EventDraft, audit *AuditRecord) (RunRecord, []Event, bool, error)
	// FindIdempotent returns the run stored under the key (ok=false when
	// unused). The hash is compared by the caller.
	FindIdempotent(ctx context.Context, tenantID, principalID, agentID, key string) (RunRecord, bool, error)
	// GetRun returns not_found when the run is not in tenantID.
	GetRun(ctx context.Context, tenantID, runID string) (RunRecord, error)
	// ListRuns lists a tenant's runs newest first and returns the cursor of
	// the next page ("" at the end).
	ListRuns(ctx context.Context, tenantID string, f RunFilter) ([]Run, string, error)
	// AdvanceRun loads the run, lets fn change it and return new events,
	// and commits both in one transaction (shared with concurrent callers).
	// fn may run more than once and must only depend on its argument.
	// Returns not_found for an unknown run and fn's error unchanged.
	AdvanceRun(ctx context.Context, tenantID, runID string, fn func(*RunRecord) ([]EventDraft, error)) (RunRecord, []Event, error)
	// AppendRun is AdvanceRun for the run's single writer: it commits rec
	// and the drafts (sequenced after rec.LastSequence) only if the stored
	// run is still non-terminal and still at rec.LastSequence, so all
	// encoding happens outside the transaction. ErrRunFinished when the run
	// became terminal, conflict when another writer appended meanwhile.
	AppendRun(ctx context.Context, rec RunRecord, drafts []EventDraft) (RunRecord, []Event, error)
	// CancelRun moves a non-terminal run to canceled with its
	// agentos.run.canceled event and the audit record; conflict when the
	// run is already terminal, not_found when it is not in tenantID.
	CancelRun(ctx context.Context, tenantID, runID string, audit *AuditRecord) (RunRecord, []Event, error)
	// ListEvents returns stored events with sequence > after, ascending,
	// at most limit (0: all); not_found when the run is not in tenantID.
	ListEvents(ctx context.Context, tenantID, runID string, after int64, limit int) ([]Event, error)
}

// QueuePort is the durable run queue: every non-terminal run has an entry
// from create until its terminal transaction removes it.
type QueuePort interface {
	// ActiveRuns lists every non-terminal run of every tenant, oldest first
	// (recovery at start).
	ActiveRuns(ctx context.Context) ([]RunRef, error)
}

// MemoryItem is one value of tenant memory (§3.5).
type MemoryItem struct {
	Namespace string          `json:"namespace"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Metadata  map[string]any  `json:"metadata"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
	Vector    []float64       `json:"vector,omitempty"`
}

// MemoryPort stores tenant memory with a per-tenant byte budget.
type MemoryPort interface {
	// PutMemory stores it; quota_exceeded when the tenant's memory would
	// exceed maxBytes (0: unlimited). Returns the stored item.
	PutMemory(ctx context.Context, tenantID string, it MemoryItem, maxBytes int64) (MemoryItem, error)
	// GetMemory returns not_found when the key is not in tenantID's ns.
	GetMemory(ctx context.Context, tenantID, ns, key string) (MemoryItem, error)
	// ListMemory returns every item of a namespace (search scans it).
	ListMemory(ctx context.Context, tenantID, ns string) ([]MemoryItem, error)
	// MemoryUsage is the tenant's stored memory in bytes.
	MemoryUsage(ctx context.Context, tenantID string) (int64, error)
}
