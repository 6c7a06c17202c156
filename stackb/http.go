package stackb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

// Register mounts Stack B's routes on e. Paths with a literal ':' are
// escaped, or echo would read ":invoke" as a path parameter.
func (g *Gateway) Register(e *echo.Echo) {
	list, invoke := edge.RequireScope(core.ScopeModelsList), edge.RequireScope(core.ScopeModelsInvoke)
	e.GET("/v1/health", g.handleHealth)
	e.GET("/v1/models", g.handleListModels, list)
	e.POST(`/v1/models\:invoke`, g.handleInvoke, invoke)
	e.POST(`/v1/policy\:check`, g.handlePolicyCheck, edge.RequireScope(core.ScopePolicyCheck))
	e.GET("/v1/usage", g.handleUsage, edge.RequireScope(core.ScopeModelsList, core.ScopeModelsInvoke))
	// The OpenAI-compatible surface; the two /v1 paths are its aliases.
	e.POST("/v1/chat/completions", g.handleChatCompletions, invoke)
	e.POST("/v1/embeddings", g.handleEmbeddings, invoke)
	e.GET(OpenAIBase+"/models", g.handleOpenAIModels, list)
	e.GET(OpenAIBase+"/models/*", g.handleOpenAIModel, list)
	e.POST(OpenAIBase+"/chat/completions", g.handleChatCompletions, invoke)
	e.POST(OpenAIBase+"/embeddings", g.handleEmbeddings, invoke)
	e.POST(OpenAIBase+"/responses", g.handleResponses, invoke)
	e.GET(OpenAIBase+"/responses/:id", g.handleGetResponse, invoke)
	e.DELETE(OpenAIBase+"/responses/:id", g.handleDeleteResponse, invoke)
	// The Anthropic-compatible surface.
	e.POST(AnthropicBase+"/v1/messages", g.handleMessages, invoke)
	e.POST(AnthropicBase+"/v1/messages/count_tokens", g.handleCountTokens, invoke)
	e.GET(AnthropicBase+"/v1/models", g.handleAnthropicModels, list)
	e.GET(AnthropicBase+"/v1/models/*", g.handleAnthropicModel, list)
}

func (g *Gateway) handleHealth(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "service": "stack-b", "version": core.APIVersion,
		"correlation_id": core.CorrelationID(c.Request().Context())})
}

// caller is the authenticated principal of the request (its scope was
// checked on the route).
func caller(c echo.Context) (core.Auth, error) {
	a, ok := core.AuthFrom(c.Request().Context())
	if !ok {
		return a, core.Errorf(core.CodeUnauthorized, "no credential")
	}
	return a, nil
}

// callerAndBody is the caller and the raw body of a request whose handler
// decodes its closed objects itself (models:invoke, policy:check).
func callerAndBody(c echo.Context) (core.Auth, []byte, error) {
	a, err := caller(c)
	if err != nil {
		return a, nil, err
	}
	raw, err := edge.ReadBody(c)
	return a, raw, err
}

// bodyAuth decodes the optional "auth" of a body's top level (nil when
// absent), which effectiveAuth then weighs against the caller.
func bodyAuth(top map[string]json.RawMessage) (*core.Auth, error) {
	raw, ok := top["auth"]
	if !ok {
		return nil, nil
	}
	a := new(core.Auth)
	if err := decodeInto(raw, "auth", a); err != nil {
		return nil, err
	}
	return a, nil
}

// effectiveAuth applies the body auth rule of §4: the body's tenant must
// be the caller's unless the caller may act as another tenant, in which
// case the body auth governs. A missing body auth means the caller's.
func effectiveAuth(callerAuth core.Auth, body *core.Auth) (core.Auth, error) {
	if body == nil || body.TenantID == "" {
		return callerAuth, nil
	}
	if body.TenantID != callerAuth.TenantID && !callerAuth.CanActAs() {
		return callerAuth, core.Errorf(core.CodeForbidden, "auth.tenant_id does not match the credential's tenant").
			With("field", "auth.tenant_id")
	}
	if body.TenantID == callerAuth.TenantID && !callerAuth.CanActAs() {
		// Same tenant: the credential's principal and scopes stand; the body
		// may only add policy context.
		a := callerAuth
		if body.PolicyContext.Purpose != "" {
			a.PolicyContext = body.PolicyContext
		}
		return a, nil
	}
	return *body, nil
}

// closedObject decodes raw as a JSON object whose keys must be in allowed;
// field is the JSON path of raw for error details.
func closedObject(raw []byte, field string, allowed ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		name := field
		if name == "" {
			name = "body"
		}
		return nil, core.Invalid(field, "%s must be a JSON object", name)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			return nil, core.Invalid(join(field, k), "unknown field %s", join(field, k))
		}
	}
	return m, nil
}

func join(field, k string) string {
	if field == "" {
		return k
	}
	return field + "." + k
}

// decodeInto unmarshals raw into v, naming field on a type error.
func decodeInto(raw json.RawMessage, field string, v any) error {
	if raw == nil {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		if te, ok := err.(*json.UnmarshalTypeError); ok && te.Field != "" {
			return core.Invalid(join(field, te.Field), "%s has the wrong type", join(field, te.Field))
		}
		return core.Invalid(field, "%s is malformed: %v", field, err)
	}
	return nil
}

// optionalClosed decodes raw, an optional closed object (absent or null:
// nil), into a new T, refusing keys outside allowed; field is its JSON path.
func optionalClosed[T any](raw json.RawMessage, field string, allowed ...string) (*T, error) {
	if raw == nil || string(raw) == "null" {
		return nil, nil
	}
	if _, err := closedObject(raw, field, allowed...); err != nil {
		return nil, err
	}
	v := new(T)
	if err := decodeInto(raw, field, v); err != nil {
		return nil, err
	}
	return v, nil
}

// decodeInvoke decodes a models:invoke body keeping the closed objects
// closed: the top level, requirements, generation and the chat or embed
// input.
func decodeInvoke(raw []byte) (*core.Auth, core.ModelRequest, string, error) {
	var req core.ModelRequest
	top, err := closedObject(raw, "", "auth", "request", "traceparent")
	if err != nil {
		return nil, req, "", err
	}
	auth, err := bodyAuth(top)
	if err != nil {
		return nil, req, "", err
	}
	var tp string
	if err := decodeInto(top["traceparent"], "traceparent", &tp); err != nil {
		return nil, req, "", err
	}
	rraw, ok := top["request"]
	if !ok {
		return nil, req, "", core.Invalid("request", "request is required")
	}
	var r struct {
		RequestID    string          `json:"request_id"`
		Operation    string          `json:"operation"`
		ModelRef     string          `json:"model_ref"`
		Requirements json.RawMessage `json:"requirements"`
		Input        json.RawMessage `json:"input"`
		Generation   json.RawMessage `json:"generation"`
	}
	if err := decodeInto(rraw, "request", &r); err != nil {
		return nil, req, "", err
	}
	req = core.ModelRequest{RequestID: r.RequestID, Operation: r.Operation, ModelRef: r.ModelRef}
	if req.Requirements, err = optionalClosed[core.Requirements](r.Requirements, "request.requirements", "max_latency_ms", "max_cost_usd", "min_context_tokens"); err != nil {
		return nil, req, "", err
	}
	if req.Generation, err = optionalClosed[core.Generation](r.Generation, "request.generation", "temperature", "top_p", "max_output_tokens"); err != nil {
		return nil, req, "", err
	}
	if r.Input == nil {
		return nil, req, "", core.Invalid("request.input", "input is required")
	}
	allowed := []string{"messages", "tools", "tool_choice"}
	if r.Operation == core.OpEmbed {
		allowed = []string{"texts", "encoding_format"}
	}
	if _, err := closedObject(r.Input, "request.input", allowed...); err != nil {
		return nil, req, "", err
	}
	if err := decodeInto(r.Input, "request.input", &req.Input); err != nil {
		return nil, req, "", err
	}
	return auth, req, tp, nil
}

// invokeResponse is the body of a models:invoke answer.
type invokeResponse struct {
	Response      core.ModelResponse `json:"response"`
	CorrelationID string             `json:"correlation_id"`
	Traceparent   string             `json:"traceparent,omitempty"`
}

func (g *Gateway) handleInvoke(c echo.Context) error {
	ctx := c.Request().Context()
	ca, raw, err := callerAndBody(c)
	if err != nil {
		return err
	}
	body, req, tp, err := decodeInvoke(raw)
	if err != nil {
		return err
	}
	a, err := effectiveAuth(ca, body)
	if err != nil {
		return err
	}
	if tp != "" {
		ctx = core.WithTraceparent(ctx, tp)
	}
	req.AgentID = c.Request().Header.Get("X-AgentOS-Agent-Id")
	resp, err := g.Invoke(ctx, a, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, invokeResponse{Response: resp, CorrelationID: core.CorrelationID(ctx), Traceparent: core.Traceparent(ctx)})
}

func (g *Gateway) handlePolicyCheck(c echo.Context) error {
	ctx := c.Request().Context()
	ca, raw, err := callerAndBody(c)
	if err != nil {
		return err
	}
	top, err := closedObject(raw, "", "auth", "policy_check")
	if err != nil {
		return err
	}
	body, err := bodyAuth(top)
	if err != nil {
		return err
	}
	pc, ok := top["policy_check"]
	if !ok {
		return core.Invalid("policy_check", "policy_check is required")
	}
	pm, err := closedObject(pc, "policy_check", "request_id", "content", "ruleset")
	if err != nil {
		return err
	}
	if cr, ok := pm["content"]; !ok {
		return core.Invalid("policy_check.content", "content is required")
	} else if _, err := closedObject(cr, "policy_check.content", "type", "text"); err != nil {
		return err
	}
	var req core.PolicyCheckRequest
	if err := decodeInto(pc, "policy_check", &req); err != nil {
		return err
	}
	a, err := effectiveAuth(ca, body)
	if err != nil {
		return err
	}
	res, err := g.PolicyCheck(ctx, a, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"policy_result": res, "correlation_id": core.CorrelationID(ctx)})
}

func (g *Gateway) handleListModels(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := caller(c)
	if err != nil {
		return err
	}
	models, err := g.ListModels(ctx, a)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"models": models, "correlation_id": core.CorrelationID(ctx)})
}

// usageWindow is one item of GET /v1/usage.
type usageWindow struct {
	Window       string  `json:"window"`
	Date         string  `json:"date"`
	InputTokens  int64   `json:"input_tokens"`
	OutputTokens int64   `json:"output_tokens"`
	TotalTokens  int64   `json:"total_tokens"`
	CostUSD      float64 `json:"cost_usd"`
	Requests     int64   `json:"requests"`
}

func (g *Gateway) handleUsage(c echo.Context) error {
	ctx := c.Request().Context()
	a, err := caller(c)
	if err != nil {
		return err
	}
	var f UsageFilter
	q := c.QueryParams()
	switch w := q.Get("window"); w {
	case "", core.WindowMinute, core.WindowHour, core.WindowDay:
		f.Window = w
	default:
		return core.Invalid("window", "unknown window %q (want minute, hour or day)", w)
	}
	if s := q.Get("since"); s != "" {
		ts, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return core.Invalid("since", "since must be an RFC3339 time")
		}
		f.Since = ts
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return core.Invalid("limit", "limit must be an integer from 1 to 1000")
		}
		f.Limit = n
	}
	if tid := q.Get("tenant_id"); tid != "" && tid != a.TenantID {
		if !a.IsPlatformAdmin() {
			return core.Errorf(core.CodeForbidden, "only a platform admin may read another tenant's usage")
		}
		a.TenantID = tid
	}
	recs, err := g.Usage(ctx, a, f)
	if err != nil {
		return err
	}
	out := make([]usageWindow, len(recs))
	for i, r := range recs {
		out[i] = usageWindow{Window: r.Window, Date: r.Period, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
			TotalTokens: r.TotalTokens, CostUSD: r.CostUSD, Requests: r.Requests}
	}
	return c.JSON(http.StatusOK, map[string]any{"usage": out, "correlation_id": core.CorrelationID(ctx)})
}

// writeJSON encodes v with a pooled buffer (the hot OpenAI path).
func writeJSON(c echo.Context, status int, v any) error {
	buf := jsonBufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer jsonBufPool.Put(buf)
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	return c.Blob(status, echo.MIMEApplicationJSON, buf.Bytes())
}
