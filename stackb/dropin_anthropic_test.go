package stackb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/agentos/agentos/internal/testkit"
	"github.com/anthropics/anthropic-sdk-go/v2"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/v2/option"
)

func anClient(e *env, opts ...anthropicopt.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]anthropicopt.RequestOption{anthropicopt.WithBaseURL(e.url + "/anthropic"),
		anthropicopt.WithAPIKey("user"), anthropicopt.WithMaxRetries(0)}, opts...)...)
}

var anTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "echo", Description: anthropic.String("echoes text"),
	InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"text": map[string]any{"type": "string"}}}}}

// TestDropIn_AnthropicSDK points the official anthropic-sdk-go client at
// /anthropic and drives Messages (plain, streamed, tools), count_tokens and
// models against each backend kind: an Anthropic client reaching an
// OpenAI-compatible backend and the builtin one too.
func TestDropIn_AnthropicSDK(t *testing.T) {
	e, kinds := dropinEnv(t)
	cl := anClient(e)
	ctx := context.Background()

	t.Run("models", func(t *testing.T) {
		var ids []string
		iter := cl.Models.ListAutoPaging(ctx, anthropic.ModelListParams{})
		for iter.Next() {
			ids = append(ids, iter.Current().ID)
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(ids, " "); !strings.Contains(got, "up-anthropic/m-an") || !strings.Contains(got, "builtin/echo-1") {
			t.Fatalf("models %v", ids)
		}
		m, err := cl.Models.Get(ctx, "up-openai/m-oa", anthropic.ModelGetParams{})
		if err != nil || m.ID != "up-openai/m-oa" || m.Type != "model" {
			t.Fatalf("get: %+v %v", m, err)
		}
	})

	for _, bk := range kinds {
		t.Run(bk.name, func(t *testing.T) {
			base := anthropic.MessageNewParams{Model: anthropic.Model(bk.model), MaxTokens: 200,
				System: []anthropic.TextBlockParam{{Text: "be brief"}}}
			t.Run("message", func(t *testing.T) {
				p := base
				p.Messages = []anthropic.MessageParam{
					anthropic.NewUserMessage(anthropic.NewTextBlock("earlier")),
					anthropic.NewAssistantMessage(anthropic.NewTextBlock("noted")),
					anthropic.NewUserMessage(anthropic.NewTextBlock("hello there")),
				}
				msg, err := cl.Messages.New(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if len(msg.Content) != 1 || msg.Content[0].Text != bk.prefix+"hello there" || msg.StopReason != "end_turn" ||
					msg.Usage.InputTokens == 0 || msg.Usage.OutputTokens == 0 || msg.Role != "assistant" {
					t.Fatalf("message %+v", msg)
				}
			})
			t.Run("stream", func(t *testing.T) {
				p := base
				p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("stream these four words"))}
				s := cl.Messages.NewStreaming(ctx, p)
				var msg anthropic.Message
				var types []string
				for s.Next() {
					ev := s.Current()
					types = append(types, ev.Type)
					if err := msg.Accumulate(ev); err != nil {
						t.Fatal(err)
					}
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				if types[0] != "message_start" || types[len(types)-1] != "message_stop" || len(types) < 8 {
					t.Fatalf("events %v", types)
				}
				if len(msg.Content) != 1 || msg.Content[0].Text != bk.prefix+"stream these four words" || msg.StopReason != "end_turn" || msg.Usage.OutputTokens == 0 {
					t.Fatalf("accumulated %+v", msg)
				}
			})
			for _, stream := range []bool{false, true} {
				t.Run(fmt.Sprintf("tools stream=%v", stream), func(t *testing.T) {
					p := base
					p.Tools = []anthropic.ToolUnionParam{anTool}
					p.Messages = []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("ping"))}
					msg := anTurn(t, cl, p, stream)
					if msg.StopReason != "tool_use" || len(msg.Content) != 1 || msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "echo" ||
						string(msg.Content[0].Input) != `{"text":"ping"}` {
						t.Fatalf("tool use %+v", msg)
					}
					p.Messages = append(p.Messages, msg.ToParam(),
						anthropic.NewUserMessage(anthropic.NewToolResultBlock(msg.Content[0].ID, `{"pong":1}`, false)))
					msg = anTurn(t, cl, p, stream)
					if len(msg.Content) != 1 || !toolAnswerOK(bk, msg.Content[0].Text, "ping") || msg.StopReason != "end_turn" {
						t.Fatalf("final %+v", msg)
					}
				})
			}
			t.Run("count_tokens", func(t *testing.T) {
				n, err := cl.Messages.CountTokens(ctx, anthropic.MessageCountTokensParams{Model: anthropic.Model(bk.model),
					Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("twelve bytes"))}})
				if err != nil || n.InputTokens != 3 {
					t.Fatalf("count: %+v %v", n, err)
				}
			})
		})
	}
}

func anTurn(t *testing.T, cl anthropic.Client, p anthropic.MessageNewParams, stream bool) anthropic.Message {
	t.Helper()
	ctx := context.Background()
	if !stream {
		msg, err := cl.Messages.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return *msg
	}
	s := cl.Messages.NewStreaming(ctx, p)
	var msg anthropic.Message
	for s.Next() {
		if err := msg.Accumulate(s.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestDropIn_AnthropicErrors: each failure reaches the SDK as the status
// it maps to its error class, in Anthropic's error shape.
func TestDropIn_AnthropicErrors(t *testing.T) {
	e, _ := dropinEnv(t)
	e.addLimitedTenant(t)
	ctx := context.Background()
	send := func(cl anthropic.Client, model, text string) error {
		_, err := cl.Messages.New(ctx, anthropic.MessageNewParams{Model: anthropic.Model(model), MaxTokens: 50,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))}})
		return err
	}
	check := func(t *testing.T, err error, status int, typ string) *anthropic.Error {
		t.Helper()
		apiErr, ok := err.(*anthropic.Error)
		if !ok || apiErr.StatusCode != status {
			t.Fatalf("err = %v, want %d", err, status)
		}
		var body struct {
			Type  string `json:"type"`
			Error struct {
				Type, Message string
			} `json:"error"`
		}
		if json.Unmarshal([]byte(apiErr.RawJSON()), &body) != nil || body.Type != "error" || body.Error.Type != typ || body.Error.Message == "" {
			t.Fatalf("body %s, want type %s", apiErr.RawJSON(), typ)
		}
		return apiErr
	}
	t.Run("401", func(t *testing.T) {
		check(t, send(anClient(e, anthropicopt.WithAPIKey("wrong")), "tier:fast", "x"), 401, "authentication_error")
	})
	t.Run("403 policy", func(t *testing.T) {
		check(t, send(anClient(e), "tier:fast", "-----BEGIN PRIVATE KEY-----"), 403, "permission_error")
	})
	t.Run("404 model", func(t *testing.T) {
		cl := anClient(e)
		_, err := cl.Models.Get(ctx, "nope", anthropic.ModelGetParams{})
		check(t, err, 404, "not_found_error")
	})
	t.Run("400", func(t *testing.T) {
		check(t, send(anClient(e), "builtin/hash-embed-1", "x"), 400, "invalid_request_error")
	})
	t.Run("429 Retry-After", func(t *testing.T) {
		cl := anClient(e, anthropicopt.WithAPIKey("service"), anthropicopt.WithHeader("X-Tenant-Id", "tnt_limited"))
		if err := send(cl, "tier:fast", "first"); err != nil {
			t.Fatal(err)
		}
		apiErr := check(t, send(cl, "tier:fast", "second"), 429, "rate_limit_error")
		if apiErr.Response.Header.Get("Retry-After") == "" {
			t.Fatal("no Retry-After")
		}
	})
	t.Run("5xx upstream", func(t *testing.T) {
		check(t, send(anClient(e), "up-anthropic/fail-500", "x"), 503, "overloaded_error")
	})
	t.Run("x-api-key", func(t *testing.T) {
		r := testkit.Do(t, "POST", e.url+"/anthropic/v1/messages", "",
			`{"model":"tier:fast","max_tokens":20,"messages":[{"role":"user","content":"plain string"}]}`,
			"x-api-key", "user", "anthropic-version", "2023-06-01")
		if r.Status != 200 || !strings.Contains(string(r.Body), `"text":"echo: plain string"`) {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
	})
}
