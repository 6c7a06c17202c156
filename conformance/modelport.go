// Package conformance holds suites that prove the contract. Adapters of a
// port all pass the same suite.
package conformance

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
)

// RunModelPortSuite checks a core.ModelPort adapter against CONTRACT §4.
// newPort returns a fresh port and an Auth of a tenant that is entitled to
// tier fast and the builtin backend, with the default ruleset (pol_default)
// and limits generous enough for a few calls; tier:fast must route to
// builtin/echo-1 and hash-embed-1.
func RunModelPortSuite(t *testing.T, newPort func(t *testing.T) (core.ModelPort, core.Auth)) {
	t.Helper()
	ctx := context.Background()

	t.Run("ListModels", func(t *testing.T) {
		p, a := newPort(t)
		models, err := p.ListModels(ctx, a)
		if err != nil {
			t.Fatalf("ListModels: %v", err)
		}
		found := map[string][]string{}
		for _, m := range models {
			found[m.Provider+"/"+m.ModelID] = m.Capabilities
		}
		if caps := found["builtin/echo-1"]; len(caps) != 1 || caps[0] != core.OpChat {
			t.Errorf("builtin/echo-1 capabilities = %v, want [chat]", caps)
		}
		if caps := found["builtin/hash-embed-1"]; len(caps) != 1 || caps[0] != core.OpEmbed {
			t.Errorf("builtin/hash-embed-1 capabilities = %v, want [embed]", caps)
		}
	})

	t.Run("ChatEcho", func(t *testing.T) {
		p, a := newPort(t)
		resp, err := p.Chat(ctx, a, core.ModelRequest{RequestID: core.NewID(core.PrefixRequest), ModelRef: "tier:fast",
			Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello there"}}}})
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		if resp.Status != "ok" || resp.Output.Type != "chat" || resp.Output.Message == nil || resp.Output.Message.Content != "echo: hello there" {
			t.Fatalf("answer = %+v, want status ok and echo: hello there", resp)
		}
		if resp.Route.Backend != "builtin" || resp.Route.Model != "echo-1" || resp.Route.FallbackUsed {
			t.Errorf("route = %+v, want builtin/echo-1 without fallback", resp.Route)
		}
		// ceil(8/4) + ceil(11/4) input, ceil(17/4) output.
		if want := (core.Usage{InputTokens: 5, OutputTokens: 5, TotalTokens: 10}); resp.Usage != want {
			t.Errorf("usage = %+v, want %+v", resp.Usage, want)
		}
		if resp.PolicyOutcome.Decision != core.DecisionAllowed {
			t.Errorf("policy decision = %s, want allowed", resp.PolicyOutcome.Decision)
		}
	})

	t.Run("ChatToolLoop", func(t *testing.T) {
		p, a := newPort(t)
		tools := []core.ModelTool{{ToolID: "tool.echo", Name: "echo", InputSchema: map[string]any{"type": "object"}}}
		msgs := []core.ChatMessage{{Role: "user", Content: "ping"}}
		first, err := p.Chat(ctx, a, core.ModelRequest{ModelRef: "tier:fast", Input: core.ModelInput{Messages: msgs, Tools: tools, ToolChoice: "auto"}})
		if err != nil {
			t.Fatalf("Chat (tool call): %v", err)
		}
		if len(first.Output.ToolCalls) != 1 {
			t.Fatalf("tool_calls = %+v, want one", first.Output.ToolCalls)
		}
		tc := first.Output.ToolCalls[0]
		if tc.ToolID != "tool.echo" || tc.Arguments["text"] != "ping" || !strings.HasPrefix(tc.ID, "call_") {
			t.Fatalf("tool call = %+v, want tool.echo with {text: ping}", tc)
		}
		msgs = append(msgs, core.ChatMessage{Role: "assistant", ToolCalls: []core.ToolCall{tc}},
			core.ChatMessage{Role: "tool", ToolCallID: tc.ID, Name: "echo", Content: `{"text": "ping"}`})
		second, err := p.Chat(ctx, a, core.ModelRequest{ModelRef: "tier:fast", Input: core.ModelInput{Messages: msgs, Tools: tools}})
		if err != nil {
			t.Fatalf("Chat (answer): %v", err)
		}
		if got, want := second.Output.Message.Content, "echo: ping\ntool echo: {\"text\":\"ping\"}"; got != want {
			t.Fatalf("answer = %q, want %q", got, want)
		}
		if len(second.Output.ToolCalls) != 0 {
			t.Errorf("second answer has tool calls %+v", second.Output.ToolCalls)
		}
	})

	t.Run("Embed", func(t *testing.T) {
		p, a := newPort(t)
		resp, err := p.Embed(ctx, a, core.ModelRequest{ModelRef: "hash-embed-1",
			Input: core.ModelInput{Texts: []string{"the quick brown fox", "the quick brown dog", "tax law of 1999"}}})
		if err != nil {
			t.Fatalf("Embed: %v", err)
		}
		e := resp.Output.Embeddings
		if resp.Output.Type != "embedding" || len(e) != 3 {
			t.Fatalf("output = %+v, want 3 embeddings", resp.Output)
		}
		for i, v := range e {
			if v.Index != i || len(v.Vector) != 256 || math.Abs(norm(v.Vector)-1) > 1e-9 {
				t.Fatalf("embedding %d: index %d, %d dims, norm %f; want %d, 256, 1", i, v.Index, len(v.Vector), norm(v.Vector), i)
			}
		}
		if near, far := dot(e[0].Vector, e[1].Vector), dot(e[0].Vector, e[2].Vector); near <= far {
			t.Errorf("similar texts score %f, unrelated %f; want similar higher", near, far)
		}
	})

	t.Run("PolicyCheck", func(t *testing.T) {
		p, a := newPort(t)
		text := "mail me at jane.doe@example.com today"
		res, err := p.PolicyCheck(ctx, a, core.PolicyCheckRequest{RequestID: "req_conformance", Content: core.PolicyContent{Type: "text", Text: text}})
		if err != nil {
			t.Fatalf("PolicyCheck: %v", err)
		}
		if res.Decision != core.DecisionRedacted || len(res.Redactions) != 1 || res.RequestID != "req_conformance" {
			t.Fatalf("result = %+v, want one redaction", res)
		}
		r := res.Redactions[0]
		if r.Kind != "email" || text[r.Start:r.End] != "jane.doe@example.com" || r.Replacement != "[REDACTED:EMAIL]" {
			t.Errorf("redaction = %+v, want the email's byte span", r)
		}
		blocked, err := p.PolicyCheck(ctx, a, core.PolicyCheckRequest{Content: core.PolicyContent{Type: "text",
			Text: "-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----"}})
		if err != nil {
			t.Fatalf("PolicyCheck (key): %v", err)
		}
		if blocked.Decision != core.DecisionBlocked {
			t.Errorf("private key decision = %s, want blocked", blocked.Decision)
		}
	})

	t.Run("ChatPolicy", func(t *testing.T) {
		p, a := newPort(t)
		resp, err := p.Chat(ctx, a, core.ModelRequest{ModelRef: "tier:fast",
			Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "user", Content: "call 415-555-0134 now"}}}})
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		if resp.PolicyOutcome.Decision != core.DecisionRedacted || resp.Output.Message.Content != "echo: call [REDACTED:PHONE] now" {
			t.Errorf("answer %q with decision %s; want the phone redacted before the model", resp.Output.Message.Content, resp.PolicyOutcome.Decision)
		}
		_, err = p.Chat(ctx, a, core.ModelRequest{ModelRef: "tier:fast",
			Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "user", Content: "key: -----BEGIN PRIVATE KEY-----abc"}}}})
		if !core.IsCode(err, core.CodePolicyBlocked) {
			t.Errorf("private key in chat: err = %v, want policy_blocked", err)
		}
	})

	t.Run("Replay", func(t *testing.T) {
		p, a := newPort(t)
		req := core.ModelRequest{RequestID: core.NewID(core.PrefixRequest), ModelRef: "tier:fast",
			Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "user", Content: "once"}}, Tools: []core.ModelTool{{ToolID: "tool.echo", Name: "echo"}}}}
		first, err := p.Chat(ctx, a, req)
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		again, err := p.Chat(ctx, a, req)
		if err != nil {
			t.Fatalf("Chat (replay): %v", err)
		}
		if len(first.Output.ToolCalls) != 1 || len(again.Output.ToolCalls) != 1 || first.Output.ToolCalls[0].ID != again.Output.ToolCalls[0].ID {
			t.Errorf("replay answered %+v, want the stored answer %+v", again.Output, first.Output)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		p, a := newPort(t)
		_, err := p.Chat(ctx, a, core.ModelRequest{ModelRef: "no-such-model", Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "user", Content: "x"}}}})
		if e := core.AsError(err); e == nil || e.Code != core.CodeInvalidRequest || e.Details["field"] != "request.model_ref" {
			t.Errorf("unknown model: err = %v, want invalid_request on request.model_ref", err)
		}
		_, err = p.Chat(ctx, a, core.ModelRequest{ModelRef: "tier:fast", Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "robot", Content: "x"}}}})
		if !core.IsCode(err, core.CodeInvalidRequest) {
			t.Errorf("bad role: err = %v, want invalid_request", err)
		}
		other := a
		other.TenantID = "tnt_conformance_missing"
		_, err = p.ListModels(ctx, other)
		if code := core.ErrorCode(err); code != core.CodeNotFound && code != core.CodeForbidden {
			t.Errorf("unknown tenant: err = %v, want not_found or forbidden", err)
		}
	})
}

func norm(v []float64) float64 { return math.Sqrt(dot(v, v)) }

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
