package stackb_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/agentos/agentos/stackb/internal/fakeup"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/responses"
	"github.com/openai/openai-go/v3/shared"
)

// backendKind is one provider kind the drop-in surfaces are tried
// against: the model ref to ask for and how its answers start.
type backendKind struct {
	name    string
	model   string // what "model" says
	prefix  string // a plain answer is prefix + last user text
	embed   string // an embedding model of this kind ("" = none)
	streams bool   // the backend streams (its text passes through as it arrives)
}

// dropinEnv is a gateway with the builtin provider, a fake OpenAI-compatible
// upstream and a fake Anthropic upstream, each a real HTTP server on :0.
func dropinEnv(t *testing.T) (*env, []backendKind) {
	t.Helper()
	oa, err := fakeup.OpenAI("up-openai")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(oa.Close)
	an, err := fakeup.Anthropic("up-anthropic")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(an.Close)
	oa.Key, an.Key = "oa-key", "an-key"
	t.Setenv("DROPIN_OA_KEY", "oa-key")
	t.Setenv("DROPIN_AN_KEY", "an-key")
	providers := fmt.Sprintf(`{"providers": [
	  {"name": "up-openai", "kind": "openai", "base_url": %q, "api_key_env": "DROPIN_OA_KEY", "models": [
	    {"model_id": "m-oa", "capabilities": ["chat"], "tier": "balanced"},
	    {"model_id": "e-oa", "capabilities": ["embed"]}]},
	  {"name": "up-anthropic", "kind": "anthropic", "base_url": %q, "api_key_env": "DROPIN_AN_KEY", "models": [
	    {"model_id": "m-an", "capabilities": ["chat"], "tier": "premium"},
	    {"model_id": "fail-500", "capabilities": ["chat"]}]}]}`, oa.URL, strings.TrimSuffix(an.URL, "/v1"))
	e := newEnv(t, envOpt{providers: providers})
	e.serve(t)
	return e, []backendKind{
		{name: "builtin", model: "builtin/echo-1", prefix: "echo: ", embed: "hash-embed-1"},
		{name: "openai", model: "up-openai/m-oa", prefix: "up-openai: ", embed: "up-openai/e-oa", streams: true},
		{name: "anthropic", model: "up-anthropic/m-an", prefix: "up-anthropic: ", streams: true},
	}
}

func oaClient(e *env, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{option.WithBaseURL(e.url + "/openai/v1/"), option.WithAPIKey("user"), option.WithMaxRetries(0)}, opts...)...)
}

// toolAnswerOK is a final answer built from the tool result {"pong":1}.
func toolAnswerOK(bk backendKind, got, asked string) bool {
	return strings.HasPrefix(got, bk.prefix+asked+"\n") && strings.Contains(got, `{"pong":1}`)
}

var echoTool = shared.FunctionDefinitionParam{Name: "echo", Description: openai.String("echoes text"),
	Parameters: shared.FunctionParameters{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}}

// TestDropIn_OpenAISDK points the official openai-go client at
// /openai/v1 and drives every endpoint it serves against each backend kind.
func TestDropIn_OpenAISDK(t *testing.T) {
	e, kinds := dropinEnv(t)
	cl := oaClient(e)
	ctx := context.Background()

	t.Run("models", func(t *testing.T) {
		var ids []string
		iter := cl.Models.ListAutoPaging(ctx)
		for iter.Next() {
			m := iter.Current()
			if m.Object != "model" || m.OwnedBy == "" || m.Created == 0 {
				t.Fatalf("model %+v", m)
			}
			ids = append(ids, m.ID)
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"tier:fast", "builtin/echo-1", "up-openai/m-oa", "up-anthropic/m-an", "builtin/hash-embed-1"} {
			if !strings.Contains(strings.Join(ids, " "), want) {
				t.Fatalf("models %v lack %s", ids, want)
			}
		}
		for _, id := range []string{"echo-1", "up-anthropic/m-an", "tier:balanced"} {
			m, err := cl.Models.Get(ctx, id)
			if err != nil || m.ID != id || m.Object != "model" {
				t.Fatalf("retrieve %s: %+v %v", id, m, err)
			}
		}
		_, err := cl.Models.Get(ctx, "no-such-model")
		var apiErr *openai.Error
		if !asAPIError(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Type != "not_found_error" {
			t.Fatalf("unknown model: %v", err)
		}
	})

	for _, bk := range kinds {
		t.Run(bk.name, func(t *testing.T) {
			t.Run("chat", func(t *testing.T) {
				var raw *http.Response
				res, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: bk.model,
					Messages: []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("hello there")}},
					option.WithResponseInto(&raw))
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Choices[0].Message.Content; got != bk.prefix+"hello there" || res.Choices[0].FinishReason != "stop" || res.Usage.TotalTokens == 0 {
					t.Fatalf("answer %q finish %s usage %+v", got, res.Choices[0].FinishReason, res.Usage)
				}
				if r := raw.Header.Get("X-AgentOS-Route"); r != bk.model {
					t.Fatalf("route %q", r)
				}
			})
			t.Run("stream", func(t *testing.T) {
				stream := cl.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{Model: bk.model,
					Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream these four words")},
					StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}})
				acc := openai.ChatCompletionAccumulator{}
				n := 0
				for stream.Next() {
					acc.AddChunk(stream.Current())
					n++
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if acc.Choices[0].Message.Content != bk.prefix+"stream these four words" || n < 5 || acc.Usage.TotalTokens == 0 {
					t.Fatalf("%d chunks: %q usage %+v", n, acc.Choices[0].Message.Content, acc.Usage)
				}
			})
			for _, stream := range []bool{false, true} {
				t.Run(fmt.Sprintf("tools stream=%v", stream), func(t *testing.T) {
					params := openai.ChatCompletionNewParams{Model: bk.model, Tools: []openai.ChatCompletionToolUnionParam{openai.ChatCompletionFunctionTool(echoTool)},
						Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("ping")}}
					msg := chatTurn(t, cl, params, stream)
					if len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "echo" || msg.ToolCalls[0].Function.Arguments != `{"text":"ping"}` {
						t.Fatalf("tool call %+v", msg)
					}
					params.Messages = append(params.Messages, msg.ToParam(), openai.ToolMessage(`{"pong":1}`, msg.ToolCalls[0].ID))
					if msg = chatTurn(t, cl, params, stream); !toolAnswerOK(bk, msg.Content, "ping") {
						t.Fatalf("final %q", msg.Content)
					}
				})
			}
			if bk.embed != "" {
				t.Run("embeddings", func(t *testing.T) {
					var first []float64
					for _, f := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
						res, err := cl.Embeddings.New(ctx, openai.EmbeddingNewParams{Model: bk.embed, EncodingFormat: f,
							Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"red apple", "green pear"}}})
						if err != nil {
							t.Fatal(err)
						}
						if len(res.Data) != 2 || len(res.Data[0].Embedding) == 0 || res.Usage.PromptTokens == 0 {
							t.Fatalf("%s: %+v", f, res)
						}
						if first == nil {
							first = res.Data[0].Embedding
						} else if d := res.Data[0].Embedding[0] - first[0]; d > 1e-6 || d < -1e-6 {
							t.Fatalf("base64 decodes to %v, float said %v", res.Data[0].Embedding[0], first[0])
						}
					}
				})
			}
			t.Run("responses", func(t *testing.T) { responsesRoundTrips(t, cl, bk) })
		})
	}
}

func chatTurn(t *testing.T, cl openai.Client, p openai.ChatCompletionNewParams, stream bool) openai.ChatCompletionMessage {
	t.Helper()
	ctx := context.Background()
	if !stream {
		res, err := cl.Chat.Completions.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return res.Choices[0].Message
	}
	s := cl.Chat.Completions.NewStreaming(ctx, p)
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return acc.Choices[0].Message
}

// responsesRoundTrips drives the Responses API: text, instructions, a
// function call answered through previous_response_id and through explicit
// input items, streamed and not.
func responsesRoundTrips(t *testing.T, cl openai.Client, bk backendKind) {
	ctx := context.Background()
	res, err := cl.Responses.New(ctx, responses.ResponseNewParams{Model: bk.model, Instructions: openai.String("be brief"),
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("hello there")}})
	if err != nil {
		t.Fatal(err)
	}
	if res.OutputText() != bk.prefix+"hello there" || res.Status != "completed" || res.Usage.TotalTokens == 0 || !strings.HasPrefix(res.ID, "resp_") {
		t.Fatalf("response %q status %s usage %+v id %s", res.OutputText(), res.Status, res.Usage, res.ID)
	}
	tools := []responses.ToolUnionParam{{OfFunction: &responses.FunctionToolParam{Name: "echo", Strict: openai.Bool(false),
		Parameters: map[string]any{"type": "object", "properties": map[string]any{"text": map[string]any{"type": "string"}}}}}}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("function call stream=%v", stream), func(t *testing.T) {
			first := responseTurn(t, cl, responses.ResponseNewParams{Model: bk.model, Tools: tools,
				Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("ping")}}, stream)
			var call responses.ResponseFunctionToolCall
			for _, it := range first.Output {
				if it.Type == "function_call" {
					call = it.AsFunctionCall()
				}
			}
			if call.Name != "echo" || call.Arguments != `{"text":"ping"}` || call.CallID == "" {
				t.Fatalf("function call %+v in %+v", call, first.Output)
			}
			output := responses.ResponseInputItemParamOfFunctionCallOutput(`{"pong":1}`)
			output.OfFunctionCallOutput.CallID = openai.String(call.CallID)
			// Through previous_response_id.
			second := responseTurn(t, cl, responses.ResponseNewParams{Model: bk.model, Tools: tools, PreviousResponseID: openai.String(first.ID),
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: responses.ResponseInputParam{output}}}, stream)
			if !toolAnswerOK(bk, second.OutputText(), "ping") {
				t.Fatalf("answer via previous_response_id %q", second.OutputText())
			}
			// Through explicit items: the user turn, the call, its output.
			items := responses.ResponseInputParam{
				responses.ResponseInputItemParamOfMessage("ping", responses.EasyInputMessageRoleUser),
				responses.ResponseInputItemParamOfFunctionCall(call.Arguments, call.CallID, call.Name),
				output,
			}
			third := responseTurn(t, cl, responses.ResponseNewParams{Model: bk.model, Tools: tools,
				Input: responses.ResponseNewParamsInputUnion{OfInputItemList: items}}, stream)
			if !toolAnswerOK(bk, third.OutputText(), "ping") {
				t.Fatalf("answer via input items %q", third.OutputText())
			}
		})
	}
	t.Run("unknown previous_response_id", func(t *testing.T) {
		_, err := cl.Responses.New(ctx, responses.ResponseNewParams{Model: bk.model, PreviousResponseID: openai.String("resp_nope"),
			Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("x")}})
		var apiErr *openai.Error
		if !asAPIError(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Fatalf("err = %v", err)
		}
	})
}

// responseTurn runs one Responses request, streamed or not, and returns
// the final response (streamed: the one response.completed carries, after
// checking the deltas add up to it).
func responseTurn(t *testing.T, cl openai.Client, p responses.ResponseNewParams, stream bool) responses.Response {
	t.Helper()
	ctx := context.Background()
	if !stream {
		res, err := cl.Responses.New(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return *res
	}
	s := cl.Responses.NewStreaming(ctx, p)
	var text, args strings.Builder
	var final *responses.Response
	var types []string
	for s.Next() {
		ev := s.Current()
		types = append(types, ev.Type)
		switch ev.Type {
		case "response.output_text.delta":
			text.WriteString(ev.Delta)
		case "response.function_call_arguments.delta":
			args.WriteString(ev.Delta)
		case "response.completed":
			r := ev.Response
			final = &r
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if final == nil || types[0] != "response.created" || types[len(types)-1] != "response.completed" {
		t.Fatalf("events %v", types)
	}
	if text.String() != final.OutputText() {
		t.Fatalf("deltas %q, final %q", text.String(), final.OutputText())
	}
	for _, it := range final.Output {
		if it.Type == "function_call" && it.Arguments.OfString != args.String() {
			t.Fatalf("argument deltas %q, final %q", args.String(), it.Arguments.OfString)
		}
	}
	return *final
}

func asAPIError(err error, target **openai.Error) bool {
	e, ok := err.(*openai.Error)
	if ok {
		*target = e
	}
	return ok
}

// TestDropIn_OpenAIErrors: each error reaches the SDK with the status it
// maps to its error class, in OpenAI's shape, on /openai/v1 and its
// aliases.
func TestDropIn_OpenAIErrors(t *testing.T) {
	e, _ := dropinEnv(t)
	e.addLimitedTenant(t)
	ctx := context.Background()
	chat := func(cl openai.Client, text string) error {
		_, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "tier:fast",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(text)}})
		return err
	}
	tests := []struct {
		name   string
		err    func() error
		status int
		typ    string
	}{
		{"bad key", func() error { return chat(oaClient(e, option.WithAPIKey("wrong")), "x") }, 401, "authentication_error"},
		{"policy block", func() error { return chat(oaClient(e), "-----BEGIN PRIVATE KEY-----") }, 403, "permission_error"},
		{"bad request", func() error {
			cl := oaClient(e)
			_, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "tier:fast", N: openai.Int(3),
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
			return err
		}, 400, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var apiErr *openai.Error
			if err := tt.err(); !asAPIError(err, &apiErr) || apiErr.StatusCode != tt.status || apiErr.Type != tt.typ {
				t.Fatalf("err = %v, want %d %s", err, tt.status, tt.typ)
			}
		})
	}
	t.Run("rate limited with Retry-After", func(t *testing.T) {
		cl := oaClient(e, option.WithAPIKey("service"), option.WithHeader("X-Tenant-Id", "tnt_limited"))
		if err := chat(cl, "first"); err != nil {
			t.Fatal(err)
		}
		var raw *http.Response
		_, err := cl.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "tier:fast",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("second")}}, option.WithResponseInto(&raw))
		var apiErr *openai.Error
		if !asAPIError(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type != "rate_limit_error" || apiErr.Response.Header.Get("Retry-After") == "" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("alias paths keep OpenAI shape", func(t *testing.T) {
		cl := openai.NewClient(option.WithBaseURL(e.url+"/v1/"), option.WithAPIKey("user"), option.WithMaxRetries(0))
		var apiErr *openai.Error
		if err := chat(cl, "-----BEGIN PRIVATE KEY-----"); !asAPIError(err, &apiErr) || apiErr.StatusCode != 403 {
			t.Fatalf("err = %v", err)
		}
		var body map[string]json.RawMessage
		if json.Unmarshal([]byte(apiErr.RawJSON()), &body) != nil || body["code"] == nil {
			t.Fatalf("body %s", apiErr.RawJSON())
		}
	})
}
