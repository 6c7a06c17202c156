package provider_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/provider"
)

// kindCase is what a provider kind's conformance test gives the shared
// suite: a backend built through the kind's registration, and what the
// kind can do.
type kindCase struct {
	kind string
	// spec builds the Spec for a backend (an upstream started per test
	// when the kind needs one).
	spec func(t *testing.T) provider.Spec
	// model answers normally; failModel(status) names a model the upstream
	// fails with that status ("" when the kind has no upstream).
	model     string
	failModel func(status int) string
	hangModel string
	// answers is the prefix of a plain answer ("echo: ").
	answers string
	// streams says the kind passes text through OnDelta as it arrives.
	streams bool
	embeds  bool
}

// runKindSuite is the contract every provider kind meets: built from its
// registration, a plain answer, a tool call mapped back to the offered
// tool's id, the answer from a tool result, streaming that adds up to the
// whole answer, and upstream failures mapped to the contract's codes.
func runKindSuite(t *testing.T, kc kindCase) {
	kind, ok := provider.Lookup(kc.kind)
	if !ok {
		t.Fatalf("kind %s is not registered", kc.kind)
	}
	build := func(t *testing.T) provider.Provider {
		p, err := kind.New(kc.spec(t))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return p
	}
	ctx := context.Background()
	user := func(s string) []core.ChatMessage {
		return []core.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: s}}
	}
	tools := []core.ModelTool{{ToolID: "tool.echo", Name: "echo", InputSchema: map[string]any{"type": "object"}}}

	t.Run("answer", func(t *testing.T) {
		res, err := build(t).Chat(ctx, provider.ChatCall{Model: kc.model, Messages: user("hello there"), MaxTokens: 100})
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		if res.Message.Content != kc.answers+"hello there" || len(res.ToolCalls) != 0 {
			t.Fatalf("answer = %+v", res)
		}
		if res.Usage.InputTokens == 0 || res.Usage.OutputTokens == 0 || res.Usage.TotalTokens != res.Usage.InputTokens+res.Usage.OutputTokens {
			t.Fatalf("usage = %+v", res.Usage)
		}
	})

	for _, stream := range []bool{false, true} {
		name := "tool round trip"
		if stream {
			name += " streamed"
		}
		t.Run(name, func(t *testing.T) {
			p := build(t)
			var deltas strings.Builder
			call := provider.ChatCall{Model: kc.model, Messages: user("ping"), Tools: tools, MaxTokens: 100}
			if stream {
				call.OnDelta = func(s string) error { deltas.WriteString(s); return nil }
			}
			res, err := p.Chat(ctx, call)
			if err != nil {
				t.Fatalf("Chat: %v", err)
			}
			if len(res.ToolCalls) != 1 || res.ToolCalls[0].ToolID != "tool.echo" || res.ToolCalls[0].Arguments["text"] != "ping" || res.ToolCalls[0].ID == "" {
				t.Fatalf("tool calls = %+v", res.ToolCalls)
			}
			tc := res.ToolCalls[0]
			call.Messages = append(call.Messages, core.ChatMessage{Role: "assistant", ToolCalls: res.ToolCalls},
				core.ChatMessage{Role: "tool", ToolCallID: tc.ID, Name: tc.Name, Content: `{"pong":1}`})
			res, err = p.Chat(ctx, call)
			if err != nil {
				t.Fatalf("Chat with result: %v", err)
			}
			if !strings.HasPrefix(res.Message.Content, kc.answers+"ping\n") || !strings.Contains(res.Message.Content, `{"pong":1}`) || len(res.ToolCalls) != 0 {
				t.Fatalf("answer from tool result = %+v", res)
			}
			if stream && kc.streams && deltas.String() != res.Message.Content {
				t.Fatalf("streamed %q, answer %q", deltas.String(), res.Message.Content)
			}
		})
	}

	t.Run("stream", func(t *testing.T) {
		var pieces []string
		res, err := build(t).Chat(ctx, provider.ChatCall{Model: kc.model, Messages: user("stream these words"), MaxTokens: 100,
			OnDelta: func(s string) error { pieces = append(pieces, s); return nil }})
		if err != nil {
			t.Fatalf("Chat: %v", err)
		}
		if !kc.streams {
			if len(pieces) != 0 {
				t.Fatalf("a kind that cannot stream sent %d deltas", len(pieces))
			}
			return
		}
		if len(pieces) < 3 || strings.Join(pieces, "") != res.Message.Content || res.Usage.OutputTokens == 0 {
			t.Fatalf("pieces %q, answer %q usage %+v", pieces, res.Message.Content, res.Usage)
		}
	})

	t.Run("embed", func(t *testing.T) {
		res, err := build(t).Embed(ctx, "hash-embed-1", []string{"a b", "c"})
		if !kc.embeds {
			if !core.IsCode(err, core.CodeInvalidRequest) {
				t.Fatalf("err = %v, want invalid_request", err)
			}
			return
		}
		if err != nil || len(res.Vectors) != 2 || len(res.Vectors[0]) == 0 || res.Usage.InputTokens == 0 {
			t.Fatalf("embed = %+v, %v", res, err)
		}
	})

	if kc.failModel == nil {
		return
	}
	for _, tt := range []struct {
		status int
		code   string
	}{{500, core.CodeDependencyUnavailable}, {429, core.CodeDependencyUnavailable}, {400, core.CodeInvalidRequest}} {
		t.Run("upstream "+strconv.Itoa(tt.status), func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				call := provider.ChatCall{Model: kc.failModel(tt.status), Messages: user("x")}
				if stream {
					call.OnDelta = func(string) error { return nil }
				}
				if _, err := build(t).Chat(ctx, call); !core.IsCode(err, tt.code) {
					t.Fatalf("stream=%v: err = %v, want %s", stream, err, tt.code)
				}
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := build(t).Chat(ctx, provider.ChatCall{Model: kc.hangModel, Messages: user("x")}); !core.IsCode(err, core.CodeTimeout) {
			t.Fatalf("err = %v, want timeout", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		s := kc.spec(t)
		s.BaseURL = "http://127.0.0.1:1/v1"
		p, err := kind.New(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Chat(ctx, provider.ChatCall{Model: kc.model, Messages: user("x")}); !core.IsCode(err, core.CodeDependencyUnavailable) {
			t.Fatalf("err = %v, want dependency_unavailable", err)
		}
	})
}
