package stacka

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/agentos/agentos/core"
)

// TestEventPayloads_SameBytesAsMaps: each typed event payload encodes to
// exactly the bytes of the map the executor used to build (encoding/json
// sorts map keys; the types list their fields in that order), so streams
// and stored events read as they did.
func TestEventPayloads_SameBytesAsMaps(t *testing.T) {
	body := core.ErrorBodyOf(core.Errorf(core.CodeTimeout, "model call ran past the run's deadline"))
	usage := core.Usage{InputTokens: 13, OutputTokens: 6, TotalTokens: 19}
	outcome := core.PolicyOutcome{Decision: "allowed", Reasons: []string{}, Redactions: []core.Redaction{}}
	route := core.Route{Backend: "builtin", Model: "echo-1", Node: "stk_1"}
	out := &core.RunInput{Type: "text", Text: "echo: <hi> & bye"}
	lost := map[string]any{"code": core.CodeInternal, "message": "interrupted"}
	input := map[string]any{"text": "hi", "n": 2.5}
	cases := []struct {
		name       string
		typed, old any
	}{
		{"run status", core.RunStatusPayload{Status: core.RunRunning}, map[string]any{"status": core.RunRunning}},
		{"step started", stepStartedPayload{StepKind: "model", Name: "tier:fast"}, map[string]any{"step_kind": "model", "name": "tier:fast"}},
		{"step completed", core.StepCompletedPayload{StepKind: "tool", Name: "tool.echo", Status: "ok", DurationMS: 3},
			map[string]any{"step_kind": "tool", "name": "tool.echo", "status": "ok", "duration_ms": 3}},
		{"model requested", modelRequestedPayload{ModelRef: "tier:fast", Operation: core.OpChat, InputSummary: inputSummary{Messages: 2, HasTools: true}},
			map[string]any{"model_ref": "tier:fast", "operation": core.OpChat, "requirements": map[string]any{},
				"input_summary": map[string]any{"messages": 2, "has_tools": true}}},
		{"model completed", modelCompletedPayload{ModelRef: "tier:fast", Operation: core.OpChat, Status: "ok", Usage: usage, LatencyMS: 1,
			PolicyOutcome: &outcome, Route: &route, Error: (*core.ErrorBody)(nil)},
			map[string]any{"model_ref": "tier:fast", "operation": core.OpChat, "status": "ok", "usage": usage, "latency_ms": 1,
				"policy_outcome": outcome, "route": route, "error": (*core.ErrorBody)(nil)}},
		{"model failed", modelCompletedPayload{ModelRef: "tier:fast", Operation: core.OpChat, Status: "error", Error: body,
			PolicyOutcome: &core.PolicyOutcome{}, Route: &core.Route{}},
			map[string]any{"model_ref": "tier:fast", "operation": core.OpChat, "status": "error", "usage": core.Usage{}, "latency_ms": 0,
				"policy_outcome": core.PolicyOutcome{}, "route": core.Route{}, "error": body}},
		{"model call lost", modelCompletedPayload{ModelRef: "tier:fast", Operation: core.OpChat, Status: "error",
			Error: toolErrorBody{Code: core.CodeInternal, Message: "interrupted"}},
			map[string]any{"model_ref": "tier:fast", "operation": core.OpChat, "status": "error", "usage": core.Usage{}, "latency_ms": 0,
				"policy_outcome": nil, "route": nil, "error": lost}},
		{"tool requested", toolCallRequestedPayload{ToolCallID: "tcall_1", ToolID: "tool.echo", Input: input, TimeoutMS: 30000},
			map[string]any{"tool_call_id": "tcall_1", "tool_id": "tool.echo", "input": input, "timeout_ms": 30000}},
		{"tool completed", toolCallCompletedPayload{ToolCallID: "tcall_1", ToolID: "tool.echo", Status: "ok", Output: input, DurationMS: 0},
			map[string]any{"tool_call_id": "tcall_1", "tool_id": "tool.echo", "status": "ok", "output": input, "duration_ms": 0, "error": nil}},
		{"tool completed remotely", toolCallCompletedPayload{ToolCallID: "tcall_1", ToolID: "tool.a2a", Status: "ok", Output: input,
			Remote: map[string]any{"task_id": "t1"}},
			map[string]any{"tool_call_id": "tcall_1", "tool_id": "tool.a2a", "status": "ok", "output": input, "duration_ms": 0, "error": nil,
				"remote": map[string]any{"task_id": "t1"}}},
		{"tool failed", toolCallCompletedPayload{ToolCallID: "tcall_1", ToolID: "tool.echo", Status: "error",
			Error: toolErrorBody{Code: core.CodeInternal, Message: "interrupted"}},
			map[string]any{"tool_call_id": "tcall_1", "tool_id": "tool.echo", "status": "error", "output": nil, "duration_ms": 0, "error": lost}},
		{"run failed", runFailedPayload{Status: core.RunFailed, Error: body}, map[string]any{"status": core.RunFailed, "error": body}},
		{"run completed", runCompletedPayload{Status: core.RunCompleted, Output: out}, map[string]any{"status": core.RunCompleted, "output": out}},
		{"dry run", dryRunCompletedPayload{Status: core.RunCompleted, DryRun: true},
			map[string]any{"status": core.RunCompleted, "output": nil, "dry_run": true}},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.typed)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(c.old)
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got  %s\n want %s", c.name, got, want)
		}
	}
}
