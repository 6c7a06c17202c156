package stacka

import "github.com/agentos/agentos/core"

// The payloads of the events the executor writes (CONTRACT.md §3.4), as
// types instead of maps: encoding a map sorts its keys and copies every
// value through reflection, which was most of what a run allocated to
// build its events. Fields are in alphabetical order, so each encodes to
// the bytes the maps did.

type stepStartedPayload struct {
	Name     string `json:"name"`
	StepKind string `json:"step_kind"`
}

type inputSummary struct {
	HasTools bool `json:"has_tools"`
	Messages int  `json:"messages"`
}

// emptyObject encodes as {}.
type emptyObject struct{}

type modelRequestedPayload struct {
	InputSummary inputSummary `json:"input_summary"`
	ModelRef     string       `json:"model_ref"`
	Operation    string       `json:"operation"`
	Requirements emptyObject  `json:"requirements"`
}

type modelCompletedPayload struct {
	Error         any                 `json:"error"` // *core.ErrorBody, or toolErrorBody for a lost call
	LatencyMS     int64               `json:"latency_ms"`
	ModelRef      string              `json:"model_ref"`
	Operation     string              `json:"operation"`
	PolicyOutcome *core.PolicyOutcome `json:"policy_outcome"`
	Route         *core.Route         `json:"route"`
	Status        string              `json:"status"`
	Usage         core.Usage          `json:"usage"`
}

type toolCallRequestedPayload struct {
	Input      map[string]any `json:"input"`
	TimeoutMS  int64          `json:"timeout_ms"`
	ToolCallID string         `json:"tool_call_id"`
	ToolID     string         `json:"tool_id"`
}

type toolCallCompletedPayload struct {
	DurationMS int64          `json:"duration_ms"`
	Error      any            `json:"error"`
	Output     map[string]any `json:"output"`
	Remote     any            `json:"remote,omitempty"` // absent unless set
	Status     string         `json:"status"`
	ToolCallID string         `json:"tool_call_id"`
	ToolID     string         `json:"tool_id"`
}

// toolErrorBody is the error of a failed tool call (and of a call lost
// to a restart).
type toolErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type runFailedPayload struct {
	Error  *core.ErrorBody `json:"error"`
	Status string          `json:"status"`
}

type runCompletedPayload struct {
	Output *core.RunInput `json:"output"`
	Status string         `json:"status"`
}

type dryRunCompletedPayload struct {
	DryRun bool           `json:"dry_run"`
	Output *core.RunInput `json:"output"`
	Status string         `json:"status"`
}
