package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"strings"
	"unicode"

	"github.com/agentos/agentos/core"
)

// Builtin model ids.
const (
	BuiltinName  = "builtin"
	EchoModel    = "echo-1"
	HashEmbed    = "hash-embed-1"
	HashEmbedDim = 256
)

// Builtin is the offline, deterministic provider of CONTRACT §4.5.
type Builtin struct{}

// Chat implements Provider. With tools offered and no tool message yet it
// calls the first tool with {"text": last user message}; otherwise it
// answers "echo: <last user message>" and one line per tool result.
func (Builtin) Chat(ctx context.Context, call ChatCall) (ChatResult, error) {
	if err := ctx.Err(); err != nil {
		return ChatResult{}, err
	}
	var res ChatResult
	lastUser := ""
	hasTool := false
	for _, m := range call.Messages {
		res.Usage.InputTokens += TokensOf(m.Content)
		switch m.Role {
		case "user":
			lastUser = m.Content
		case "tool":
			hasTool = true
		}
	}
	if len(call.Tools) > 0 && !hasTool && call.ToolChoice != "none" {
		t := call.Tools[0]
		tc := core.ToolCall{ID: core.NewID("call"), ToolID: t.ToolID, Name: t.Name, Arguments: map[string]any{"text": lastUser}}
		if tc.Name == "" {
			tc.Name = t.ToolID
		}
		args, _ := json.Marshal(tc.Arguments)
		res.Message = core.ChatMessage{Role: "assistant", Content: ""}
		res.ToolCalls = []core.ToolCall{tc}
		res.Usage.OutputTokens = TokensOf(string(args))
	} else {
		var b strings.Builder
		b.WriteString("echo: ")
		b.WriteString(lastUser)
		names := map[string]string{} // tool_call_id → name
		for _, m := range call.Messages {
			for _, tc := range m.ToolCalls {
				names[tc.ID] = tc.Name
			}
			if m.Role != "tool" {
				continue
			}
			name := m.Name
			if name == "" {
				name = names[m.ToolCallID]
			}
			b.WriteString("\ntool ")
			b.WriteString(name)
			b.WriteString(": ")
			b.WriteString(resultJSON(m.Content))
		}
		res.Message = core.ChatMessage{Role: "assistant", Content: b.String()}
		res.Usage.OutputTokens = TokensOf(res.Message.Content)
	}
	res.Usage.TotalTokens = res.Usage.InputTokens + res.Usage.OutputTokens
	return res, nil
}

// resultJSON renders a tool result as compact JSON: JSON content as is,
// anything else as a JSON string.
func resultJSON(content string) string {
	var buf bytes.Buffer
	if json.Valid([]byte(content)) && json.Compact(&buf, []byte(content)) == nil {
		return buf.String()
	}
	raw, _ := json.Marshal(content)
	return string(raw)
}

// Embed implements Provider with hash-embed-1: word unigrams and bigrams
// hashed into 256 signed buckets, L2-normalised.
func (Builtin) Embed(ctx context.Context, model string, texts []string) (EmbedResult, error) {
	if err := ctx.Err(); err != nil {
		return EmbedResult{}, err
	}
	res := EmbedResult{Vectors: make([][]float64, len(texts))}
	for i, t := range texts {
		res.Vectors[i] = HashEmbedding(t)
		res.Usage.InputTokens += TokensOf(t)
	}
	res.Usage.TotalTokens = res.Usage.InputTokens
	return res, nil
}

// HashEmbedding is the hash-embed-1 vector of text.
func HashEmbedding(text string) []float64 {
	v := make([]float64, HashEmbedDim)
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	add := func(feature string) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		x := h.Sum64()
		sign := 1.0
		if x>>63 == 1 {
			sign = -1
		}
		v[x%HashEmbedDim] += sign
	}
	for i, w := range words {
		add(w)
		if i > 0 {
			add(words[i-1] + " " + w)
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	if norm > 0 {
		norm = math.Sqrt(norm)
		for i := range v {
			v[i] /= norm
		}
	}
	return v
}

func init() {
	Register(Kind{Name: BuiltinName, New: func(Spec) (Provider, error) { return Builtin{}, nil }})
}
