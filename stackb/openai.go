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
	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/stackb/provider"
	"github.com/agentos/agentos/stackb/wire"
	"github.com/labstack/echo/v4"
)

// The OpenAI-compatible surface (§4.4), under /openai/v1 (the base URL to
// give OpenAI SDKs) with /v1/chat/completions and /v1/embeddings kept as
// aliases. Its bodies follow OpenAI's API, so unknown fields are ignored as
// OpenAI does; governance is exactly that of models:invoke, because every
// handler calls Invoke. The route and policy decision go back in the
// X-AgentOS-Route and X-AgentOS-Policy headers.

var jsonBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// fromHeaders fills what a compatible surface takes from headers: the
// agent (for canaries) and the idempotency key.
func fromHeaders(c echo.Context, req *core.ModelRequest) {
	h := c.Request().Header
	req.AgentID = h.Get("X-AgentOS-Agent-Id")
	req.RequestID = h.Get("X-AgentOS-Request-Id")
}

// chatToModelRequest maps an OpenAI chat request onto the canonical one.
func chatToModelRequest(r *wire.ChatRequest) (core.ModelRequest, error) {
	req := core.ModelRequest{Operation: core.OpChat, ModelRef: r.Model}
	if r.Model == "" {
		return req, core.Invalid("model", "model is required")
	}
	if r.N != nil && *r.N != 1 {
		return req, core.Invalid("n", "only n=1 is supported")
	}
	names := map[string]string{} // tool_call_id → function name
	for i, m := range r.Messages {
		field := "messages[" + strconv.Itoa(i) + "]"
		text, bad, ok := wire.MessageText(m.Content)
		if !ok {
			return req, core.Invalid(field+".content", "content must be a string or an array of parts")
		}
		if bad >= 0 {
			return req, core.Invalid(field+".content["+strconv.Itoa(bad)+"].type", "only text content parts are supported")
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		cm := core.ChatMessage{Role: role, Content: text, Name: m.Name, ToolCallID: m.ToolCallID}
		for _, tc := range m.ToolCalls {
			args, err := toolArgs(tc.Function.Arguments, field+".tool_calls.function.arguments")
			if err != nil {
				return req, err
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
	choice, err := toolChoice(r.ToolChoice)
	if err != nil {
		return req, err
	}
	req.Input.ToolChoice = choice
	maxTok := r.MaxCompletionTokens
	if maxTok == nil {
		maxTok = r.MaxTokens
	}
	req.Generation = generation(r.Temperature, r.TopP, maxTok)
	return req, nil
}

// toolArgs decodes a tool call's JSON arguments (empty means none).
func toolArgs(s, field string) (map[string]any, error) {
	args := map[string]any{}
	if s != "" {
		if err := json.Unmarshal([]byte(s), &args); err != nil || args == nil {
			return nil, core.Invalid(field, "arguments must be a JSON object")
		}
	}
	return args, nil
}

// toolChoice reads OpenAI's tool_choice: "auto", "none", "required", or
// an object naming a function (chat: {"function": {"name"}}, Responses:
// {"name"}).
func toolChoice(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", core.Invalid("tool_choice", "tool_choice is malformed")
		}
		return s, nil
	}
	var tc struct {
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &tc); err != nil {
		return "", core.Invalid("tool_choice", "tool_choice is malformed")
	}
	if tc.Function.Name != "" {
		return tc.Function.Name, nil
	}
	return tc.Name, nil
}

func generation(temp, topP *float64, maxTok *int) *core.Generation {
	if temp == nil && topP == nil && maxTok == nil {
		return nil
	}
	return &core.Generation{Temperature: temp, TopP: topP, MaxOutputTokens: maxTok}
}

// governanceHeaders sets X-AgentOS-Route ("<backend>/<model>", plus
// ";fallback" when a fallback answered) and X-AgentOS-Policy (the
// decision); the policy reasons go in X-AgentOS-Policy-Reasons.
//
// The keys are written in net/http's canonical form, as Set would store
// them, so a request does not canonicalize (and allocate) each name again;
// the four values share one backing array.
func governanceHeaders(h http.Header, requestID string, route core.Route, policy core.PolicyOutcome) {
	r := routeName(route)
	if route.FallbackUsed {
		r += ";fallback"
	}
	vals := make([]string, 4)
	vals[0], vals[1], vals[2] = r, policy.Decision, requestID
	h[hdrRoute], h[hdrPolicy], h[hdrRequestID] = vals[0:1:1], vals[1:2:2], vals[2:3:3]
	if len(policy.Reasons) > 0 {
		vals[3] = strings.Join(policy.Reasons, ",")
		h[hdrPolicyReasons] = vals[3:4:4]
	}
}

// The governance headers' names in canonical form (http.CanonicalHeaderKey).
const (
	hdrRoute         = "X-Agentos-Route"
	hdrPolicy        = "X-Agentos-Policy"
	hdrPolicyReasons = "X-Agentos-Policy-Reasons"
	hdrRequestID     = "X-Agentos-Request-Id"
)

func routeName(r core.Route) string { return r.Backend + "/" + r.Model }

// externalID turns a request id into the id of a surface's object
// ("chatcmpl-…", "resp_…", "msg_…").
func externalID(prefix, requestID string) string {
	return prefix + strings.TrimPrefix(requestID, core.PrefixRequest+"_")
}

// toolCallName is the function name a tool call goes out under.
func toolCallName(tc core.ToolCall) string {
	name := tc.Name
	if name == "" {
		name = tc.ToolID
	}
	return provider.FunctionName(core.ModelTool{Name: name})
}

func argsJSON(tc core.ToolCall) string {
	args, _ := json.Marshal(tc.Arguments)
	if tc.Arguments == nil {
		return "{}"
	}
	return string(args)
}

func toWireCalls(calls []core.ToolCall, withIndex bool) []wire.ToolCall {
	out := make([]wire.ToolCall, 0, len(calls))
	for i, tc := range calls {
		c := wire.ToolCall{ID: tc.ID, Type: "function", Function: wire.CallFunc{Name: toolCallName(tc), Arguments: argsJSON(tc)}}
		if withIndex {
			c.Index = core.Ptr(i)
		}
		out = append(out, c)
	}
	return out
}

func chatUsage(u core.Usage) wire.Usage {
	return wire.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: u.TotalTokens}
}

// handleChatCompletions is POST /openai/v1/chat/completions (and the
// /v1/chat/completions alias): auth → decode → translate → Invoke → answer
// whole or as a chunk stream.
func (g *Gateway) handleChatCompletions(c echo.Context) error {
	a, err := caller(c)
	if err != nil {
		return err
	}
	var body wire.ChatRequest
	if err := edge.DecodeJSON(c, &body); err != nil {
		return err
	}
	req, err := chatToModelRequest(&body)
	if err != nil {
		return err
	}
	fromHeaders(c, &req)
	if body.Stream {
		return g.streamChat(c, a, req, body.StreamOptions != nil && body.StreamOptions.IncludeUsage)
	}
	resp, err := g.Invoke(c.Request().Context(), a, req)
	if err != nil {
		return err
	}
	governanceHeaders(c.Response().Header(), resp.RequestID, resp.Route, resp.PolicyOutcome)
	content, finish := chatAnswer(&resp)
	msg := wire.OutMessage{Role: "assistant", Content: &content}
	if len(resp.Output.ToolCalls) > 0 {
		msg.ToolCalls = toWireCalls(resp.Output.ToolCalls, false)
		if content == "" {
			msg.Content = nil
		}
	}
	return writeJSON(c, http.StatusOK, wire.ChatResponse{ID: externalID("chatcmpl-", resp.RequestID), Object: "chat.completion",
		Created: g.now().Unix(), Model: routeName(resp.Route), Choices: []wire.Choice{{Message: msg, FinishReason: finish}},
		Usage: chatUsage(resp.Usage), CorrelationID: core.CorrelationID(c.Request().Context())})
}

// chatAnswer is the answer's text and OpenAI finish reason.
func chatAnswer(resp *core.ModelResponse) (content, finish string) {
	finish = "stop"
	if len(resp.Output.ToolCalls) > 0 {
		finish = "tool_calls"
	}
	if resp.Output.Message != nil {
		content = resp.Output.Message.Content
	}
	return content, finish
}

// streamChat answers as chat.completion.chunk events: the role chunk when
// the first text arrives (or when the answer does, for a backend that
// cannot stream), each text piece as the backend sends it, then the tool
// calls, the finish reason, the usage when asked, and [DONE].
func (g *Gateway) streamChat(c echo.Context, a core.Auth, req core.ModelRequest, withUsage bool) error {
	s := newSSE(c)
	chunk := wire.Chunk{Object: "chat.completion.chunk", Created: g.now().Unix(), CorrelationID: core.CorrelationID(c.Request().Context())}
	send := func(d wire.Delta, finish *string, usage *wire.Usage) error {
		ch := chunk
		ch.Choices = []wire.ChunkChoice{{Delta: d, FinishReason: finish}}
		if usage != nil {
			ch.Choices, ch.Usage = []wire.ChunkChoice{}, usage
		}
		return s.data(ch)
	}
	open := func(requestID string, route core.Route, policy core.PolicyOutcome) error {
		governanceHeaders(s.header(), requestID, route, policy)
		s.open()
		chunk.ID, chunk.Model = externalID("chatcmpl-", requestID), routeName(route)
		empty := ""
		return send(wire.Delta{Role: "assistant", Content: &empty}, nil, nil)
	}
	req.OnDelta = textDeltas(open, func(text string) error { return send(wire.Delta{Content: &text}, nil, nil) })
	resp, err := g.Invoke(c.Request().Context(), a, req)
	if err != nil {
		if !s.opened {
			return err
		}
		// Mid-stream failure: the status is gone, so the error travels as
		// a final data line in OpenAI's error shape.
		ce := core.AsError(err)
		_ = s.data(openAIError(ce, ce.HTTPStatus()))
		s.raw("data: [DONE]\n\n")
		return nil
	}
	content, finish := chatAnswer(&resp)
	if !s.opened {
		if err := open(resp.RequestID, resp.Route, resp.PolicyOutcome); err != nil {
			return nil
		}
		for _, piece := range wire.SplitWords(content) {
			if err := send(wire.Delta{Content: &piece}, nil, nil); err != nil {
				return nil
			}
		}
	}
	if len(resp.Output.ToolCalls) > 0 {
		if err := send(wire.Delta{ToolCalls: toWireCalls(resp.Output.ToolCalls, true)}, nil, nil); err != nil {
			return nil
		}
	}
	if err := send(wire.Delta{}, &finish, nil); err != nil {
		return nil
	}
	if withUsage {
		u := chatUsage(resp.Usage)
		if err := send(wire.Delta{}, nil, &u); err != nil {
			return nil
		}
	}
	s.raw("data: [DONE]\n\n")
	return nil
}

// handleEmbeddings is POST /openai/v1/embeddings (and /v1/embeddings).
func (g *Gateway) handleEmbeddings(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := caller(c)
	if err != nil {
		return err
	}
	var body wire.EmbedRequest
	if err := edge.DecodeJSON(c, &body); err != nil {
		return err
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
	req := core.ModelRequest{Operation: core.OpEmbed, ModelRef: body.Model, Input: core.ModelInput{Texts: texts, EncodingFormat: format}}
	fromHeaders(c, &req)
	resp, err := g.Invoke(ctx, a, req)
	if err != nil {
		return err
	}
	governanceHeaders(c.Response().Header(), resp.RequestID, resp.Route, resp.PolicyOutcome)
	out := wire.EmbedResponse{Object: "list", Data: make([]wire.Embedding, len(resp.Output.Embeddings)), Model: routeName(resp.Route),
		Usage: wire.Usage{PromptTokens: resp.Usage.InputTokens, TotalTokens: resp.Usage.TotalTokens}, CorrelationID: core.CorrelationID(ctx)}
	for i, e := range resp.Output.Embeddings {
		var v json.RawMessage
		if format == "base64" {
			v = wire.String(float32Base64(e.Vector))
		} else if v, err = json.Marshal(e.Vector); err != nil {
			return err
		}
		out.Data[i] = wire.Embedding{Object: "embedding", Index: e.Index, Vector: v}
	}
	return writeJSON(c, http.StatusOK, out)
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

// handleOpenAIModels is GET /openai/v1/models: what the tenant may call,
// as OpenAI model objects whose ids "model" accepts.
func (g *Gateway) handleOpenAIModels(c echo.Context) error {
	refs, err := g.callerModelRefs(c)
	if err != nil {
		return err
	}
	out := wire.ModelList{Object: "list", Data: make([]wire.Model, 0, len(refs))}
	for _, r := range refs {
		out.Data = append(out.Data, wire.Model{ID: r.id, Object: "model", Created: g.started.Unix(), OwnedBy: r.owner})
	}
	return writeJSON(c, http.StatusOK, out)
}

// handleOpenAIModel is GET /openai/v1/models/{id}; the id may hold a '/'
// (backend/model), so the route is a wildcard.
func (g *Gateway) handleOpenAIModel(c echo.Context) error {
	r, err := g.callerModelRef(c)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, wire.Model{ID: r.id, Object: "model", Created: g.started.Unix(), OwnedBy: r.owner})
}
