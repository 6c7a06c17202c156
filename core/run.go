package core

import (
	"context"
	"encoding/json"
	"time"
)

type runOriginKey struct{}

// WithRunOrigin marks ctx as creating a run that peer stackID forwarded
// here; the run records it in its origin field.
func WithRunOrigin(ctx context.Context, stackID string) context.Context {
	return context.WithValue(ctx, runOriginKey{}, stackID)
}

// RunOrigin is the forwarding peer's stack_id of ctx, or "".
func RunOrigin(ctx context.Context) string {
	s, _ := ctx.Value(runOriginKey{}).(string)
	return s
}

// Run statuses: queued → running → completed | failed | canceled.
const (
	RunQueued    = "queued"
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunCanceled  = "canceled"
)

// RunTerminal reports whether a run in status s can no longer change.
func RunTerminal(s string) bool { return s == RunCompleted || s == RunFailed || s == RunCanceled }

// Event types of CONTRACT.md §3.4.
const (
	EventRunCreated        = "agentos.run.created"
	EventRunStarted        = "agentos.run.started"
	EventStepStarted       = "agentos.run.step.started"
	EventStepCompleted     = "agentos.run.step.completed"
	EventToolCallRequested = "agentos.tool.call.requested"
	EventToolCallCompleted = "agentos.tool.call.completed"
	EventModelRequested    = "agentos.model.requested"
	EventModelCompleted    = "agentos.model.completed"
	EventRunCompleted      = "agentos.run.completed"
	EventRunFailed         = "agentos.run.failed"
	EventRunCanceled       = "agentos.run.canceled"
)

// EventTerminal reports whether an event type ends a run's stream.
func EventTerminal(t string) bool {
	return t == EventRunCompleted || t == EventRunFailed || t == EventRunCanceled
}

// Agent is the agent object of §3.2 (open).
type Agent struct {
	TenantID          string         `json:"tenant_id"`
	AgentID           string         `json:"agent_id"`
	Name              string         `json:"name"`
	Version           int            `json:"version"`
	Description       string         `json:"description,omitempty"`
	ModelRef          string         `json:"model_ref"`
	Instructions      string         `json:"instructions,omitempty"`
	ToolIDs           []string       `json:"tool_ids"`
	DefaultRunOptions *RunOptions    `json:"default_run_options,omitempty"`
	Status            string         `json:"status"`
	CreatedAt         time.Time      `json:"created_at"`
	UpdatedAt         time.Time      `json:"updated_at"`
	Metadata          map[string]any `json:"metadata,omitempty"`
}

// RunInput is the run's input; only type "text" exists in v1.
type RunInput struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// RunContext describes where a run comes from (open).
type RunContext struct {
	Locale    string            `json:"locale,omitempty"`
	Timezone  string            `json:"timezone,omitempty"`
	Channel   string            `json:"channel,omitempty"`
	UserID    string            `json:"user_id,omitempty"`
	SessionID string            `json:"session_id,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Metadata  map[string]any    `json:"metadata,omitempty"`
}

// Tooling narrows the tools a run may call.
type Tooling struct {
	ToolAllowlist []string `json:"tool_allowlist,omitempty"`
	ToolDenymap   []string `json:"tool_denymap,omitempty"`
}

// RunOptions are a run's execution settings; nil fields take the agent's
// default_run_options, then the node's.
type RunOptions struct {
	Priority     string `json:"priority,omitempty"`
	TimeoutMS    *int64 `json:"timeout_ms,omitempty"`
	MaxSteps     *int   `json:"max_steps,omitempty"`
	StreamEvents *bool  `json:"stream_events,omitempty"`
	DryRun       *bool  `json:"dry_run,omitempty"`
}

// RunRequest is the body of POST /v1/agents/{agent_id}/runs.
type RunRequest struct {
	Input          RunInput    `json:"input"`
	Context        *RunContext `json:"context,omitempty"`
	Tooling        *Tooling    `json:"tooling,omitempty"`
	RunOptions     *RunOptions `json:"run_options,omitempty"`
	IdempotencyKey string      `json:"idempotency_key,omitempty"`
}

// RunSummary counts a run's steps.
type RunSummary struct {
	StepsTotal      int `json:"steps_total"`
	ToolCallsTotal  int `json:"tool_calls_total"`
	ModelCallsTotal int `json:"model_calls_total"`
}

// ErrorBody is the error object as stored on a run or event.
type ErrorBody struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Retryable bool           `json:"retryable"`
	Details   map[string]any `json:"details"`
}

// ErrorBodyOf converts any error to its contract body.
func ErrorBodyOf(err error) *ErrorBody {
	e := AsError(err)
	if e == nil {
		return nil
	}
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return &ErrorBody{Code: e.Code, Message: e.Message, Retryable: e.Retryable, Details: d}
}

// Run is the run object of §3.3 (open). started_at and completed_at are
// absent until set (optional, not nullable); output and error are null
// until set.
type Run struct {
	TenantID      string      `json:"tenant_id"`
	AgentID       string      `json:"agent_id"`
	RunID         string      `json:"run_id"`
	Status        string      `json:"status"`
	CreatedAt     time.Time   `json:"created_at"`
	StartedAt     *time.Time  `json:"started_at,omitempty"`
	CompletedAt   *time.Time  `json:"completed_at,omitempty"`
	EventsURL     string      `json:"events_url"`
	RunOptions    RunOptions  `json:"run_options"`
	Summary       RunSummary  `json:"summary"`
	Output        *RunInput   `json:"output"`
	Error         *ErrorBody  `json:"error"`
	CorrelationID string      `json:"correlation_id"`
	Input         RunInput    `json:"input"`
	Context       *RunContext `json:"context,omitempty"`
	Tools         []string    `json:"tools,omitempty"`
	PrincipalID   string      `json:"principal_id,omitempty"`
	// LastSequence is the sequence of the run's newest event.
	LastSequence int64 `json:"last_sequence"`
	// Origin, for a run created by a peer's forward, is the peer's stack_id.
	Origin string `json:"origin,omitempty"`
}

// EventTrace links an event to its trace.
type EventTrace struct {
	Traceparent string `json:"traceparent,omitempty"`
	SpanID      string `json:"span_id,omitempty"`
}

// Event is the event object of §3.4 (open). step_id is absent on
// run-level events (optional, not nullable).
type Event struct {
	EventID  string          `json:"event_id"`
	Sequence int64           `json:"sequence"`
	Time     time.Time       `json:"time"`
	Type     string          `json:"type"`
	TenantID string          `json:"tenant_id"`
	AgentID  string          `json:"agent_id"`
	RunID    string          `json:"run_id"`
	StepID   *string         `json:"step_id,omitempty"`
	Trace    EventTrace      `json:"trace"`
	Payload  json.RawMessage `json:"payload"`
}

// EventEnvelope is how an event travels: {"event": {...}}.
type EventEnvelope struct {
	Event Event `json:"event"`
}

// ToolDescriptor is a registered tool (§3.5, open).
type ToolDescriptor struct {
	TenantID    string         `json:"tenant_id,omitempty"`
	ToolID      string         `json:"tool_id"`
	Name        string         `json:"name"`
	Kind        string         `json:"kind"`
	Description string         `json:"description,omitempty"`
	InputSchema map[string]any `json:"input_schema,omitempty"`
	Config      map[string]any `json:"config,omitempty"`
	CreatedAt   *time.Time     `json:"created_at,omitempty"`
	UpdatedAt   *time.Time     `json:"updated_at,omitempty"`
}
