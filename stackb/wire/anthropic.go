package wire

import (
	"encoding/json"
	"errors"
	"strings"
)

// AnthropicVersion is the Messages API version spoken in both directions.
const AnthropicVersion = "2023-06-01"

// Block is one content block of the Messages API: text, tool_use or
// tool_result. Content (tool_result) is a string or an array of text
// blocks; see BlockText.
type Block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   json.RawMessage `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

// MarshalJSON writes the fields of the block's type, always including
// "text" on text blocks and "input" on tool_use blocks as the API does.
func (b Block) MarshalJSON() ([]byte, error) {
	switch b.Type {
	case "text":
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{b.Type, b.Text})
	case "tool_use":
		in := b.Input
		if len(in) == 0 {
			in = json.RawMessage("{}")
		}
		return json.Marshal(struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		}{b.Type, b.ID, b.Name, in})
	}
	type plain Block
	return json.Marshal(plain(b))
}

// Blocks is message content: an array of blocks, or on input a plain
// string (one text block).
type Blocks []Block

// UnmarshalJSON accepts a string or an array of blocks.
func (bs *Blocks) UnmarshalJSON(raw []byte) error {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		*bs = Blocks{{Type: "text", Text: s}}
		return nil
	}
	var out []Block
	if err := json.Unmarshal(raw, &out); err != nil {
		return errors.New("content must be a string or an array of content blocks")
	}
	*bs = out
	return nil
}

// Text is a system prompt: sent as a string, read from a string or an
// array of text blocks.
type Text string

// UnmarshalJSON accepts a string or an array of text blocks.
func (t *Text) UnmarshalJSON(raw []byte) error {
	var bs Blocks
	if err := bs.UnmarshalJSON(raw); err != nil {
		return errors.New("system must be a string or an array of text blocks")
	}
	var parts []string
	for _, b := range bs {
		if b.Type != "text" {
			return errors.New("system blocks must be text")
		}
		parts = append(parts, b.Text)
	}
	*t = Text(strings.Join(parts, "\n\n"))
	return nil
}

// BlockText reads a tool_result's content: a string or text blocks.
func BlockText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var bs Blocks
	if err := bs.UnmarshalJSON(raw); err != nil {
		return "", err
	}
	var b strings.Builder
	for _, x := range bs {
		if x.Type != "text" {
			return "", errors.New("only text content is supported in tool results")
		}
		b.WriteString(x.Text)
	}
	return b.String(), nil
}

// MessageParam is one turn of a Messages request.
type MessageParam struct {
	Role    string `json:"role"`
	Content Blocks `json:"content"`
}

// AnthropicTool is a tool offered to the model.
type AnthropicTool struct {
	Type        string         `json:"type,omitempty"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	InputSchema map[string]any `json:"input_schema"`
}

// ToolChoice is auto, any, tool (with Name) or none.
type ToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use,omitempty"`
}

// MessagesRequest is POST /v1/messages (and, without max_tokens and
// stream, /v1/messages/count_tokens).
type MessagesRequest struct {
	Model         string          `json:"model"`
	MaxTokens     int             `json:"max_tokens,omitempty"`
	System        Text            `json:"system,omitempty"`
	Messages      []MessageParam  `json:"messages"`
	Tools         []AnthropicTool `json:"tools,omitempty"`
	ToolChoice    *ToolChoice     `json:"tool_choice,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
}

// AnthropicUsage is the usage block of a message.
type AnthropicUsage struct {
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
}

// MessageResponse is a message object.
type MessageResponse struct {
	ID           string         `json:"id"`
	Type         string         `json:"type"`
	Role         string         `json:"role"`
	Model        string         `json:"model"`
	Content      []Block        `json:"content"`
	StopReason   *string        `json:"stop_reason"`
	StopSequence *string        `json:"stop_sequence"`
	Usage        AnthropicUsage `json:"usage"`
}

// EventDelta is the delta of content_block_delta (text_delta,
// input_json_delta) and message_delta (stop_reason).
type EventDelta struct {
	Type         string  `json:"type,omitempty"`
	Text         string  `json:"text,omitempty"`
	PartialJSON  string  `json:"partial_json,omitempty"`
	StopReason   *string `json:"stop_reason,omitempty"`
	StopSequence *string `json:"stop_sequence,omitempty"`
}

// Event is one event of a Messages stream; Type says which fields are set:
// message_start (Message), content_block_start (Index, ContentBlock),
// content_block_delta (Index, Delta), content_block_stop (Index),
// message_delta (Delta, Usage), message_stop, ping, error (Error).
type Event struct {
	Type         string           `json:"type"`
	Message      *MessageResponse `json:"message,omitempty"`
	Index        *int             `json:"index,omitempty"`
	ContentBlock *Block           `json:"content_block,omitempty"`
	Delta        *EventDelta      `json:"delta,omitempty"`
	Usage        *AnthropicUsage  `json:"usage,omitempty"`
	Error        *AnthropicError  `json:"error,omitempty"`
}

// AnthropicError is the inside of the error shape.
type AnthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// AnthropicErrorBody is {"type":"error","error":{...}}.
type AnthropicErrorBody struct {
	Type  string         `json:"type"`
	Error AnthropicError `json:"error"`
}

// TokenCount answers /v1/messages/count_tokens.
type TokenCount struct {
	InputTokens int `json:"input_tokens"`
}

// AnthropicModel is a model object of GET /v1/models.
type AnthropicModel struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	CreatedAt   string `json:"created_at"`
}

// AnthropicModelList is GET /v1/models.
type AnthropicModelList struct {
	Data    []AnthropicModel `json:"data"`
	HasMore bool             `json:"has_more"`
	FirstID *string          `json:"first_id"`
	LastID  *string          `json:"last_id"`
}
