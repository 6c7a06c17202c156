package stackb

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stackb/provider"
	"github.com/labstack/echo/v4"
)

// The OpenAI-compatible surface (§4.4). Its bodies follow OpenAI's API, so
// unknown fields are ignored as OpenAI does; governance is exactly that of
// models:invoke, because both call Invoke. The route and policy decision go
// back in the X-AgentOS-Route and X-AgentOS-Policy headers.

var jsonBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type oaiFunction struct {
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Parameters  map[string]any `json:"parameters,omitempty"`
}

type oaiTool struct {
	Type     string      `json:"type"`
	Function oaiFunction `json:"function"`
}

type oaiCallFunc struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type oaiToolCall struct {
	Index    *int        `json:"index,omitempty"`
	ID       string      `json:"id"`
	Type     string      `json:"type"`
	Function oaiCallFunc `json:"function"`
}

type oaiMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	Name       string          `json:"name,omitempty"`
	ToolCalls  []oaiToolCall   `json:"tool_calls,omitempty"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

type oaiChatRequest struct {
	Model               string          `json:"model"`
	Messages            []oaiMessage    `json:"messages"`
	Tools               []oaiTool       `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	N                   *int            `json:"n"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

type oaiUsage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type oaiOutMessage struct {
	Role      string        `json:"role"`
	Content   *string       `json:"content"`
	Refusal   *string       `json:"refusal"`
	ToolCalls []oaiToolCall `json:"tool_calls,omitempty"`
}

type oaiChoice struct {
	Index        int           `json:"index"`
	Message      oaiOutMessage `json:"message"`
	FinishReason string        `json:"finish_reason"`
	Logprobs     *struct{}     `json:"logprobs"`
}

type oaiChatResponse struct {
	ID            string      `json:"id"`
	Object        string      `json:"object"`
	Created       int64       `json:"created"`
	Model         string      `json:"model"`
	Choices       []oaiChoice `json:"choices"`
	Usage         oaiUsage    `json:"usage"`
	CorrelationID string      `json:"correlation_id"`
}

type oaiDelta struct {
	Role      string        `json:"role,omitempty"`
	Content   *string       `json:"content,omitempty"`
	ToolCalls []oaiToolCall `json:"tool_calls,omitempty"`
}

type oaiChunkChoice struct {
	Index        int       `json:"index"`
	Delta        oaiDelta  `json:"delta"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *struct{} `json:"logprobs"`
}

type oaiChunk struct {
	ID            string           `json:"id"`
	Object        string           `json:"object"`
	Created       int64            `json:"created"`
	Model         string           `json:"model"`
	Choices       []oaiChunkChoice `json:"choices"`
	Usage         *oaiUsage        `json:"usage,omitempty"`
	CorrelationID string           `json:"correlation_id,omitempty"`
}

// messageText reads OpenAI content: a string, null, or an array of parts
// of which the text parts count.
func messageText(raw json.RawMessage, field string) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", core.Invalid(field, "content is malformed")
		}
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", core.Invalid(field, "content must be a string or an array of parts")
	}
	var b strings.Builder
	for i, p := range parts {
		if p.Type != "text" {
			return "", core.Invalid(field+"["+strconv.Itoa(i)+"].type", "only text content parts are supported")
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// toModelRequest maps an OpenAI chat request onto the canonical one.
func (r *oaiChatRequest) toModelRequest() (core.ModelRequest, error) {
	req := core.ModelRequest{Operation: core.OpChat, ModelRef: r.Model}
	if r.Model == "" {
		return req, core.Invalid("model", "model is required")
	}
	if r.N != nil && *r.N != 1 {
		return req, core.Invalid("n", "only n=1 is supported")
	}
	names := map[string]string{}
	for i, m := range r.Messages {
		field := "messages[" + strconv.Itoa(i) + "]"
		text, err := messageText(m.Content, field+".content")
		if err != nil {
			return req, err
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		cm := core.ChatMessage{Role: role, Content: text, Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args := map[string]any{}
			if tc.Function.Arguments != "" {
				if err := json.Unmarshal([]byte(tc.Function.Arguments), &args); err != nil {
					return req, core.Invalid(field+".tool_calls.function.arguments", "arguments must be a JSON object")
				}
			}
			names[tc.ID] = tc.Function.Name
			cm.ToolCalls = append(cm.ToolCalls, core.ToolCall{ID: tc.ID, ToolID: tc.Function.Name, Name: tc.Function.Name, Arguments: args})
		}
		if role == "tool" && cm.Name == "" {
			cm.Name = names[m.ToolCallID]
		}
		req.Input.Messages = append(req.Input.Messages, cm)
	}
	for i, t := range r.Tools {
		if t.Type != "" && t.Type != "function" {
			return req, core.Invalid("tools["+strconv.Itoa(i)+"].type", "only function tools are supported")
		}
		req.Input.Tools = append(req.Input.Tools, core.ModelTool{ToolID: t.Function.Name, Name: t.Function.Name,
			Description: t.Function.Description, InputSchema: t.Function.Parameters})
	}
	if len(r.ToolChoice) > 0 && string(r.ToolChoice) != "null" {
		if r.ToolChoice[0] == '"' {
			_ = json.Unmarshal(r.ToolChoice, &req.Input.ToolChoice)
		} else {
			var tc struct {
				Function struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			if err := json.Unmarshal(r.ToolChoice, &tc); err != nil {
				return req, core.Invalid("tool_choice", "tool_choice is malformed")
			}
			req.Input.ToolChoice = tc.Function.Name
		}
	}
	maxTok := r.MaxCompletionTokens
	if maxTok == nil {
		maxTok = r.MaxTokens
	}
	if r.Temperature != nil || r.TopP != nil || maxTok != nil {
		req.Generation = &core.Generation{Temperature: r.Temperature, TopP: r.TopP, MaxOutputTokens: maxTok}
	}
	return req, nil
}

// governanceHeaders sets X-AgentOS-Route ("<backend>/<model>", plus
// ";fallback" when a fallback answered) and X-AgentOS-Policy (the
// decision); the policy reasons go in X-AgentOS-Policy-Reasons.
func governanceHeaders(h http.Header, resp *core.ModelResponse) {
	route := resp.Route.Backend + "/" + resp.Route.Model
	if resp.Route.FallbackUsed {
		route += ";fallback"
	}
	h.Set("X-AgentOS-Route", route)
	h.Set("X-AgentOS-Policy", resp.PolicyOutcome.Decision)
	if len(resp.PolicyOutcome.Reasons) > 0 {
		h.Set("X-AgentOS-Policy-Reasons", strings.Join(resp.PolicyOutcome.Reasons, ","))
	}
	h.Set("X-AgentOS-Request-Id", resp.RequestID)
}

func toOAICalls(calls []core.ToolCall, withIndex bool) []oaiToolCall {
	out := make([]oaiToolCall, 0, len(calls))
	for i, tc := range calls {
		args, _ := json.Marshal(tc.Arguments)
		name := tc.Name
		if name == "" {
			name = tc.ToolID
		}
		c := oaiToolCall{ID: tc.ID, Type: "function", Function: oaiCallFunc{Name: provider.FunctionName(core.ModelTool{Name: name}), Arguments: string(args)}}
		if withIndex {
			c.Index = core.Ptr(i)
		}
		out = append(out, c)
	}
	return out
}

func (g *Gateway) handleChatCompletions(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := caller(c, core.ScopeModelsInvoke)
	if err != nil {
		return err
	}
	var body oaiChatRequest
	if err := json.NewDecoder(c.Request().Body).Decode(&body); err != nil {
		return core.Invalid("", "malformed JSON body: %v", err)
	}
	req, err := body.toModelRequest()
	if err != nil {
		return err
	}
	req.AgentID = c.Request().Header.Get("X-AgentOS-Agent-Id")
	req.RequestID = c.Request().Header.Get("X-AgentOS-Request-Id")
	created := g.now().Unix()
	w := c.Response()
	chunk := oaiChunk{Object: "chat.completion.chunk", Created: created, CorrelationID: core.CorrelationID(ctx)}
	send := func(ch oaiChunk) error {
		buf := jsonBufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer jsonBufPool.Put(buf)
		buf.WriteString("data: ")
		if err := json.NewEncoder(buf).Encode(ch); err != nil {
			return err
		}
		buf.WriteString("\n")
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	// started: the SSE response is open (status, headers and the role
	// chunk sent). A backend that streams opens it at its first text, with
	// the route and policy of the answer in the headers.
	started := false
	start := func(requestID string, route core.Route, policy core.PolicyOutcome) error {
		governanceHeaders(w.Header(), &core.ModelResponse{RequestID: requestID, Route: route, PolicyOutcome: policy})
		w.Header().Set(echo.HeaderContentType, "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Connection", "keep-alive")
		w.WriteHeader(http.StatusOK)
		started = true
		chunk.ID = "chatcmpl-" + strings.TrimPrefix(requestID, core.PrefixRequest+"_")
		chunk.Model = route.Backend + "/" + route.Model
		empty := ""
		ch := chunk
		ch.Choices = []oaiChunkChoice{{Delta: oaiDelta{Role: "assistant", Content: &empty}}}
		return send(ch)
	}
	if body.Stream {
		req.OnDelta = func(d core.ModelDelta) error {
			if d.First {
				if err := start(d.RequestID, d.Route, d.Policy); err != nil {
					return err
				}
			}
			text := d.Text
			ch := chunk
			ch.Choices = []oaiChunkChoice{{Delta: oaiDelta{Content: &text}}}
			return send(ch)
		}
	}
	resp, err := g.Invoke(ctx, a, req)
	if err != nil {
		if !started {
			return err
		}
		// Mid-stream failure: the status is gone, so the error travels as
		// a final data line in OpenAI's error shape.
		ce := core.AsError(err)
		raw, _ := json.Marshal(map[string]any{"error": map[string]any{"message": ce.Message, "type": "api_error", "code": ce.Code}})
		_, _ = w.Write(append(append([]byte("data: "), raw...), "\n\ndata: [DONE]\n\n"...))
		w.Flush()
		return nil
	}
	if !started {
		governanceHeaders(w.Header(), &resp)
	}
	id := "chatcmpl-" + strings.TrimPrefix(resp.RequestID, core.PrefixRequest+"_")
	modelName := resp.Route.Backend + "/" + resp.Route.Model
	finish := "stop"
	if len(resp.Output.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	content := ""
	if resp.Output.Message != nil {
		content = resp.Output.Message.Content
	}
	usage := oaiUsage{PromptTokens: resp.Usage.InputTokens, CompletionTokens: resp.Usage.OutputTokens, TotalTokens: resp.Usage.TotalTokens}
	if !body.Stream {
		msg := oaiOutMessage{Role: "assistant", Content: &content}
		if len(resp.Output.ToolCalls) > 0 {
			msg.ToolCalls = toOAICalls(resp.Output.ToolCalls, false)
			if content == "" {
				msg.Content = nil
			}
		}
		return writeJSON(c, http.StatusOK, oaiChatResponse{ID: id, Object: "chat.completion", Created: created, Model: modelName,
			Choices: []oaiChoice{{Index: 0, Message: msg, FinishReason: finish}}, Usage: usage, CorrelationID: core.CorrelationID(ctx)})
	}

	// Stream: role, content (unless the backend streamed it already), tool
	// calls, finish, optional usage, [DONE].
	if !started {
		if err := start(resp.RequestID, resp.Route, resp.PolicyOutcome); err != nil {
			return nil
		}
		for _, piece := range splitContent(content) {
			p := piece
			ch := chunk
			ch.Choices = []oaiChunkChoice{{Delta: oaiDelta{Content: &p}}}
			if err := send(ch); err != nil {
				return nil
			}
		}
	}
	chunk.ID, chunk.Model = id, modelName
	ch := chunk
	if len(resp.Output.ToolCalls) > 0 {
		ch.Choices = []oaiChunkChoice{{Delta: oaiDelta{ToolCalls: toOAICalls(resp.Output.ToolCalls, true)}}}
		if err := send(ch); err != nil {
			return nil
		}
	}
	ch.Choices = []oaiChunkChoice{{Delta: oaiDelta{}, FinishReason: &finish}}
	if err := send(ch); err != nil {
		return nil
	}
	if body.StreamOptions != nil && body.StreamOptions.IncludeUsage {
		ch.Choices = []oaiChunkChoice{}
		ch.Usage = &usage
		if err := send(ch); err != nil {
			return nil
		}
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	w.Flush()
	return nil
}

// splitContent cuts an answer into word-sized stream deltas.
func splitContent(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ' ' || s[i] == '\n' {
			out = append(out, s[start:i+1])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

type oaiEmbedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
}

type oaiEmbedding struct {
	Object    string `json:"object"`
	Index     int    `json:"index"`
	Embedding any    `json:"embedding"`
}

func (g *Gateway) handleEmbeddings(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := caller(c, core.ScopeModelsInvoke)
	if err != nil {
		return err
	}
	var body oaiEmbedRequest
	if err := json.NewDecoder(c.Request().Body).Decode(&body); err != nil {
		return core.Invalid("", "malformed JSON body: %v", err)
	}
	if body.Model == "" {
		return core.Invalid("model", "model is required")
	}
	var texts []string
	switch {
	case len(body.Input) == 0:
		return core.Invalid("input", "input is required")
	case body.Input[0] == '"':
		var s string
		if err := json.Unmarshal(body.Input, &s); err != nil {
			return core.Invalid("input", "input is malformed")
		}
		texts = []string{s}
	default:
		if err := json.Unmarshal(body.Input, &texts); err != nil {
			return core.Invalid("input", "input must be a string or an array of strings (token arrays are not supported)")
		}
	}
	format := body.EncodingFormat
	if format != "" && format != "float" && format != "base64" {
		return core.Invalid("encoding_format", "unknown encoding_format %q (want float or base64)", format)
	}
	req := core.ModelRequest{Operation: core.OpEmbed, ModelRef: body.Model, Input: core.ModelInput{Texts: texts, EncodingFormat: format},
		AgentID: c.Request().Header.Get("X-AgentOS-Agent-Id"), RequestID: c.Request().Header.Get("X-AgentOS-Request-Id")}
	resp, err := g.Invoke(ctx, a, req)
	if err != nil {
		return err
	}
	governanceHeaders(c.Response().Header(), &resp)
	data := make([]oaiEmbedding, len(resp.Output.Embeddings))
	for i, e := range resp.Output.Embeddings {
		data[i] = oaiEmbedding{Object: "embedding", Index: e.Index, Embedding: e.Vector}
		if format == "base64" {
			data[i].Embedding = float32Base64(e.Vector)
		}
	}
	return writeJSON(c, http.StatusOK, map[string]any{"object": "list", "data": data,
		"model":          resp.Route.Backend + "/" + resp.Route.Model,
		"usage":          map[string]int{"prompt_tokens": resp.Usage.InputTokens, "total_tokens": resp.Usage.TotalTokens},
		"correlation_id": core.CorrelationID(ctx)})
}

// float32Base64 is OpenAI's base64 embedding encoding: little-endian
// float32s.
func float32Base64(v []float64) string {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(x)))
	}
	return base64.StdEncoding.EncodeToString(b)
}
