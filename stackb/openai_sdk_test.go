package stackb_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/core"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

// TestOpenAISDK drives Stack B over real HTTP with the official OpenAI Go
// SDK: chat, a tool round trip, streaming chat and embeddings.
func TestOpenAISDK_ChatStreamingEmbeddings(t *testing.T) {
	e := newEnv(t, envOpt{})
	url := e.serve(t)
	cl := openai.NewClient(option.WithBaseURL(url+"/v1/"), option.WithAPIKey("user"), option.WithMaxRetries(0))
	ctx := context.Background()

	t.Run("chat", func(t *testing.T) {
		var raw *http.Response
		res, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "tier:fast",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hi there jo@example.com")}},
			option.WithResponseInto(&raw))
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		if res.Choices[0].Message.Content != "echo: hi there [REDACTED:EMAIL]" || res.Choices[0].FinishReason != "stop" {
			t.Fatalf("answer = %+v", res.Choices[0])
		}
		if res.Usage.TotalTokens == 0 || res.Object != "chat.completion" {
			t.Fatalf("usage/object = %+v %s", res.Usage, res.Object)
		}
		if r := raw.Header.Get("X-AgentOS-Route"); r != "builtin/echo-1" {
			t.Fatalf("X-AgentOS-Route = %q", r)
		}
		if p := raw.Header.Get("X-AgentOS-Policy"); p != "redacted" || raw.Header.Get("X-AgentOS-Policy-Reasons") != "pii.email" {
			t.Fatalf("X-AgentOS-Policy = %q", p)
		}
	})

	tool := openai.ChatCompletionFunctionTool(shared.FunctionDefinitionParam{Name: "echo",
		Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}})

	t.Run("tools", func(t *testing.T) {
		params := openai.ChatCompletionNewParams{Model: "tier:fast", Tools: []openai.ChatCompletionToolUnionParam{tool},
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("ping")}}
		res, err := cl.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		msg := res.Choices[0].Message
		if res.Choices[0].FinishReason != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "echo" ||
			msg.ToolCalls[0].Function.Arguments != `{"text":"ping"}` {
			t.Fatalf("tool call answer = %+v", res.Choices[0])
		}
		params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage(`{"text":"ping"}`, msg.ToolCalls[0].ID))
		res, err = cl.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatalf("chat with tool result: %v", err)
		}
		if got := res.Choices[0].Message.Content; got != "echo: ping\ntool echo: {\"text\":\"ping\"}" {
			t.Fatalf("final answer = %q", got)
		}
	})

	t.Run("stream", func(t *testing.T) {
		stream := cl.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "tier:fast",
			Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream me please")},
			StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
		acc := openai.ChatCompletionAccumulator{}
		chunks := 0
		for stream.Next() {
			chunk := stream.Current()
			if chunk.Object != "chat.completion.chunk" {
				t.Fatalf("chunk object %q", chunk.Object)
			}
			acc.AddChunk(chunk)
			chunks++
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if chunks < 4 || acc.Choices[0].Message.Content != "echo: stream me please" || acc.Usage.TotalTokens == 0 {
			t.Fatalf("%d chunks accumulated to %+v usage %+v", chunks, acc.Choices[0].Message, acc.Usage)
		}
	})

	t.Run("stream tool_calls", func(t *testing.T) {
		stream := cl.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: "tier:fast",
			Tools: []openai.ChatCompletionToolUnionParam{tool}, Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("pong")}})
		acc := openai.ChatCompletionAccumulator{}
		var finished []openai.FinishedChatCompletionToolCall
		for stream.Next() {
			acc.AddChunk(stream.Current())
			if tc, ok := acc.JustFinishedToolCall(); ok {
				finished = append(finished, tc)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		calls := acc.Choices[0].Message.ToolCalls
		if len(calls) != 1 || calls[0].Function.Name != "echo" || calls[0].Function.Arguments != `{"text":"pong"}` || acc.Choices[0].FinishReason != "tool_calls" {
			t.Fatalf("accumulated tool calls %+v finish %q", calls, acc.Choices[0].FinishReason)
		}
		if len(finished) != 1 {
			t.Fatalf("finished tool calls: %+v", finished)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		for _, format := range []openai.EmbeddingNewParamsEncodingFormat{"", openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
			res, err := cl.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: "hash-embed-1", EncodingFormat: format,
				Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"red apple pie", "red apple tart"}}})
			if err != nil {
				t.Fatalf("embeddings (%q): %v", format, err)
			}
			if len(res.Data) != 2 || res.Data[1].Index != 1 {
				t.Fatalf("data = %d items", len(res.Data))
			}
			v := res.Data[0].Embedding
			var n float64
			for _, x := range v {
				n += x * x
			}
			tol := 1e-9
			if format == openai.EmbeddingNewParamsEncodingFormatBase64 {
				tol = 1e-5 // float32 on the wire
			}
			if len(v) != 256 || math.Abs(n-1) > tol || res.Usage.PromptTokens == 0 {
				t.Fatalf("embedding %d dims norm² %f usage %+v", len(v), n, res.Usage)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "tier:fast",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("-----BEGIN PRIVATE KEY-----")}})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 403 {
			t.Fatalf("err = %v, want a 403 the SDK understands", err)
		}
		var body map[string]json.RawMessage
		_ = json.Unmarshal([]byte(apiErr.RawJSON()), &body)
		if !strings.Contains(string(body["code"])+apiErr.RawJSON(), core.CodePolicyBlocked) {
			t.Fatalf("error body %s does not carry policy_blocked", apiErr.RawJSON())
		}
	})
}
