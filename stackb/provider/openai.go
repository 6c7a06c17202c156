package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/agentos/agentos/core"
)

// OpenAI speaks the OpenAI chat completions and embeddings wire format, so
// it serves OpenAI itself, vLLM, Ollama, llama.cpp and TGI alike.
type OpenAI struct {
	Name    string // backend name, for errors
	BaseURL string // e.g. http://127.0.0.1:8000/v1
	APIKey  string
	Client  *http.Client
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type oaFunction struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

type oaTool struct {
	Type     string     `json:"type"`
	Function oaFunction `json:"function"`
}

type oaCallFunc struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type oaToolCall struct {
	ID       string     `json:"id"`
	Type     string     `json:"type"`
	Function oaCallFunc `json:"function"`
}

type oaMessage struct {
	Role       string       `json:"role"`
	Content    *string      `json:"content"`
	Name       string       `json:"name,omitempty"`
	ToolCallID string       `json:"tool_call_id,omitempty"`
	ToolCalls  []oaToolCall `json:"tool_calls,omitempty"`
}

type oaChatRequest struct {
	Model       string      `json:"model"`
	Messages    []oaMessage `json:"messages"`
	Tools       []oaTool    `json:"tools,omitempty"`
	ToolChoice  string      `json:"tool_choice,omitempty"`
	Temperature *float64    `json:"temperature,omitempty"`
	TopP        *float64    `json:"top_p,omitempty"`
	MaxTokens   int         `json:"max_tokens,omitempty"`
	Stream      bool        `json:"stream,omitempty"`
	// StreamOptions asks for the usage chunk at the end of a stream.
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options,omitempty"`
}

// oaChunk is one chunk of a streamed chat completion.
type oaChunk struct {
	Choices []struct {
		Delta struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *oaUsage `json:"usage"`
}

type oaUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type oaChatResponse struct {
	Choices []struct {
		Message struct {
			Content   *string      `json:"content"`
			ToolCalls []oaToolCall `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
	Usage oaUsage `json:"usage"`
}

type oaErrorBody struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
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
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(body); err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(p.BaseURL, "/")+path, bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, core.Errorf(core.CodeDependencyUnavailable, "backend %s: bad base_url: %v", p.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if p.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+p.APIKey)
	}
	if tp := core.Traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	resp, err := p.client().Do(req)
	if err != nil {
		return nil, transportError(ctx, p.Name, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		var eb oaErrorBody
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(raw, &eb)
		return nil, statusError(p.Name, resp.StatusCode, eb.Error.Message)
	}
	return resp, nil
}

// post sends body as JSON to path and decodes a 2xx answer into out.
func (p *OpenAI) post(ctx context.Context, path string, body, out any) error {
	resp, err := p.send(ctx, path, body, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
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
func (p *OpenAI) stream(ctx context.Context, body oaChatRequest, onDelta func(string) error, out *oaChatResponse) error {
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
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	done := false
	for !done && sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("data:")) {
			continue
		}
		data := bytes.TrimSpace(line[len("data:"):])
		if string(data) == "[DONE]" {
			done = true
			break
		}
		var ch oaChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return decodeErr(p.Name, err)
		}
		if ch.Usage != nil {
			out.Usage = *ch.Usage
		}
		for _, c := range ch.Choices {
			if d := c.Delta.Content; d != nil && *d != "" {
				content.WriteString(*d)
				if err := onDelta(*d); err != nil {
					return err
				}
			}
			for _, tc := range c.Delta.ToolCalls {
				for len(calls) <= tc.Index {
					calls = append(calls, &callParts{})
				}
				cp := calls[tc.Index]
				cp.id.WriteString(tc.ID)
				cp.name.WriteString(tc.Function.Name)
				cp.args.WriteString(tc.Function.Arguments)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return transportError(ctx, p.Name, err)
	}
	if !done {
		return core.Errorf(core.CodeDependencyUnavailable, "backend %s: stream ended before [DONE]", p.Name).With("backend", p.Name)
	}
	text := content.String()
	out.Choices = make([]struct {
		Message struct {
			Content   *string      `json:"content"`
			ToolCalls []oaToolCall `json:"tool_calls"`
		} `json:"message"`
	}, 1)
	out.Choices[0].Message.Content = &text
	for _, cp := range calls {
		out.Choices[0].Message.ToolCalls = append(out.Choices[0].Message.ToolCalls,
			oaToolCall{ID: cp.id.String(), Type: "function", Function: oaCallFunc{Name: cp.name.String(), Arguments: cp.args.String()}})
	}
	return nil
}

// Chat implements Provider.
func (p *OpenAI) Chat(ctx context.Context, call ChatCall) (ChatResult, error) {
	req := oaChatRequest{Model: call.Model, Temperature: call.Temperature, TopP: call.TopP, MaxTokens: call.MaxTokens,
		Messages: make([]oaMessage, 0, len(call.Messages))}
	toolIDs := map[string]string{} // function name → tool_id
	for _, t := range call.Tools {
		name := FunctionName(t)
		toolIDs[name] = t.ToolID
		req.Tools = append(req.Tools, oaTool{Type: "function", Function: oaFunction{Name: name, Description: t.Description, Parameters: t.InputSchema}})
	}
	if len(req.Tools) > 0 {
		req.ToolChoice = call.ToolChoice
	}
	for _, m := range call.Messages {
		content := m.Content
		om := oaMessage{Role: m.Role, Content: &content, Name: m.Name, ToolCallID: m.ToolCallID}
		if m.Role == "assistant" && len(m.ToolCalls) > 0 && content == "" {
			om.Content = nil
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
			om.ToolCalls = append(om.ToolCalls, oaToolCall{ID: tc.ID, Type: "function", Function: oaCallFunc{Name: name, Arguments: string(args)}})
		}
		req.Messages = append(req.Messages, om)
	}
	var resp oaChatResponse
	if call.OnDelta != nil {
		req.Stream = true
		req.StreamOptions = &struct {
			IncludeUsage bool `json:"include_usage"`
		}{true}
		if err := p.stream(ctx, req, call.OnDelta, &resp); err != nil {
			return ChatResult{}, err
		}
	} else if err := p.post(ctx, "/chat/completions", req, &resp); err != nil {
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
		args := map[string]any{}
		if tc.Function.Arguments != "" {
			if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil {
				args = map[string]any{"_raw": tc.Function.Arguments}
			}
		}
		id := toolIDs[tc.Function.Name]
		if id == "" {
			id = tc.Function.Name
		}
		res.ToolCalls = append(res.ToolCalls, core.ToolCall{ID: tc.ID, ToolID: id, Name: tc.Function.Name, Arguments: args})
	}
	res.Usage = core.Usage{InputTokens: resp.Usage.PromptTokens, OutputTokens: resp.Usage.CompletionTokens}
	res.Usage.TotalTokens = res.Usage.InputTokens + res.Usage.OutputTokens
	return res, nil
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

type oaEmbedRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type oaEmbedResponse struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
	Usage oaUsage `json:"usage"`
}

// Embed implements Provider.
func (p *OpenAI) Embed(ctx context.Context, model string, texts []string) (EmbedResult, error) {
	var resp oaEmbedResponse
	if err := p.post(ctx, "/embeddings", oaEmbedRequest{Model: model, Input: texts}, &resp); err != nil {
		return EmbedResult{}, err
	}
	res := EmbedResult{Vectors: make([][]float64, len(texts))}
	for _, d := range resp.Data {
		if d.Index >= 0 && d.Index < len(texts) {
			res.Vectors[d.Index] = d.Embedding
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
