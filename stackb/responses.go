package stackb

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/stackb/wire"
	"github.com/labstack/echo/v4"
)

// OpenAI's Responses API under /openai/v1/responses, the API the OpenAI
// Agents SDK speaks by default. A request becomes one canonical chat
// request (so it is governed exactly like models:invoke); the
// conversation of a stored response is kept so a later request can go on
// from it with previous_response_id.

// responseStore keeps recent responses per tenant, in memory: at most max
// of them, each for ttl. A response of another tenant is not found.
type responseStore struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	items map[string]*storedResponse // tenant "/" id
	order []string                   // insertion order, for eviction
}

type storedResponse struct {
	resp wire.Response
	// conversation is every turn up to and including this response's
	// output (instructions excluded, as the API does not carry them on).
	conversation []core.ChatMessage
	expires      time.Time
}

func newResponseStore(max int, ttl time.Duration) *responseStore {
	return &responseStore{max: max, ttl: ttl, items: map[string]*storedResponse{}}
}

func (s *responseStore) put(tenantID string, r *storedResponse) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.expires = time.Now().Add(s.ttl)
	k := tenantID + "/" + r.resp.ID
	s.items[k] = r
	s.order = append(s.order, k)
	for len(s.items) > s.max && len(s.order) > 0 {
		delete(s.items, s.order[0])
		s.order = s.order[1:]
	}
	if len(s.order) > 2*s.max {
		s.order = compactOrder(s.order, s.items)
	}
}

// compactOrder drops order entries whose item is gone.
func compactOrder(order []string, items map[string]*storedResponse) []string {
	out := order[:0]
	for _, k := range order {
		if _, ok := items[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

func (s *responseStore) get(tenantID, id string) (*storedResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.items[tenantID+"/"+id]
	if !ok || time.Now().After(r.expires) {
		return nil, core.NotFound("response", id).With("field", "previous_response_id")
	}
	return r, nil
}

func (s *responseStore) delete(tenantID, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := tenantID + "/" + id
	_, ok := s.items[k]
	delete(s.items, k)
	return ok
}

// responsesRequest is a Responses request translated: the canonical
// request and the conversation it carries (for storing).
type responsesRequest struct {
	req          core.ModelRequest
	conversation []core.ChatMessage
	body         *wire.ResponsesRequest
}

// toResponsesRequest maps a Responses body onto a canonical chat request:
// instructions first, then the previous response's conversation, then the
// input items.
func (g *Gateway) toResponsesRequest(a core.Auth, body *wire.ResponsesRequest) (*responsesRequest, error) {
	if body.Model == "" {
		return nil, core.Invalid("model", "model is required")
	}
	var conv []core.ChatMessage
	if body.PreviousResponseID != "" {
		prev, err := g.responses.get(a.TenantID, body.PreviousResponseID)
		if err != nil {
			return nil, err
		}
		conv = append(conv, prev.conversation...)
	}
	items, err := inputItems(body.Input)
	if err != nil {
		return nil, err
	}
	names := map[string]string{} // call_id → function name
	for _, m := range conv {
		for _, tc := range m.ToolCalls {
			names[tc.ID] = tc.Name
		}
	}
	for i, it := range items {
		field := "input[" + strconv.Itoa(i) + "]"
		switch it.Type {
		case "", "message":
			text, bad, ok := wire.MessageText(it.Content)
			if !ok {
				return nil, core.Invalid(field+".content", "content must be a string or an array of text parts")
			}
			if bad >= 0 {
				return nil, core.Invalid(field+".content["+strconv.Itoa(bad)+"].type", "only text content parts are supported")
			}
			role := it.Role
			switch role {
			case "developer":
				role = "system"
			case "user", "assistant", "system":
			default:
				return nil, core.Invalid(field+".role", "unknown role %q (want user, assistant, system or developer)", it.Role)
			}
			conv = append(conv, core.ChatMessage{Role: role, Content: text})
		case "function_call":
			args, err := toolArgs(it.Arguments, field+".arguments")
			if err != nil {
				return nil, err
			}
			if it.CallID == "" || it.Name == "" {
				return nil, core.Invalid(field+".call_id", "a function_call needs call_id and name")
			}
			names[it.CallID] = it.Name
			tc := core.ToolCall{ID: it.CallID, ToolID: it.Name, Name: it.Name, Arguments: args}
			if n := len(conv); n > 0 && conv[n-1].Role == "assistant" {
				conv[n-1].ToolCalls = append(conv[n-1].ToolCalls, tc)
			} else {
				conv = append(conv, core.ChatMessage{Role: "assistant", ToolCalls: []core.ToolCall{tc}})
			}
		case "function_call_output":
			if it.CallID == "" {
				return nil, core.Invalid(field+".call_id", "a function_call_output needs call_id")
			}
			out := ""
			if len(it.Output) > 0 && it.Output[0] == '"' {
				_ = json.Unmarshal(it.Output, &out)
			} else {
				text, bad, ok := wire.MessageText(it.Output)
				if !ok || bad >= 0 {
					return nil, core.Invalid(field+".output", "output must be a string or text parts")
				}
				out = text
			}
			conv = append(conv, core.ChatMessage{Role: "tool", ToolCallID: it.CallID, Name: names[it.CallID], Content: out})
		default:
			return nil, core.Invalid(field+".type", "input items of type %q are not supported (want message, function_call or function_call_output)", it.Type)
		}
	}
	if len(conv) == 0 {
		return nil, core.Invalid("input", "input is required")
	}
	req := core.ModelRequest{Operation: core.OpChat, ModelRef: body.Model}
	if body.Instructions != "" {
		req.Input.Messages = append(req.Input.Messages, core.ChatMessage{Role: "system", Content: body.Instructions})
	}
	req.Input.Messages = append(req.Input.Messages, conv...)
	for i, t := range body.Tools {
		if t.Type != "function" {
			return nil, core.Invalid("tools["+strconv.Itoa(i)+"].type", "only function tools are supported, not %q", t.Type)
		}
		req.Input.Tools = append(req.Input.Tools, core.ModelTool{ToolID: t.Name, Name: t.Name, Description: t.Description, InputSchema: t.Parameters})
	}
	choice, err := toolChoice(body.ToolChoice)
	if err != nil {
		return nil, err
	}
	req.Input.ToolChoice = choice
	req.Generation = generation(body.Temperature, body.TopP, body.MaxOutputTokens)
	return &responsesRequest{req: req, conversation: conv, body: body}, nil
}

// inputItems reads input: a string (one user message) or an array of items.
func inputItems(raw json.RawMessage) ([]wire.InputItem, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if raw[0] == '"' {
		return []wire.InputItem{{Type: "message", Role: "user", Content: raw}}, nil
	}
	var items []wire.InputItem
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, core.Invalid("input", "input must be a string or an array of input items")
	}
	return items, nil
}

// responseObject is the response of an answer: a message item when there
// is text (or nothing else), then one function_call item per tool call.
func (g *Gateway) responseObject(rr *responsesRequest, resp *core.ModelResponse, status string) wire.Response {
	b := rr.body
	out := wire.Response{ID: externalID("resp_", resp.RequestID), Object: "response", CreatedAt: g.now().Unix(), Status: status,
		Model: routeName(resp.Route), Output: []wire.OutputItem{}, Tools: b.Tools, ToolChoice: b.ToolChoice, ParallelToolCalls: true,
		Temperature: b.Temperature, TopP: b.TopP, MaxOutputTokens: b.MaxOutputTokens, Metadata: b.Metadata, Store: b.Store == nil || *b.Store}
	if out.Tools == nil {
		out.Tools = []wire.ResponsesTool{}
	}
	if out.Metadata == nil {
		out.Metadata = map[string]any{}
	}
	if len(out.ToolChoice) == 0 {
		out.ToolChoice = json.RawMessage(`"auto"`)
	}
	if b.Instructions != "" {
		out.Instructions = &b.Instructions
	}
	if b.PreviousResponseID != "" {
		out.PreviousResponseID = &b.PreviousResponseID
	}
	if status != "completed" {
		return out
	}
	content, _ := chatAnswer(resp)
	if content != "" || len(resp.Output.ToolCalls) == 0 {
		out.Output = append(out.Output, messageItem(resp.RequestID, content, "completed"))
	}
	for i, tc := range resp.Output.ToolCalls {
		out.Output = append(out.Output, callItem(resp.RequestID, i, tc, "completed"))
	}
	out.Usage = &wire.ResponsesUsage{InputTokens: resp.Usage.InputTokens, OutputTokens: resp.Usage.OutputTokens, TotalTokens: resp.Usage.TotalTokens,
		InputTokensDetails: map[string]int{"cached_tokens": 0}, OutputTokensDetails: map[string]int{"reasoning_tokens": 0}}
	return out
}

func messageItem(requestID, text, status string) wire.OutputItem {
	it := wire.OutputItem{Type: "message", ID: externalID("msg_", requestID), Status: status, Role: "assistant", Content: []wire.OutputText{}}
	if status == "completed" {
		it.Content = []wire.OutputText{{Type: "output_text", Text: text, Annotations: []any{}}}
	}
	return it
}

func callItem(requestID string, i int, tc core.ToolCall, status string) wire.OutputItem {
	args := argsJSON(tc)
	if status != "completed" {
		args = ""
	}
	return wire.OutputItem{Type: "function_call", ID: externalID("fc_", requestID) + "_" + strconv.Itoa(i), Status: status,
		CallID: tc.ID, Name: toolCallName(tc), Arguments: &args}
}

// remember stores the conversation through this answer, unless the
// request said store: false.
func (g *Gateway) remember(a core.Auth, rr *responsesRequest, resp *core.ModelResponse, obj wire.Response) {
	if rr.body.Store != nil && !*rr.body.Store {
		return
	}
	conv := append([]core.ChatMessage(nil), rr.conversation...)
	content, _ := chatAnswer(resp)
	conv = append(conv, core.ChatMessage{Role: "assistant", Content: content, ToolCalls: resp.Output.ToolCalls})
	g.responses.put(a.TenantID, &storedResponse{resp: obj, conversation: conv})
}

// handleResponses is POST /openai/v1/responses.
func (g *Gateway) handleResponses(c echo.Context) error {
	a, err := caller(c)
	if err != nil {
		return err
	}
	var body wire.ResponsesRequest
	if err := edge.DecodeJSON(c, &body); err != nil {
		return err
	}
	rr, err := g.toResponsesRequest(a, &body)
	if err != nil {
		return err
	}
	fromHeaders(c, &rr.req)
	if body.Stream {
		return g.streamResponse(c, a, rr)
	}
	resp, err := g.Invoke(c.Request().Context(), a, rr.req)
	if err != nil {
		return err
	}
	governanceHeaders(c.Response().Header(), resp.RequestID, resp.Route, resp.PolicyOutcome)
	obj := g.responseObject(rr, &resp, "completed")
	g.remember(a, rr, &resp, obj)
	obj.CorrelationID = core.CorrelationID(c.Request().Context())
	return writeJSON(c, http.StatusOK, obj)
}

// streamResponse answers as the Responses event stream: response.created
// and in_progress, the message item with each text delta as the backend
// sends it, one function_call item per tool call (its arguments as one
// delta), then response.completed. A failure after the stream opened is a
// response.failed event.
func (g *Gateway) streamResponse(c echo.Context, a core.Auth, rr *responsesRequest) error {
	s := newSSE(c)
	seq := 0
	send := func(ev wire.ResponseEvent) error {
		ev.SequenceNumber = seq
		seq++
		return s.event(ev.Type, ev)
	}
	idx := func(i int) *int { return &i }
	var requestID string
	open := func(reqID string, route core.Route, policy core.PolicyOutcome) error {
		requestID = reqID
		governanceHeaders(s.header(), reqID, route, policy)
		s.open()
		head := g.responseObject(rr, &core.ModelResponse{RequestID: reqID, Route: route}, "in_progress")
		if err := send(wire.ResponseEvent{Type: "response.created", Response: &head}); err != nil {
			return err
		}
		return send(wire.ResponseEvent{Type: "response.in_progress", Response: &head})
	}
	textOpen := false
	openText := func() error {
		textOpen = true
		item := messageItem(requestID, "", "in_progress")
		if err := send(wire.ResponseEvent{Type: "response.output_item.added", OutputIndex: idx(0), Item: &item}); err != nil {
			return err
		}
		return send(wire.ResponseEvent{Type: "response.content_part.added", ItemID: item.ID, OutputIndex: idx(0), ContentIndex: idx(0),
			Part: &wire.OutputText{Type: "output_text", Text: "", Annotations: []any{}}})
	}
	delta := func(piece string) error {
		return send(wire.ResponseEvent{Type: "response.output_text.delta", ItemID: externalID("msg_", requestID), OutputIndex: idx(0),
			ContentIndex: idx(0), Delta: &piece, Logprobs: []any{}})
	}
	rr.req.OnDelta = textDeltas(withText(open, openText), delta)
	resp, err := g.Invoke(c.Request().Context(), a, rr.req)
	if err != nil {
		if !s.opened {
			return err
		}
		ce := core.AsError(err)
		failed := g.responseObject(rr, &core.ModelResponse{RequestID: requestID}, "failed")
		failed.Error = &wire.ResponseError{Code: ce.Code, Message: ce.Message}
		_ = send(wire.ResponseEvent{Type: "response.failed", Response: &failed})
		return nil
	}
	if !s.opened {
		if err := open(resp.RequestID, resp.Route, resp.PolicyOutcome); err != nil {
			return nil
		}
	}
	final := g.responseObject(rr, &resp, "completed")
	next := 0
	if content, _ := chatAnswer(&resp); content != "" || len(resp.Output.ToolCalls) == 0 {
		if !textOpen {
			if openText() != nil {
				return nil
			}
			for _, piece := range wire.SplitWords(content) {
				if delta(piece) != nil {
					return nil
				}
			}
		}
		item := final.Output[0]
		part := item.Content[0]
		events := []wire.ResponseEvent{
			{Type: "response.output_text.done", ItemID: item.ID, OutputIndex: idx(0), ContentIndex: idx(0), Text: &part.Text, Logprobs: []any{}},
			{Type: "response.content_part.done", ItemID: item.ID, OutputIndex: idx(0), ContentIndex: idx(0), Part: &part},
			{Type: "response.output_item.done", OutputIndex: idx(0), Item: &item},
		}
		for _, ev := range events {
			if send(ev) != nil {
				return nil
			}
		}
		next = 1
	}
	for i, tc := range resp.Output.ToolCalls {
		oi := next + i
		added := callItem(resp.RequestID, i, tc, "in_progress")
		done := final.Output[oi]
		events := []wire.ResponseEvent{
			{Type: "response.output_item.added", OutputIndex: idx(oi), Item: &added},
			{Type: "response.function_call_arguments.delta", ItemID: done.ID, OutputIndex: idx(oi), Delta: done.Arguments},
			{Type: "response.function_call_arguments.done", ItemID: done.ID, OutputIndex: idx(oi), Arguments: done.Arguments},
			{Type: "response.output_item.done", OutputIndex: idx(oi), Item: &done},
		}
		for _, ev := range events {
			if send(ev) != nil {
				return nil
			}
		}
	}
	g.remember(a, rr, &resp, final)
	_ = send(wire.ResponseEvent{Type: "response.completed", Response: &final})
	return nil
}

// handleGetResponse is GET /openai/v1/responses/{id}: a stored response of
// the caller's tenant.
func (g *Gateway) handleGetResponse(c echo.Context) error {
	a, err := caller(c)
	if err != nil {
		return err
	}
	r, err := g.responses.get(a.TenantID, c.Param("id"))
	if err != nil {
		return core.NotFound("response", c.Param("id"))
	}
	return writeJSON(c, http.StatusOK, r.resp)
}

// handleDeleteResponse is DELETE /openai/v1/responses/{id}.
func (g *Gateway) handleDeleteResponse(c echo.Context) error {
	a, err := caller(c)
	if err != nil {
		return err
	}
	id := c.Param("id")
	if !g.responses.delete(a.TenantID, id) {
		return core.NotFound("response", id)
	}
	return writeJSON(c, http.StatusOK, map[string]any{"id": id, "object": "response", "deleted": true})
}
