package fakeup

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"

	"github.com/agentos/agentos/stackb/wire"
)

// OpenAI starts a fake OpenAI-compatible upstream named name.
func OpenAI(name string) (*Server, error) {
	return start(name, routes{
		"POST /v1/chat/completions": (*Server).openAIChat,
		"POST /v1/embeddings":       (*Server).openAIEmbed,
	})
}

func openAIErr(typ, msg string) string {
	raw, _ := json.Marshal(wire.ErrorBody{Error: wire.ErrorDetail{Message: msg, Type: typ}})
	return string(raw)
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request, got string, body func(typ, msg string) string) bool {
	if s.Key == "" || got == s.Key {
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(body("authentication_error", "bad key")))
	return false
}

func (s *Server) openAIChat(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, trimBearer(r.Header.Get("Authorization")), openAIErr) {
		return
	}
	var req wire.ChatRequest
	if _, err := s.record(r, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(openAIErr("invalid_request_error", err.Error())))
		return
	}
	if failure(w, r, req.Model, openAIErr) {
		return
	}
	var t turn
	for _, m := range req.Messages {
		text, _, _ := wire.MessageText(m.Content)
		t.inTokens += tokens(text)
		switch m.Role {
		case "user":
			t.lastUser = text
		case "tool":
			t.toolResults = append(t.toolResults, text)
		}
	}
	var tools []string
	for _, tl := range req.Tools {
		tools = append(tools, tl.Function.Name)
	}
	tool, args, text := s.answer(t, tools)
	usage := wire.Usage{PromptTokens: t.inTokens, CompletionTokens: tokens(text + args)}
	usage.TotalTokens = usage.PromptTokens + usage.CompletionTokens
	finish := "stop"
	var calls []wire.ToolCall
	if tool != "" {
		finish = "tool_calls"
		calls = []wire.ToolCall{{ID: "call_fake1", Type: "function", Function: wire.CallFunc{Name: tool, Arguments: args}}}
	}
	if !req.Stream {
		msg := wire.OutMessage{Role: "assistant", Content: &text, ToolCalls: calls}
		if tool != "" {
			msg.Content = nil
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(wire.ChatResponse{ID: "chatcmpl-fake", Object: "chat.completion", Created: 1, Model: req.Model,
			Choices: []wire.Choice{{Message: msg, FinishReason: finish}}, Usage: usage})
		return
	}
	send := sse(w)
	chunk := func(d wire.Delta, fin *string) {
		send("", wire.Chunk{ID: "chatcmpl-fake", Object: "chat.completion.chunk", Created: 1, Model: req.Model,
			Choices: []wire.ChunkChoice{{Delta: d, FinishReason: fin}}})
	}
	empty := ""
	chunk(wire.Delta{Role: "assistant", Content: &empty}, nil)
	for _, piece := range wire.SplitWords(text) {
		chunk(wire.Delta{Content: &piece}, nil)
	}
	if tool != "" {
		zero := 0
		half := len(args) / 2
		chunk(wire.Delta{ToolCalls: []wire.ToolCall{{Index: &zero, ID: "call_fake1", Type: "function", Function: wire.CallFunc{Name: tool, Arguments: args[:half]}}}}, nil)
		chunk(wire.Delta{ToolCalls: []wire.ToolCall{{Index: &zero, Function: wire.CallFunc{Arguments: args[half:]}}}}, nil)
	}
	chunk(wire.Delta{}, &finish)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		send("", wire.Chunk{ID: "chatcmpl-fake", Object: "chat.completion.chunk", Created: 1, Model: req.Model, Choices: []wire.ChunkChoice{}, Usage: &usage})
	}
	send("", "[DONE]")
}

// openAIEmbed answers 8-dimensional hashed, L2-normalised vectors.
func (s *Server) openAIEmbed(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r, trimBearer(r.Header.Get("Authorization")), openAIErr) {
		return
	}
	var req wire.EmbedRequest
	if _, err := s.record(r, &req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if failure(w, r, req.Model, openAIErr) {
		return
	}
	var texts []string
	if err := json.Unmarshal(req.Input, &texts); err != nil {
		var one string
		_ = json.Unmarshal(req.Input, &one)
		texts = []string{one}
	}
	out := wire.EmbedResponse{Object: "list", Model: req.Model}
	for i, t := range texts {
		v := make([]float64, 8)
		h := fnv.New64a()
		h.Write([]byte(t))
		x := h.Sum64()
		var n float64
		for j := range v {
			v[j] = float64(int64(x>>(8*j)&0xff) - 128)
			n += v[j] * v[j]
		}
		for j := range v {
			v[j] /= math.Sqrt(n)
		}
		raw, _ := json.Marshal(v)
		out.Data = append(out.Data, wire.Embedding{Object: "embedding", Index: i, Vector: raw})
		out.Usage.PromptTokens += tokens(t)
	}
	out.Usage.TotalTokens = out.Usage.PromptTokens
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func trimBearer(h string) string {
	if len(h) > 7 && (h[:7] == "Bearer " || h[:7] == "bearer ") {
		return h[7:]
	}
	return ""
}
