// Package wire holds the wire types of the model APIs Stack B speaks in both
// directions: as a server (the OpenAI- and Anthropic-compatible surfaces) and
// as a client (the openai and anthropic provider kinds). One set per API, so
// a field fixed for one direction is fixed for the other.
package wire

import (
	"encoding/json"
	"strings"
)

// Function is an OpenAI function definition.
type Function struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

// Tool is an OpenAI chat tool; only "function" tools exist on the wire we
// speak.
type Tool struct {
	Type     string   `json:"type"`
	Function Function `json:"function"`
}

// CallFunc is the function half of a tool call; Arguments is a JSON text.
type CallFunc struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// ToolCall is an assistant's tool call. Index is set in stream chunks only.
type ToolCall struct {
	Index    *int     `json:"index,omitempty"`
	ID       string   `json:"id,omitempty"`
	Type     string   `json:"type,omitempty"`
	Function CallFunc `json:"function"`
}

// Message is one chat message of a request. Content is a JSON string, null,
// or an array of content parts (see MessageText).
type Message struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []ToolCall      `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// StreamOptions asks for the usage chunk at the end of a stream.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatRequest is POST /chat/completions.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	Tools               []Tool          `json:"tools,omitempty"`
	ToolChoice          json.RawMessage `json:"tool_choice,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	MaxTokens           *int            `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int            `json:"max_completion_tokens,omitempty"`
	N                   *int            `json:"n,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *StreamOptions  `json:"stream_options,omitempty"`
}

// Usage is a chat or embeddings usage block.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// OutMessage is the assistant message of a completion.
type OutMessage struct {
	Role      string     `json:"role"`
	Content   *string    `json:"content"`
	Refusal   *string    `json:"refusal"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// Choice is one choice of a completion.
type Choice struct {
	Index        int        `json:"index"`
	Message      OutMessage `json:"message"`
	FinishReason string     `json:"finish_reason"`
	Logprobs     *struct{}  `json:"logprobs"`
}

// ChatResponse is a chat.completion. CorrelationID is an AgentOS addition
// that OpenAI clients ignore.
type ChatResponse struct {
	ID            string   `json:"id"`
	Object        string   `json:"object"`
	Created       int64    `json:"created"`
	Model         string   `json:"model"`
	Choices       []Choice `json:"choices"`
	Usage         Usage    `json:"usage"`
	CorrelationID string   `json:"correlation_id,omitempty"`
}

// Delta is the changing part of a stream chunk.
type Delta struct {
	Role      string     `json:"role,omitempty"`
	Content   *string    `json:"content,omitempty"`
	ToolCalls []ToolCall `json:"tool_calls,omitempty"`
}

// ChunkChoice is one choice of a stream chunk.
type ChunkChoice struct {
	Index        int       `json:"index"`
	Delta        Delta     `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *struct{} `json:"logprobs"`
}

// Chunk is a chat.completion.chunk.
type Chunk struct {
	ID            string        `json:"id"`
	Object        string        `json:"object"`
	Created       int64         `json:"created"`
	Model         string        `json:"model"`
	Choices       []ChunkChoice `json:"choices"`
	Usage         *Usage        `json:"usage,omitempty"`
	CorrelationID string        `json:"correlation_id,omitempty"`
}

// EmbedRequest is POST /embeddings. Input is a string or an array of
// strings.
type EmbedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
}

// Embedding is one item of an embeddings list. Vector is a JSON array of
// floats, or a base64 string of little-endian float32s.
type Embedding struct {
	Object string          `json:"object"`
	Index  int             `json:"index"`
	Vector json.RawMessage `json:"embedding"`
}

// EmbedResponse is the embeddings list.
type EmbedResponse struct {
	Object        string      `json:"object"`
	Data          []Embedding `json:"data"`
	Model         string      `json:"model"`
	Usage         Usage       `json:"usage"`
	CorrelationID string      `json:"correlation_id,omitempty"`
}

// Model is an OpenAI model object.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is GET /models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// ErrorBody is OpenAI's error shape.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"`
	Code    any    `json:"code"`
}

// TextPart is a content part as both chat ("text") and Responses
// ("input_text", "output_text") requests send it.
type TextPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// MessageText reads OpenAI content: a string, null, or an array of text
// parts. ok is false when raw is none of these; bad names the index of a
// part that is not text (-1 when all are).
func MessageText(raw json.RawMessage) (text string, bad int, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", -1, true
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return "", -1, false
		}
		return text, -1, true
	}
	var parts []TextPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", -1, false
	}
	var b strings.Builder
	for i, p := range parts {
		switch p.Type {
		case "text", "input_text", "output_text":
			b.WriteString(p.Text)
		default:
			return "", i, true
		}
	}
	return b.String(), -1, true
}

// String is s as a JSON string.
func String(s string) json.RawMessage {
	raw, _ := json.Marshal(s)
	return raw
}

// SplitWords cuts text into word-sized stream pieces, each ending at a
// space or newline it keeps (the last may not), so the pieces join back to
// text. Both sides of a stream use it: the surfaces' deltas and the fake
// upstreams the tests run.
func SplitWords(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		if text[i] == ' ' || text[i] == '\n' {
			out = append(out, text[start:i+1])
			start = i + 1
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}
