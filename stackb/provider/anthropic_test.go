package provider_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stackb/provider"
)

// messagesServer speaks the Messages wire format and records the last request.
func messagesServer(t *testing.T, status int, answer string, last *map[string]any) *httptest.Server {
	t.Helper()
	return testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("x-api-key") != "k-test" || r.Header.Get("anthropic-version") != provider.AnthropicVersion {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"type":"error","error":{"type":"authentication_error","message":"bad key"}}`))
			return
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("decode: %v", err)
		}
		*last = body
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(answer))
	}), nil)
}

func TestAnthropic_MessagesWireFormat(t *testing.T) {
	var last map[string]any
	answer := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","stop_reason":"tool_use",
	  "content":[{"type":"text","text":"Let me look."},{"type":"tool_use","id":"toolu_1","name":"kv_get","input":{"key":"a"}}],
	  "usage":{"input_tokens":21,"output_tokens":9}}`
	srv := messagesServer(t, 200, answer, &last)
	p := &provider.Anthropic{Name: "claude", BaseURL: srv.URL, APIKey: "k-test"}
	res, err := p.Chat(context.Background(), provider.ChatCall{Model: "claude-x", MaxTokens: 300,
		Messages: []core.ChatMessage{
			{Role: "system", Content: "be terse"},
			{Role: "user", Content: "get a"},
			{Role: "assistant", ToolCalls: []core.ToolCall{{ID: "toolu_0", ToolID: "tool.kv.get", Name: "kv_get", Arguments: map[string]any{"key": "a"}}}},
			{Role: "tool", ToolCallID: "toolu_0", Content: `{"value":1}`},
			{Role: "user", Content: "again"},
		},
		Tools: []core.ModelTool{{ToolID: "tool.kv.get", Name: "kv.get", InputSchema: map[string]any{"type": "object"}}}})
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if res.Message.Content != "Let me look." || len(res.ToolCalls) != 1 {
		t.Fatalf("result = %+v", res)
	}
	tc := res.ToolCalls[0]
	if tc.ID != "toolu_1" || tc.ToolID != "tool.kv.get" || tc.Arguments["key"] != "a" {
		t.Fatalf("tool call = %+v, want toolu_1 mapped back to tool.kv.get", tc)
	}
	if res.Usage != (core.Usage{InputTokens: 21, OutputTokens: 9, TotalTokens: 30}) {
		t.Fatalf("usage = %+v", res.Usage)
	}
	// The request: system apart, alternating turns, tool_result in a user turn.
	if last["system"] != "be terse" || last["max_tokens"] != float64(300) || last["model"] != "claude-x" {
		t.Fatalf("request head = %v", last)
	}
	msgs := last["messages"].([]any)
	roles := []string{}
	for _, m := range msgs {
		roles = append(roles, m.(map[string]any)["role"].(string))
	}
	if len(roles) != 3 || roles[0] != "user" || roles[1] != "assistant" || roles[2] != "user" {
		t.Fatalf("roles = %v, want user, assistant, user", roles)
	}
	third := msgs[2].(map[string]any)["content"].([]any)
	if b := third[0].(map[string]any); b["type"] != "tool_result" || b["tool_use_id"] != "toolu_0" || b["content"] != `{"value":1}` {
		t.Fatalf("tool result block = %v", b)
	}
	if b := msgs[1].(map[string]any)["content"].([]any)[0].(map[string]any); b["type"] != "tool_use" || b["name"] != "kv_get" {
		t.Fatalf("tool use block = %v", b)
	}
	tools := last["tools"].([]any)
	if tl := tools[0].(map[string]any); tl["name"] != "kv_get" || tl["input_schema"] == nil {
		t.Fatalf("tools = %v", tools)
	}
}

func TestAnthropic_ErrorsMapToContractCodes(t *testing.T) {
	tests := []struct {
		name   string
		status int
		code   string
	}{
		{"overloaded", 529, core.CodeDependencyUnavailable},
		{"server error", 500, core.CodeDependencyUnavailable},
		{"bad request", 400, core.CodeInvalidRequest},
		{"rate limited upstream", 429, core.CodeDependencyUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last map[string]any
			srv := messagesServer(t, tt.status, `{"type":"error","error":{"type":"x","message":"nope"}}`, &last)
			p := &provider.Anthropic{Name: "claude", BaseURL: srv.URL + "/v1", APIKey: "k-test"}
			_, err := p.Chat(context.Background(), provider.ChatCall{Model: "m", Messages: []core.ChatMessage{{Role: "user", Content: "x"}}})
			if !core.IsCode(err, tt.code) {
				t.Fatalf("err = %v, want %s", err, tt.code)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		// Answers only once the caller has given up.
		srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the server notices a gone caller only once the body is read
			<-r.Context().Done()
		}), nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		p := &provider.Anthropic{Name: "claude", BaseURL: srv.URL}
		if _, err := p.Chat(ctx, provider.ChatCall{Model: "m", Messages: []core.ChatMessage{{Role: "user", Content: "x"}}}); !core.IsCode(err, core.CodeTimeout) {
			t.Fatalf("err = %v, want timeout", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := testkit.Serve(t, http.NotFoundHandler(), nil)
		srv.Close()
		p := &provider.Anthropic{Name: "claude", BaseURL: srv.URL}
		if _, err := p.Chat(context.Background(), provider.ChatCall{Model: "m", Messages: []core.ChatMessage{{Role: "user", Content: "x"}}}); !core.IsCode(err, core.CodeDependencyUnavailable) {
			t.Fatalf("err = %v, want dependency_unavailable", err)
		}
	})
}

func TestBuiltin_EchoAndHashEmbed(t *testing.T) {
	ctx := context.Background()
	var b provider.Builtin
	res, err := b.Chat(ctx, provider.ChatCall{Messages: []core.ChatMessage{{Role: "user", Content: "abcde"}}})
	if err != nil || res.Message.Content != "echo: abcde" || res.Usage.InputTokens != 2 || res.Usage.OutputTokens != 3 {
		t.Fatalf("echo = %+v, %v", res, err)
	}
	v1, v2 := provider.HashEmbedding("Hello, world"), provider.HashEmbedding("hello world")
	for i := range v1 {
		if v1[i] != v2[i] {
			t.Fatal("hash-embed-1 is not case and punctuation insensitive")
		}
	}
	if zero := provider.HashEmbedding(""); len(zero) != provider.HashEmbedDim {
		t.Fatalf("empty text: %d dims", len(zero))
	}
}
