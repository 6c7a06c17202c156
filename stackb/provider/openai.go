package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/wire"
)

// OpenAI speaks the OpenAI chat completions and embeddings wire format, so
// it serves OpenAI itself, vLLM, Ollama, llama.cpp and TGI alike.
type OpenAI struct {
	Name    string // backend name, for errors
	BaseURL string // e.g. http://127.0.0.1:8000/v1
	APIKey  string
	Client  *http.Client
}

func init() {
	Register(Kind{Name: "openai", New: func(s Spec) (Provider, error) {
		if s.BaseURL == "" {
			return nil, fmt.Errorf("base_url: required for kind openai")
		}
		return &OpenAI{Name: s.Name, BaseURL: s.BaseURL, APIKey: s.APIKey, Client: s.Client}, nil
	}})
}

func (p *OpenAI) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return http.DefaultClient
}

// send POSTs body as JSON to path and returns a 2xx response (the caller
// closes its body); other statuses and transport failures become contract
// errors.
func (p *OpenAI) send(ctx context.Context, path string, body any, accept string) (*http.Response, error) {
	// A fresh slice, not a pooled buffer: net/http's Transport may still be
	// writing the request body after Do returns (its write loop runs apart
	// from the response), so the bytes must outlive this call.
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return postJSON(ctx, p.client(), p.Name, strings.TrimRight(p.BaseURL, "/")+path, raw, func(h http.Header) {
		if accept != "" {
			h.Set("Accept", accept)
		}
		if p.APIKey != "" {
			h.Set("Authorization", "Bearer "+p.APIKey)
		}
	})
}

// post sends body as JSON to path and decodes a 2xx answer into out.
func (p *OpenAI) post(ctx context.Context, path string, body, out any) error {
	resp, err := p.send(ctx, path, body, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := decodeAnswer(resp.Body, out); err != nil {
		if ctx.Err() != nil {
			return transportError(ctx, p.Name, ctx.Err())
		}
		return decodeErr(p.Name, err)
	}
	return nil
}

// stream sends a streaming chat request, hands each content piece to
// onDelta as it arrives, and assembles the whole answer into out as a
// non-streamed response would read.
func (p *OpenAI) stream(ctx context.Context, body *wire.ChatRequest, onDelta func(string) error, out *wire.ChatResponse) error {
	resp, err := p.send(ctx, "/chat/completions", body, "text/event-stream")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		// A server that ignores "stream": answer whole.
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return decodeErr(p.Name, err)
		}
		return nil
	}
	var content strings.Builder
	type callParts struct{ id, name, args strings.Builder }
	var calls []*callParts
	done := false
	err = readSSE(ctx, p.Name, resp.Body, func(data []byte) (bool, error) {
		if string(data) == "[DONE]" {
			done = true
			return false, nil
		}
		var ch wire.Chunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return false, decodeErr(p.Name, err)
		}
		if ch.Usage != nil {
			out.Usage = *ch.Usage
		}
		for _, c := range ch.Choices {
			if d := c.Delta.Content; d != nil && *d != "" {
				content.WriteString(*d)
				if err := onDelta(*d); err != nil {
					return false, err
				}
			}
			for _, tc := range c.Delta.ToolCalls {
				i := 0
				if tc.Index != nil {
					i = *tc.Index
				}
				if i < 0 || i > 128 {
					return false, decodeErr(p.Name, fmt.Errorf("tool call index %d", i))
				}
				for len(calls) <= i {
					calls = append(calls, &callParts{})
				}
				cp := calls[i]
				cp.id.WriteString(tc.ID)
				cp.name.WriteString(tc.Function.Name)
				cp.args.WriteString(tc.Function.Arguments)
			}
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if !done {
		return core.Errorf(core.CodeDependencyUnavailable, "backend %s: stream ended before [DONE]", p.Name).With("backend", p.Name)
	}
	text := content.String()
	msg := wire.OutMessage{Role: "assistant", Content: &text}
	for _, cp := range calls {
		msg.ToolCalls = append(msg.ToolCalls, wire.ToolCall{ID: cp.id.String(), Type: "function",
			Function: wire.CallFunc{Name: cp.name.String(), Arguments: cp.args.String()}})
	}
	out.Choices = []wire.Choice{{Message: msg}}
	return nil
}

// Chat implements Provider.
func (p *OpenAI) Chat(ctx context.Context, call ChatCall) (ChatResult, error) {
	req := wire.ChatRequest{Model: call.Model, Temperature: call.Temperature, TopP: call.TopP,
		Messages: make([]wire.Message, 0, len(call.Messages))}
	if call.MaxTokens > 0 {
		req.MaxTokens = &call.MaxTokens
	}
	toolIDs := map[string]string{} // function name → tool_id
	for _, t := range call.Tools {
		name := FunctionName(t)
		toolIDs[name] = t.ToolID
		req.Tools = append(req.Tools, wire.Tool{Type: "function", Function: wire.Function{Name: name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if len(req.Tools) > 0 && call.ToolChoice != "" {
		switch call.ToolChoice {
		case "auto", "none", "required":
			req.ToolChoice = wire.String(call.ToolChoice)
		default:
			req.ToolChoice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": call.ToolChoice}})
		}
	}
	for _, m := range call.Messages {
		om := wire.Message{Role: m.Role, Content: wire.String(m.Content), Name: m.Name, ToolCallID: m.ToolCallID}
		if m.Role == "assistant" && len(m.ToolCalls) > 0 && m.Content == "" {
			om.Content = json.RawMessage("null")
		}
		if m.Role == "tool" {
			om.Name = ""
		}
		for _, tc := range m.ToolCalls {
			args, _ := json.Marshal(tc.Arguments)
			name := tc.Name
			if name == "" {
				name = tc.ToolID
			}
			om.ToolCalls = append(om.ToolCalls, wire.ToolCall{ID: tc.ID, Type: "function", Function: wire.CallFunc{Name: name, Arguments: string(args)}})
		}
		req.Messages = append(req.Messages, om)
	}
	var resp wire.ChatResponse
	if call.OnDelta != nil {
		req.Stream = true
		req.StreamOptions = &wire.StreamOptions{IncludeUsage: true}
		if err := p.stream(ctx, &req, call.OnDelta, &resp); err != nil {
			return ChatResult{}, err
		}
	} else if err := p.post(ctx, "/chat/completions", &req, &resp); err != nil {
		return ChatResult{}, err
	}
	if len(resp.Choices) == 0 {
		return ChatResult{}, decodeErr(p.Name, fmt.Errorf("no choices"))
	}
	msg := resp.Choices[0].Message
	res := ChatResult{Message: core.ChatMessage{Role: "assistant"}}
	if msg.Content != nil {
		res.Message.Content = *msg.Content
	}
	for _, tc := range msg.ToolCalls {
		res.ToolCalls = append(res.ToolCalls, toolCall(tc.ID, tc.Function.Name, []byte(tc.Function.Arguments), toolIDs))
	}
	res.Usage = core.Usage{InputTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.CompletionTokens}
	res.Usage.TotalTokens = res.Usage.InputTokens + res.Usage.OutputTokens
	return res, nil
}

// toolCall maps a backend's tool call back to the gateway's: the function
// name back to the offered tool's id, the arguments decoded (kept raw
// under "_raw" when they are not a JSON object).
func toolCall(id, name string, args []byte, toolIDs map[string]string) core.ToolCall {
	m := map[string]any{}
	if len(args) > 0 {
		if err := json.Unmarshal(args, &m); err != nil || m == nil {
			m = map[string]any{"_raw": string(args)}
		}
	}
	tid := toolIDs[name]
	if tid == "" {
		tid = name
	}
	return core.ToolCall{ID: id, ToolID: tid, Name: name, Arguments: m}
}

// FunctionName is the function name a tool is offered under: its name, or
// its id with the characters OpenAI refuses replaced.
func FunctionName(t core.ModelTool) string {
	n := t.Name
	if n == "" {
		n = t.ToolID
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, n)
}

// Embed implements Provider.
func (p *OpenAI) Embed(ctx context.Context, model string, texts []string) (EmbedResult, error) {
	in, err := json.Marshal(texts)
	if err != nil {
		return EmbedResult{}, fmt.Errorf("encode request: %w", err)
	}
	var resp wire.EmbedResponse
	if err := p.post(ctx, "/embeddings", &wire.EmbedRequest{Model: model, Input: in}, &resp); err != nil {
		return EmbedResult{}, err
	}
	res := EmbedResult{Vectors: make([][]float64, len(texts))}
	for _, d := range resp.Data {
		if d.Index >= 0 && d.Index < len(texts) {
			if err := json.Unmarshal(d.Vector, &res.Vectors[d.Index]); err != nil {
				return EmbedResult{}, decodeErr(p.Name, err)
			}
		}
	}
	for i, v := range res.Vectors {
		if v == nil {
			return EmbedResult{}, decodeErr(p.Name, fmt.Errorf("no embedding for input %d", i))
		}
	}
	res.Usage = core.Usage{InputTokens: resp.Usage.PromptTokens, TotalTokens: resp.Usage.PromptTokens}
	return res, nil
}
