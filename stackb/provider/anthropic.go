package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/wire"
)

// AnthropicVersion is the Messages API version the adapter speaks.
const AnthropicVersion = wire.AnthropicVersion

func init() {
	Register(Kind{Name: "anthropic", New: func(s Spec) (Provider, error) {
		return &Anthropic{Name: s.Name, BaseURL: s.BaseURL, APIKey: s.APIKey, Client: s.Client}, nil
	}})
}

// Anthropic speaks Anthropic's Messages API (POST {base}/v1/messages).
type Anthropic struct {
	Name    string
	BaseURL string // https://api.anthropic.com (with or without /v1)
	APIKey  string
	Client  *http.Client
	// DefaultMaxTokens is sent when the call names none (the API requires it).
	DefaultMaxTokens int
}

func (p *Anthropic) url() string {
	base := strings.TrimRight(p.BaseURL, "/")
	if base == "" {
		base = "https://api.anthropic.com"
	}
	if strings.HasSuffix(base, "/v1") {
		return base + "/messages"
	}
	return base + "/v1/messages"
}

// buildRequest maps the gateway's chat call to a Messages request: system
// messages join the system prompt, tool results become tool_result blocks
// of a user turn, and consecutive turns of one role merge (the API wants
// user and assistant to alternate).
func (p *Anthropic) buildRequest(call ChatCall) wire.MessagesRequest {
	req := wire.MessagesRequest{Model: call.Model, MaxTokens: call.MaxTokens, Temperature: call.Temperature, TopP: call.TopP}
	if req.MaxTokens <= 0 {
		req.MaxTokens = p.DefaultMaxTokens
		if req.MaxTokens <= 0 {
			req.MaxTokens = 1024
		}
	}
	var system []string
	add := func(role string, b wire.Block) {
		if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == role {
			req.Messages[n-1].Content = append(req.Messages[n-1].Content, b)
			return
		}
		req.Messages = append(req.Messages, wire.MessageParam{Role: role, Content: wire.Blocks{b}})
	}
	for _, m := range call.Messages {
		switch m.Role {
		case "system":
			system = append(system, m.Content)
		case "tool":
			add("user", wire.Block{Type: "tool_result", ToolUseID: m.ToolCallID, Content: wire.String(m.Content)})
		case "assistant":
			if m.Content != "" {
				add("assistant", wire.Block{Type: "text", Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				in, _ := json.Marshal(tc.Arguments)
				name := tc.Name
				if name == "" {
					name = tc.ToolID
				}
				add("assistant", wire.Block{Type: "tool_use", ID: tc.ID, Name: FunctionName(core.ModelTool{Name: name}), Input: in})
			}
		default:
			add("user", wire.Block{Type: "text", Text: m.Content})
		}
	}
	req.System = wire.Text(strings.Join(system, "\n\n"))
	for _, t := range call.Tools {
		schema := t.InputSchema
		if schema == nil {
			schema = map[string]any{"type": "object"}
		}
		req.Tools = append(req.Tools, wire.AnthropicTool{Name: FunctionName(t), Description: t.Description, InputSchema: schema})
	}
	if len(req.Tools) > 0 {
		switch call.ToolChoice {
		case "none":
			req.ToolChoice = &wire.ToolChoice{Type: "none"}
		case "required", "any":
			req.ToolChoice = &wire.ToolChoice{Type: "any"}
		case "", "auto":
		default:
			req.ToolChoice = &wire.ToolChoice{Type: "tool", Name: call.ToolChoice}
		}
	}
	return req
}

// send POSTs the request and returns a 2xx response (the caller closes its
// body); other statuses and transport failures become contract errors.
func (p *Anthropic) send(ctx context.Context, body *wire.MessagesRequest) (*http.Response, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return postJSON(ctx, p.Client, p.Name, p.url(), raw, func(h http.Header) {
		h.Set("anthropic-version", AnthropicVersion)
		if body.Stream {
			h.Set("Accept", "text/event-stream")
		}
		if p.APIKey != "" {
			h.Set("x-api-key", p.APIKey)
		}
	})
}

// Chat implements Provider. With call.OnDelta set it asks for the event
// stream and passes each text delta on as it arrives.
func (p *Anthropic) Chat(ctx context.Context, call ChatCall) (ChatResult, error) {
	body := p.buildRequest(call)
	body.Stream = call.OnDelta != nil
	resp, err := p.send(ctx, &body)
	if err != nil {
		return ChatResult{}, err
	}
	defer resp.Body.Close()
	var ar wire.MessageResponse
	if body.Stream && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if err := p.stream(ctx, resp.Body, call.OnDelta, &ar); err != nil {
			return ChatResult{}, err
		}
	} else if err := decodeAnswer(resp.Body, &ar); err != nil {
		if ctx.Err() != nil {
			return ChatResult{}, transportError(ctx, p.Name, ctx.Err())
		}
		return ChatResult{}, decodeErr(p.Name, err)
	}
	toolIDs := map[string]string{}
	for _, t := range call.Tools {
		toolIDs[FunctionName(t)] = t.ToolID
	}
	res := ChatResult{Message: core.ChatMessage{Role: "assistant"}}
	var text []string
	for _, b := range ar.Content {
		switch b.Type {
		case "text":
			text = append(text, b.Text)
		case "tool_use":
			res.ToolCalls = append(res.ToolCalls, toolCall(b.ID, b.Name, b.Input, toolIDs))
		}
	}
	res.Message.Content = strings.Join(text, "")
	res.Usage = core.Usage{InputTokens: ar.Usage.InputTokens, OutputTokens: ar.Usage.OutputTokens,
		TotalTokens: ar.Usage.InputTokens + ar.Usage.OutputTokens}
	return res, nil
}

// stream reads a Messages event stream into out as the whole message would
// read, handing each text delta to onDelta as it arrives.
func (p *Anthropic) stream(ctx context.Context, r io.Reader, onDelta func(string) error, out *wire.MessageResponse) error {
	stopped := false
	var blocks []*wire.Block
	var inputs []*strings.Builder
	block := func(i *int) (*wire.Block, *strings.Builder, error) {
		if i == nil || *i < 0 || *i >= len(blocks) {
			return nil, nil, decodeErr(p.Name, fmt.Errorf("event for unknown content block"))
		}
		return blocks[*i], inputs[*i], nil
	}
	err := readSSE(ctx, p.Name, r, func(data []byte) (bool, error) {
		var ev wire.Event
		if err := json.Unmarshal(data, &ev); err != nil {
			return false, decodeErr(p.Name, err)
		}
		switch ev.Type {
		case "message_start":
			if ev.Message != nil {
				out.ID, out.Model, out.Usage = ev.Message.ID, ev.Message.Model, ev.Message.Usage
			}
		case "content_block_start":
			if ev.ContentBlock == nil || ev.Index == nil || *ev.Index != len(blocks) || len(blocks) > 256 {
				return false, decodeErr(p.Name, fmt.Errorf("content blocks out of order"))
			}
			b := *ev.ContentBlock
			in := &strings.Builder{}
			if b.Type == "tool_use" && len(b.Input) > 0 && string(b.Input) != "{}" {
				in.Write(b.Input)
			}
			b.Input = nil
			blocks, inputs = append(blocks, &b), append(inputs, in)
			if b.Type == "text" && b.Text != "" {
				return true, onDelta(b.Text)
			}
		case "content_block_delta":
			b, in, err := block(ev.Index)
			if err != nil || ev.Delta == nil {
				return false, err
			}
			switch ev.Delta.Type {
			case "text_delta":
				b.Text += ev.Delta.Text
				if ev.Delta.Text != "" {
					return true, onDelta(ev.Delta.Text)
				}
			case "input_json_delta":
				in.WriteString(ev.Delta.PartialJSON)
			}
		case "message_delta":
			if ev.Delta != nil {
				out.StopReason = ev.Delta.StopReason
			}
			if ev.Usage != nil {
				out.Usage.OutputTokens = ev.Usage.OutputTokens
				if ev.Usage.InputTokens > 0 {
					out.Usage.InputTokens = ev.Usage.InputTokens
				}
			}
		case "message_stop":
			stopped = true
			return false, nil
		case "error":
			msg := "stream error"
			if ev.Error != nil {
				msg = ev.Error.Type + ": " + ev.Error.Message
			}
			return false, core.Errorf(core.CodeDependencyUnavailable, "backend %s: %s", p.Name, msg).With("backend", p.Name)
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	if !stopped {
		return core.Errorf(core.CodeDependencyUnavailable, "backend %s: stream ended before message_stop", p.Name).With("backend", p.Name)
	}
	for i, b := range blocks {
		if b.Type == "tool_use" {
			b.Input = json.RawMessage(inputs[i].String())
		}
		out.Content = append(out.Content, *b)
	}
	return nil
}

// Embed implements Provider: the Messages API has no embeddings.
func (p *Anthropic) Embed(ctx context.Context, model string, texts []string) (EmbedResult, error) {
	return EmbedResult{}, core.Errorf(core.CodeInvalidRequest, "backend %s: %v", p.Name, errNoEmbed).With("field", "request.operation")
}
