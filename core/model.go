package core

import (
	"context"
	"encoding/json"
)

// Model operations.
const (
	OpChat  = "chat"
	OpEmbed = "embed"
)

// Policy decisions.
const (
	DecisionAllowed  = "allowed"
	DecisionBlocked  = "blocked"
	DecisionRedacted = "redacted"
)

// ChatMessage is one message of a chat input (§4.2). Items are open: tool
// messages carry the call they answer, assistant messages the calls they made.
type ChatMessage struct {
	Role       string     `json:"role"`
	Content    string     `json:"content"`
	Name       string     `json:"name,omitempty"`
	ToolCallID string     `json:"tool_call_id,omitempty"`
	ToolCalls  []ToolCall `json:"tool_calls,omitempty"`
}

// ModelTool is a tool offered to the model.
type ModelTool struct {
	ToolID      string         `json:"tool_id"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	InputSchema map[string]any `json:"input_schema,omitempty"`
}

// ToolCall is a tool call the model asked for (open object).
type ToolCall struct {
	ID        string         `json:"id"`
	ToolID    string         `json:"tool_id"`
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

// ModelInput is the chat input (messages, tools, tool_choice) or the embed
// input (texts, encoding_format), by the request's operation.
type ModelInput struct {
	Messages       []ChatMessage `json:"messages,omitempty"`
	Tools          []ModelTool   `json:"tools,omitempty"`
	ToolChoice     string        `json:"tool_choice,omitempty"`
	Texts          []string      `json:"texts,omitempty"`
	EncodingFormat string        `json:"encoding_format,omitempty"`
}

// Requirements constrain routing (closed object).
type Requirements struct {
	MaxLatencyMS     *int     `json:"max_latency_ms,omitempty"`
	MaxCostUSD       *float64 `json:"max_cost_usd,omitempty"`
	MinContextTokens *int     `json:"min_context_tokens,omitempty"`
}

// Generation holds sampling settings (closed object).
type Generation struct {
	Temperature     *float64 `json:"temperature,omitempty"`
	TopP            *float64 `json:"top_p,omitempty"`
	MaxOutputTokens *int     `json:"max_output_tokens,omitempty"`
}

// ModelRequest is the `request` of POST /v1/models:invoke.
type ModelRequest struct {
	RequestID    string        `json:"request_id"`
	Operation    string        `json:"operation"`
	ModelRef     string        `json:"model_ref"`
	Requirements *Requirements `json:"requirements,omitempty"`
	Input        ModelInput    `json:"input"`
	Generation   *Generation   `json:"generation,omitempty"`
	// AgentID, when known, lets canary rules match an agent; not on the wire
	// of the canonical surface (Stack A passes it in-process or as a header).
	AgentID string `json:"-"`
	// OnDelta, when set on a chat request, receives the answer's text as
	// the backend streams it (backends that cannot stream answer whole and
	// never call it). Once it has been called the gateway does not fall
	// back to another backend, so no text is ever sent twice. In-process
	// only.
	OnDelta func(d ModelDelta) error `json:"-"`
	// Once, set by an in-process caller that never sends this request_id
	// again (Stack A: every model call of a run, a resumed one included,
	// gets a new id, and the run's own events record the call durably),
	// skips keeping the answer for request_id replay, and the lookup of a
	// stored one: the id still names the call in audit, metering and
	// traces. Not on the wire: a remote caller's request_id always
	// replays.
	Once bool `json:"-"`
}

// ModelDelta is one piece of a streamed chat answer. The first delta of an
// answer also carries what the answer's headers need: the request id, the
// route it is served by and the policy outcome of its input.
type ModelDelta struct {
	Text      string
	First     bool
	RequestID string
	Route     Route
	Policy    PolicyOutcome
}

// Embedding is one vector of an embed answer.
type Embedding struct {
	Index  int       `json:"index"`
	Vector []float64 `json:"vector"`
}

// ModelOutput is the closed output of a chat ("chat") or embed ("embedding")
// answer; MarshalJSON writes only the fields of its type.
type ModelOutput struct {
	Type       string       `json:"type"`
	Message    *ChatMessage `json:"message,omitempty"`
	ToolCalls  []ToolCall   `json:"tool_calls,omitempty"`
	Embeddings []Embedding  `json:"embeddings,omitempty"`
}

// MarshalJSON keeps the closed shapes: chat always has message and
// tool_calls (possibly []), embedding only embeddings.
func (o ModelOutput) MarshalJSON() ([]byte, error) {
	if o.Type == "embedding" {
		emb := o.Embeddings
		if emb == nil {
			emb = []Embedding{}
		}
		return json.Marshal(struct {
			Type       string      `json:"type"`
			Embeddings []Embedding `json:"embeddings"`
		}{o.Type, emb})
	}
	calls := o.ToolCalls
	if calls == nil {
		calls = []ToolCall{}
	}
	msg := o.Message
	if msg == nil {
		msg = &ChatMessage{Role: "assistant"}
	}
	// The closed output's message carries role and content only.
	return json.Marshal(struct {
		Type    string `json:"type"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		ToolCalls []ToolCall `json:"tool_calls"`
	}{Type: o.Type, Message: struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}{msg.Role, msg.Content}, ToolCalls: calls})
}

// Usage counts tokens of one call (closed).
type Usage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	TotalTokens  int `json:"total_tokens"`
}

// Redaction is one span the policy engine found (open object). Start and
// End are byte offsets of the original text.
type Redaction struct {
	Kind        string `json:"kind"`
	Start       int    `json:"start"`
	End         int    `json:"end"`
	Replacement string `json:"replacement"`
}

// PolicyOutcome is the policy decision reported with a model answer (closed).
type PolicyOutcome struct {
	Decision   string      `json:"decision"`
	Reasons    []string    `json:"reasons"`
	Redactions []Redaction `json:"redactions"`
}

// Route says which backend answered.
type Route struct {
	Backend      string `json:"backend"`
	Model        string `json:"model"`
	Node         string `json:"node"`
	FallbackUsed bool   `json:"fallback_used"`
}

// ModelResponse is the `response` of POST /v1/models:invoke (open).
type ModelResponse struct {
	RequestID     string        `json:"request_id"`
	Status        string        `json:"status"`
	Output        ModelOutput   `json:"output"`
	Usage         Usage         `json:"usage"`
	LatencyMS     int64         `json:"latency_ms"`
	PolicyOutcome PolicyOutcome `json:"policy_outcome"`
	Route         Route         `json:"route"`
	CostUSD       float64       `json:"cost_usd"`
}

// PolicyContent is the content checked by policy:check.
type PolicyContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// PolicyCheckRequest is the `policy_check` of POST /v1/policy:check.
type PolicyCheckRequest struct {
	RequestID string        `json:"request_id"`
	Content   PolicyContent `json:"content"`
	Ruleset   string        `json:"ruleset,omitempty"`
}

// PolicyResult is the `policy_result` answer (closed).
type PolicyResult struct {
	RequestID  string      `json:"request_id"`
	Decision   string      `json:"decision"`
	Reasons    []string    `json:"reasons"`
	Redactions []Redaction `json:"redactions"`
}

// Model tiers: the names a model_ref "tier:<name>" and a tenant's
// model_tiers_allowed may use (CONTRACT §2.1, §4).
const (
	TierFast     = "fast"
	TierBalanced = "balanced"
	TierPremium  = "premium"
)

// ModelTiers lists every tier, cheapest first (a fresh slice).
func ModelTiers() []string { return []string{TierFast, TierBalanced, TierPremium} }

// KnownTier reports whether name is one of ModelTiers.
func KnownTier(name string) bool {
	return name == TierFast || name == TierBalanced || name == TierPremium
}

// ModelInfo is one item of GET /v1/models (open).
type ModelInfo struct {
	ModelID             string   `json:"model_id"`
	Provider            string   `json:"provider"`
	Capabilities        []string `json:"capabilities"`
	MaxOutputTokens     int      `json:"max_output_tokens,omitempty"`
	ContextWindowTokens int      `json:"context_window_tokens,omitempty"`
	Tier                string   `json:"tier,omitempty"`
}

// ModelPort is Stack B as Stack A sees it. Adapters: the in-process gateway
// and an HTTP client of a remote Stack B. Every method enforces the tenant's
// entitlements, budgets, limits and policy for a.TenantID; errors are *Error
// with the contract's codes (forbidden, quota_exceeded, rate_limited,
// policy_blocked, dependency_unavailable, timeout, invalid_request).
type ModelPort interface {
	Chat(ctx context.Context, a Auth, req ModelRequest) (ModelResponse, error)
	Embed(ctx context.Context, a Auth, req ModelRequest) (ModelResponse, error)
	PolicyCheck(ctx context.Context, a Auth, req PolicyCheckRequest) (PolicyResult, error)
	ListModels(ctx context.Context, a Auth) ([]ModelInfo, error)
}
