package stackb

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/stackb/wire"
	"github.com/labstack/echo/v4"
)

// The Anthropic-compatible surface under /anthropic (the base URL to give
// Anthropic SDKs): Messages, count_tokens and models. Auth is the node's
// (x-api-key or Bearer both carry an AgentOS key); errors take Anthropic's
// shape (CompatError). A Messages request becomes one canonical chat
// request, governed exactly like models:invoke.

// messagesToModelRequest maps a Messages request onto the canonical one:
// the system prompt first, each user turn's tool_result blocks as tool
// messages (then its text as a user message), each assistant turn's text
// and tool_use blocks as one assistant message.
func messagesToModelRequest(r *wire.MessagesRequest, countOnly bool) (core.ModelRequest, error) {
	req := core.ModelRequest{Operation: core.OpChat, ModelRef: r.Model}
	if r.Model == "" {
		return req, core.Invalid("model", "model is required")
	}
	if !countOnly && r.MaxTokens < 1 {
		return req, core.Invalid("max_tokens", "max_tokens is required and must be ≥ 1")
	}
	if len(r.Messages) == 0 {
		return req, core.Invalid("messages", "at least one message is required")
	}
	if r.System != "" {
		req.Input.Messages = append(req.Input.Messages, core.ChatMessage{Role: "system", Content: string(r.System)})
	}
	names := map[string]string{} // tool_use id → name
	for i, m := range r.Messages {
		field := "messages[" + strconv.Itoa(i) + "]"
		if m.Role != "user" && m.Role != "assistant" {
			return req, core.Invalid(field+".role", "unknown role %q (want user or assistant)", m.Role)
		}
		var text []string
		var calls []core.ToolCall
		for j, b := range m.Content {
			bf := field + ".content[" + strconv.Itoa(j) + "]"
			switch {
			case b.Type == "text":
				text = append(text, b.Text)
			case b.Type == "tool_use" && m.Role == "assistant":
				args, err := toolArgs(string(b.Input), bf+".input")
				if err != nil {
					return req, err
				}
				names[b.ID] = b.Name
				calls = append(calls, core.ToolCall{ID: b.ID, ToolID: b.Name, Name: b.Name, Arguments: args})
			case b.Type == "tool_result" && m.Role == "user":
				out, err := wire.BlockText(b.Content)
				if err != nil {
					return req, core.Invalid(bf+".content", "%v", err)
				}
				if b.IsError {
					out = "error: " + out
				}
				req.Input.Messages = append(req.Input.Messages, core.ChatMessage{Role: "tool", ToolCallID: b.ToolUseID, Name: names[b.ToolUseID], Content: out})
			default:
				return req, core.Invalid(bf+".type", "%s blocks are not supported in %s turns (want text, tool_use or tool_result)", b.Type, m.Role)
			}
		}
		if len(text) > 0 || len(calls) > 0 {
			req.Input.Messages = append(req.Input.Messages, core.ChatMessage{Role: m.Role, Content: strings.Join(text, ""), ToolCalls: calls})
		}
	}
	for i, t := range r.Tools {
		if t.Type != "" && t.Type != "custom" {
			return req, core.Invalid("tools["+strconv.Itoa(i)+"].type", "only custom (client) tools are supported, not %q", t.Type)
		}
		req.Input.Tools = append(req.Input.Tools, core.ModelTool{ToolID: t.Name, Name: t.Name, Description: t.Description, InputSchema: t.InputSchema})
	}
	if tc := r.ToolChoice; tc != nil {
		switch tc.Type {
		case "auto":
			req.Input.ToolChoice = "auto"
		case "any":
			req.Input.ToolChoice = "required"
		case "none":
			req.Input.ToolChoice = "none"
		case "tool":
			req.Input.ToolChoice = tc.Name
		default:
			return req, core.Invalid("tool_choice.type", "unknown tool_choice type %q (want auto, any, tool or none)", tc.Type)
		}
	}
	if !countOnly {
		req.Generation = generation(r.Temperature, r.TopP, &r.MaxTokens)
	}
	return req, nil
}

// anthropicMessage is the message object of an answer.
func anthropicMessage(resp *core.ModelResponse) wire.MessageResponse {
	content, _ := chatAnswer(resp)
	stop := "end_turn"
	msg := wire.MessageResponse{ID: externalID("msg_", resp.RequestID), Type: "message", Role: "assistant", Model: routeName(resp.Route),
		Content: []wire.Block{}, StopReason: &stop,
		Usage: wire.AnthropicUsage{InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens}}
	if content != "" || len(resp.Output.ToolCalls) == 0 {
		msg.Content = append(msg.Content, wire.Block{Type: "text", Text: content})
	}
	for _, tc := range resp.Output.ToolCalls {
		msg.Content = append(msg.Content, wire.Block{Type: "tool_use", ID: tc.ID, Name: toolCallName(tc), Input: []byte(argsJSON(tc))})
	}
	if len(resp.Output.ToolCalls) > 0 {
		stop = "tool_use"
	}
	return msg
}

// readMessages reads a Messages body (countOnly: the count_tokens form)
// into the caller, the body and its model request.
func readMessages(c echo.Context, countOnly bool) (core.Auth, wire.MessagesRequest, core.ModelRequest, error) {
	var body wire.MessagesRequest
	a, err := caller(c)
	if err != nil {
		return a, body, core.ModelRequest{}, err
	}
	if err := edge.DecodeJSON(c, &body); err != nil {
		return a, body, core.ModelRequest{}, err
	}
	req, err := messagesToModelRequest(&body, countOnly)
	return a, body, req, err
}

// handleMessages is POST /anthropic/v1/messages.
func (g *Gateway) handleMessages(c echo.Context) error {
	a, body, req, err := readMessages(c, false)
	if err != nil {
		return err
	}
	fromHeaders(c, &req)
	if body.Stream {
		return g.streamMessages(c, a, req)
	}
	resp, err := g.Invoke(c.Request().Context(), a, req)
	if err != nil {
		return err
	}
	governanceHeaders(c.Response().Header(), resp.RequestID, resp.Route, resp.PolicyOutcome)
	c.Response().Header().Set("request-id", resp.RequestID)
	return writeJSON(c, http.StatusOK, anthropicMessage(&resp))
}

// streamMessages answers as Anthropic's event stream: message_start, a
// text block whose deltas go out as the backend sends them, one tool_use
// block per tool call (its input as one input_json_delta), message_delta
// with stop_reason and usage, message_stop. A failure after the stream
// opened is an error event.
func (g *Gateway) streamMessages(c echo.Context, a core.Auth, req core.ModelRequest) error {
	s := newSSE(c)
	idx := func(i int) *int { return &i }
	send := func(ev wire.Event) error { return s.event(ev.Type, ev) }
	open := func(requestID string, route core.Route, policy core.PolicyOutcome) error {
		governanceHeaders(s.header(), requestID, route, policy)
		s.header().Set("request-id", requestID)
		s.open()
		head := wire.MessageResponse{ID: externalID("msg_", requestID), Type: "message", Role: "assistant", Model: routeName(route),
			Content: []wire.Block{}, Usage: wire.AnthropicUsage{InputTokens: inputTokens(&req), OutputTokens: 1}}
		return send(wire.Event{Type: "message_start", Message: &head})
	}
	textOpen := false
	openText := func() error {
		textOpen = true
		return send(wire.Event{Type: "content_block_start", Index: idx(0), ContentBlock: &wire.Block{Type: "text"}})
	}
	delta := func(piece string) error {
		return send(wire.Event{Type: "content_block_delta", Index: idx(0), Delta: &wire.EventDelta{Type: "text_delta", Text: piece}})
	}
	req.OnDelta = textDeltas(withText(open, openText), delta)
	resp, err := g.Invoke(c.Request().Context(), a, req)
	if err != nil {
		if !s.opened {
			return err
		}
		ce := core.AsError(err)
		_ = send(wire.Event{Type: "error", Error: &wire.AnthropicError{Type: anthropicErrorType(ce.HTTPStatus()), Message: ce.Message}})
		return nil
	}
	if !s.opened {
		if open(resp.RequestID, resp.Route, resp.PolicyOutcome) != nil {
			return nil
		}
	}
	msg := anthropicMessage(&resp)
	for i, b := range msg.Content {
		var events []wire.Event
		switch b.Type {
		case "text":
			if !textOpen {
				if openText() != nil {
					return nil
				}
				for _, piece := range wire.SplitWords(b.Text) {
					if delta(piece) != nil {
						return nil
					}
				}
			}
		case "tool_use":
			start := b
			start.Input = []byte("{}")
			events = append(events, wire.Event{Type: "content_block_start", Index: idx(i), ContentBlock: &start},
				wire.Event{Type: "content_block_delta", Index: idx(i), Delta: &wire.EventDelta{Type: "input_json_delta", PartialJSON: string(b.Input)}})
		}
		events = append(events, wire.Event{Type: "content_block_stop", Index: idx(i)})
		for _, ev := range events {
			if send(ev) != nil {
				return nil
			}
		}
	}
	_ = send(wire.Event{Type: "message_delta", Delta: &wire.EventDelta{StopReason: msg.StopReason}, Usage: &msg.Usage})
	_ = send(wire.Event{Type: "message_stop"})
	return nil
}

// handleCountTokens is POST /anthropic/v1/messages/count_tokens: the
// gateway's own input estimate (the one budgets reserve against), for a
// model the tenant may call. No model is called and nothing is metered.
func (g *Gateway) handleCountTokens(c echo.Context) error {
	a, body, req, err := readMessages(c, true)
	if err != nil {
		return err
	}
	if err := validate(&req); err != nil {
		return err
	}
	if _, err := g.modelRef(c.Request().Context(), a, body.Model); err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, wire.TokenCount{InputTokens: inputTokens(&req)})
}

func (g *Gateway) anthropicModel(r modelEntry) wire.AnthropicModel {
	return wire.AnthropicModel{Type: "model", ID: r.id, DisplayName: r.id, CreatedAt: g.started.UTC().Format(time.RFC3339)}
}

// handleAnthropicModels is GET /anthropic/v1/models (one page, all of it).
func (g *Gateway) handleAnthropicModels(c echo.Context) error {
	refs, err := g.callerModelRefs(c)
	if err != nil {
		return err
	}
	out := wire.AnthropicModelList{Data: make([]wire.AnthropicModel, 0, len(refs))}
	for _, r := range refs {
		out.Data = append(out.Data, g.anthropicModel(r))
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = &out.Data[0].ID, &out.Data[n-1].ID
	}
	return writeJSON(c, http.StatusOK, out)
}

// handleAnthropicModel is GET /anthropic/v1/models/{id}.
func (g *Gateway) handleAnthropicModel(c echo.Context) error {
	r, err := g.callerModelRef(c)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, g.anthropicModel(r))
}
