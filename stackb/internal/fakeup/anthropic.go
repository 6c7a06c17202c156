package fakeup

import (
	"encoding/json"
	"net/http"

	"github.com/agentos/agentos/stackb/wire"
)

// Anthropic starts a fake Anthropic Messages upstream named name.
func Anthropic(name string) (*Server, error) {
	return start(name, routes{"POST /v1/messages": (*Server).messages})
}

func anthropicErr(typ, msg string) string {
	if typ == "error" {
		typ = "api_error"
	}
	raw, _ := json.Marshal(wire.AnthropicErrorBody{Type: "error", Error: wire.AnthropicError{Type: typ, Message: msg}})
	return string(raw)
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, r.Header.Get("x-api-key"), anthropicErr) {
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(anthropicErr("invalid_request_error", "anthropic-version header is required")))
		return
	}
	var req wire.MessagesRequest
	if _, err := s.record(r, &req); err != nil || req.MaxTokens <= 0 {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(anthropicErr("invalid_request_error", "malformed request or max_tokens missing")))
		return
	}
	if failure(w, r, req.Model, anthropicErr) {
		return
	}
	t := turn{inTokens: tokens(string(req.System))}
	for _, m := range req.Messages {
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				t.inTokens += tokens(b.Text)
				if m.Role == "user" {
					t.lastUser = b.Text
				}
			case "tool_result":
				text, _ := wire.BlockText(b.Content)
				t.inTokens += tokens(text)
				t.toolResults = append(t.toolResults, text)
			}
		}
	}
	var tools []string
	if req.ToolChoice == nil || req.ToolChoice.Type != "none" {
		for _, tl := range req.Tools {
			tools = append(tools, tl.Name)
		}
	}
	tool, args, text := s.answer(t, tools)
	stop := "end_turn"
	var content []wire.Block
	if tool != "" {
		stop = "tool_use"
		content = []wire.Block{{Type: "tool_use", ID: "toolu_fake1", Name: tool, Input: json.RawMessage(args)}}
	} else {
		content = []wire.Block{{Type: "text", Text: text}}
	}
	usage := wire.AnthropicUsage{InputTokens: t.inTokens, OutputTokens: tokens(text + args)}
	msg := wire.MessageResponse{ID: "msg_fake1", Type: "message", Role: "assistant", Model: req.Model, Content: content, StopReason: &stop, Usage: usage}
	if !req.Stream {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(msg)
		return
	}
	send := sse(w)
	head := msg
	head.Content, head.StopReason, head.Usage.OutputTokens = []wire.Block{}, nil, 1
	send("message_start", wire.Event{Type: "message_start", Message: &head})
	zero := 0
	if tool != "" {
		send("content_block_start", wire.Event{Type: "content_block_start", Index: &zero,
			ContentBlock: &wire.Block{Type: "tool_use", ID: "toolu_fake1", Name: tool, Input: json.RawMessage("{}")}})
		half := len(args) / 2
		for _, p := range []string{args[:half], args[half:]} {
			send("content_block_delta", wire.Event{Type: "content_block_delta", Index: &zero, Delta: &wire.EventDelta{Type: "input_json_delta", PartialJSON: p}})
		}
	} else {
		send("content_block_start", wire.Event{Type: "content_block_start", Index: &zero, ContentBlock: &wire.Block{Type: "text"}})
		send("ping", wire.Event{Type: "ping"})
		for _, p := range wire.SplitWords(text) {
			send("content_block_delta", wire.Event{Type: "content_block_delta", Index: &zero, Delta: &wire.EventDelta{Type: "text_delta", Text: p}})
		}
	}
	send("content_block_stop", wire.Event{Type: "content_block_stop", Index: &zero})
	send("message_delta", wire.Event{Type: "message_delta", Delta: &wire.EventDelta{StopReason: &stop}, Usage: &wire.AnthropicUsage{OutputTokens: usage.OutputTokens}})
	send("message_stop", wire.Event{Type: "message_stop"})
}
