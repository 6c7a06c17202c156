package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/agentos/agentos/core"
)

// AnthropicVersion is the Messages API version the adapter speaks.
const AnthropicVersion = "2023-06-01"

// Anthropic speaks Anthropic's Messages API (POST {base}/v1/messages).
type Anthropic struct {
	Name    string
	BaseURL string // https://api.anthropic.com (with or without /v1)
	APIKey  string
	Client  *http.Client
	// DefaultMaxTokens is sent when the call names none (the API requires it).
	DefaultMaxTokens int
}

type anBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
}

type anMessage struct {
	Role    string    `json:"role"`
	Content []anBlock `json:"content"`
}

type anTool struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	InputSchema map[string]any `json:"input_schema"`
}

type anRequest struct {
	Model       string         `json:"model"`
	MaxTokens   int            `json:"max_tokens"`
	System      string         `json:"system,omitempty"`
	Messages    []anMessage    `json:"messages"`
	Tools       []anTool       `json:"tools,omitempty"`
	ToolChoice  map[string]any `json:"tool_choice,omitempty"`
	Temperature *float64       `json:"temperature,omitempty"`
	TopP        *float64       `json:"top_p,omitempty"`
}

type anResponse struct {
	Content []anBlock `json:"content"`
	Usage   struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

type anError struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
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
func (p *Anthropic) buildRequest(call ChatCall) anRequest {
	req := anRequest{Model: call.Model, MaxTokens: call.MaxTokens, Temperature: call.Temperature, TopP: call.TopP}
	if req.MaxTokens <= 0 {
		req.MaxTokens = p.DefaultMaxTokens
		if req.MaxTokens <= 0 {
			req.MaxTokens = 1024
		}
	}
	var system []string
	add := func(role string, b anBlock) {
		if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == role {
			req.Messages[n-1].Content = append(req.Messages[n-1].Content, b)
			return
		}
		req.Messages = append(req.Messages, anMessage{Role: role, Content: []anBlock{b}})
	}
	for _, m := range call.Messages {
		switch m.Role {
		case "system":
			system = append(system, m.Content)
		case "tool":
			add("user", anBlock{Type: "tool_result", ToolUseID: m.ToolCallID, Content: m.Content})
		case "assistant":
			if m.Content != "" {
				add("assistant", anBlock{Type: "text", Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				in, _ := json.Marshal(tc.Arguments)
				name := tc.Name
				if name == "" {
					name = tc.ToolID
				}
				add("assistant", anBlock{Type: "tool_use", ID: tc.ID, Name: name, Input: in})
			}
		default:
			add("user", anBlock{Type: "text", Text: m.Content})
		}
	}
	req.System = strings.Join(system, "\n\n")
	for _, t := range call.Tools {
		schema := t.InputSchema
		if schema == nil {
			schema = map[string]any{"type": "object"}
		}
		req.Tools = append(req.Tools, anTool{Name: FunctionName(t), Description: t.Description, InputSchema: schema})
	}
	if len(req.Tools) > 0 {
		switch call.ToolChoice {
		case "none":
			req.ToolChoice = map[string]any{"type": "none"}
		case "required", "any":
			req.ToolChoice = map[string]any{"type": "any"}
		case "", "auto":
		default:
			req.ToolChoice = map[string]any{"type": "tool", "name": call.ToolChoice}
		}
	}
	return req
}

// Chat implements Provider.
func (p *Anthropic) Chat(ctx context.Context, call ChatCall) (ChatResult, error) {
	body, err := json.Marshal(p.buildRequest(call))
	if err != nil {
		return ChatResult{}, fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url(), bytes.NewReader(body))
	if err != nil {
		return ChatResult{}, core.Errorf(core.CodeDependencyUnavailable, "backend %s: bad base_url: %v", p.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("anthropic-version", AnthropicVersion)
	if p.APIKey != "" {
		req.Header.Set("x-api-key", p.APIKey)
	}
	if tp := core.Traceparent(ctx); tp != "" {
		req.Header.Set("traceparent", tp)
	}
	hc := p.Client
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ChatResult{}, transportError(ctx, p.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var eb anError
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = json.Unmarshal(raw, &eb)
		return ChatResult{}, statusError(p.Name, resp.StatusCode, eb.Error.Message)
	}
	var ar anResponse
	if err := json.NewDecoder(resp.Body).Decode(&ar); err != nil {
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
			args := map[string]any{}
			if len(b.Input) > 0 {
				_ = json.Unmarshal(b.Input, &args)
			}
			id := toolIDs[b.Name]
			if id == "" {
				id = b.Name
			}
			res.ToolCalls = append(res.ToolCalls, core.ToolCall{ID: b.ID, ToolID: id, Name: b.Name, Arguments: args})
		}
	}
	res.Message.Content = strings.Join(text, "")
	res.Usage = core.Usage{InputTokens: ar.Usage.InputTokens, OutputTokens: ar.Usage.OutputTokens,
		TotalTokens: ar.Usage.InputTokens + ar.Usage.OutputTokens}
	return res, nil
}

// Embed implements Provider: the Messages API has no embeddings.
func (p *Anthropic) Embed(ctx context.Context, model string, texts []string) (EmbedResult, error) {
	return EmbedResult{}, core.Errorf(core.CodeInvalidRequest, "backend %s: %v", p.Name, errNoEmbed).With("field", "request.operation")
}
