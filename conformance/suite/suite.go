// Package suite drives every operation of the three embedded OpenAPI
// documents against a running server and validates every answer against
// the documents. Request bodies are the embedded golden examples; the ids
// in them and in paths are replaced by the ones the server hands out (the
// tenant of the key, the run it created, the token it issued, …).
//
// The suite sends nothing but documented operations: each request is
// matched against its document before it leaves, and it needs no
// AgentOS-specific endpoint, so any implementation of the contract can be
// measured with it. It is used by `agentos conformance` and by the
// conformance tests against a live node.
//
// Objects it creates carry recognisable fixed names (ProbeTenantID,
// ProbeAgentID, ProbeToolID, ProbePeerStackID, the ProbeMemoryNamespace)
// so a second run reuses them instead of piling up; the issued token is
// revoked, the peer removed, the probe agent and tenant left disabled.
package suite

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/agentos/agentos/examples"
	"github.com/agentos/agentos/openapi"
)

// Names of the objects the suite creates on the server under test.
const (
	ProbeTenantID        = "tnt_conformance_probe"
	ProbeAgentID         = "agt_conformance_probe"
	ProbeToolID          = "tool.conformance_probe"
	ProbeMemoryNamespace = "conformance_probe"
	ProbePeerStackID     = "stk_conformance_probe"
)

// Target is the server under test.
type Target struct {
	// URLs maps openapi.StackA, openapi.StackB and openapi.Federation to
	// base URLs; the operations of a port without a URL are skipped.
	URLs map[string]string
	// APIKey is a tenant credential (tenant admin) for tenant operations.
	APIKey string
	// AdminKey is a platform admin credential for the admin operations
	// (tenants, tokens, peers); they are skipped when it is empty.
	AdminKey string
	// Client sends the requests; nil means a client with Timeout.
	Client *http.Client
	// Timeout bounds each request (default 15 s); a run's wait for its
	// terminal state is bounded by four times it.
	Timeout time.Duration
}

// Result is the outcome of one operation of one document.
type Result struct {
	Stack       string `json:"stack"`
	OperationID string `json:"operation_id"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	// Example is the golden request example sent, when the operation
	// takes a body.
	Example string `json:"example,omitempty"`
	// Status is the HTTP status of the first answer.
	Status int `json:"status,omitempty"`
	// Implemented: the server has the route (it did not answer 404, 405
	// or 501 where the suite expected something else).
	Implemented bool `json:"implemented"`
	// Accepted: the server answered the status the suite expects for the
	// request it sent (the golden request is expected to succeed).
	Accepted bool `json:"accepted"`
	// Valid: every answer fits the document (status documented, media
	// type declared, JSON body matching the schema).
	Valid bool `json:"valid"`
	// Difference is the first difference found, empty when there is none.
	Difference string `json:"difference,omitempty"`
	// Skipped says why the operation was not sent by choice (no admin
	// key, no URL for its port).
	Skipped    string `json:"skipped,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	sent       bool
}

// Passed reports an operation that was sent, implemented, accepted and
// valid, or skipped by choice.
func (r Result) Passed() bool {
	return r.Skipped != "" || (r.sent && r.Implemented && r.Accepted && r.Valid)
}

// Report is the outcome of a run: one Result per operation of every
// document, in document order.
type Report struct {
	Results []Result `json:"operations"`
	Passed  int      `json:"passed"`
	Failed  int      `json:"failed"`
	Skipped int      `json:"skipped"`
	// Unreachable is set when no port of the target answered at all.
	Unreachable bool `json:"unreachable,omitempty"`
}

// OK reports whether every operation that ran passed.
func (r Report) OK() bool { return r.Failed == 0 && !r.Unreachable }

// runner holds the state of one run.
type runner struct {
	t          Target
	hc         *http.Client
	validators map[string]*openapi.Validator
	results    map[string]*Result
	order      []string
	suffix     string
	reached    bool
	// ids handed out by the server.
	keyTenant, principal, tokenID, runID, exampleName string
}

// Run drives every documented operation against t. The error is for a
// suite that cannot start (documents or examples that do not load);
// everything the server does wrong is in the Report.
func Run(ctx context.Context, t Target) (Report, error) {
	if t.Timeout <= 0 {
		t.Timeout = 15 * time.Second
	}
	if err := examples.Err(); err != nil {
		return Report{}, err
	}
	r := &runner{t: t, hc: t.Client, validators: map[string]*openapi.Validator{}, results: map[string]*Result{}}
	if r.hc == nil {
		r.hc = &http.Client{Timeout: t.Timeout}
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	r.suffix = hex.EncodeToString(b[:])
	for _, s := range openapi.Stacks() {
		v, err := openapi.NewValidator(s)
		if err != nil {
			return Report{}, err
		}
		r.validators[s] = v
		for _, op := range v.Operations() {
			k := s + " " + op.OperationID
			r.order = append(r.order, k)
			res := &Result{Stack: s, OperationID: op.OperationID, Method: op.Method, Path: op.Path}
			if t.URLs[s] == "" {
				res.Skipped = "no URL for " + s
			}
			r.results[k] = res
		}
	}
	r.drive(ctx)
	var rep Report
	for _, k := range r.order {
		res := r.results[k]
		if res.Skipped == "" && !res.sent && res.Difference == "" {
			res.Difference = "not sent: an earlier operation it depends on handed out no id"
		}
		switch {
		case res.Skipped != "":
			rep.Skipped++
		case res.Passed():
			rep.Passed++
		default:
			rep.Failed++
		}
		rep.Results = append(rep.Results, *res)
	}
	anySent := slices.ContainsFunc(rep.Results, func(r Result) bool { return r.sent })
	rep.Unreachable = anySent && !r.reached
	return rep, nil
}

// call describes one request.
type call struct {
	stack, op string
	// path is the concrete path with the query.
	path string
	// key is the credential: "tenant", "admin" or "" (none).
	key string
	// example is the golden request example the body comes from.
	example string
	// edit substitutes ids into the example body.
	edit func(body map[string]any)
	// body, when there is no example, is a non-golden body (only used
	// to undo an earlier run's cleanup).
	body   map[string]any
	expect []int
	accept string
	// header is sent as is (a protocol's session header).
	header map[string]string
}

// answer is what the server said.
type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// send sends c when its port and credential are available, validates the
// request against the document first and the answer after, and merges the
// outcome into the operation's Result.
func (r *runner) send(ctx context.Context, c call) (answer, bool) {
	res := r.results[c.stack+" "+c.op]
	if res == nil {
		panic("suite: unknown operation " + c.stack + " " + c.op)
	}
	if res.Skipped != "" {
		return answer{}, false
	}
	key := ""
	switch c.key {
	case "tenant":
		key = r.t.APIKey
		if key == "" {
			res.Skipped = "no tenant key (--api-key)"
			return answer{}, false
		}
	case "admin":
		key = r.t.AdminKey
		if key == "" {
			res.Skipped = "needs a platform admin key (--admin-key)"
			return answer{}, false
		}
	}
	var raw []byte
	if c.example != "" {
		body, err := exampleBody(c.example)
		if err != nil {
			res.Difference = firstNonEmpty(res.Difference, err.Error())
			return answer{}, false
		}
		if c.edit != nil {
			c.edit(body)
		}
		raw, _ = json.Marshal(body)
		if res.Example == "" {
			res.Example = c.example
		}
	} else if c.body != nil {
		raw, _ = json.Marshal(c.body)
	}
	method := res.Method
	u := strings.TrimRight(r.t.URLs[c.stack], "/") + c.path
	v := r.validators[c.stack]
	pu, err := url.Parse(u)
	if err != nil {
		res.Difference = firstNonEmpty(res.Difference, "bad target URL: "+err.Error())
		return answer{}, false
	}
	// Never send anything but the documented operation.
	if op, ok := v.Match(method, pu.Path); !ok || op.OperationID != c.op {
		res.Difference = firstNonEmpty(res.Difference, fmt.Sprintf("suite refused to send %s %s: it is not %s of %s", method, pu.Path, c.op, c.stack))
		return answer{}, false
	}
	rctx, cancel := context.WithTimeout(ctx, r.t.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, method, u, bytes.NewReader(raw))
	if err != nil {
		res.Difference = firstNonEmpty(res.Difference, err.Error())
		return answer{}, false
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
		if ferr := v.ValidateRequest(req); ferr != nil {
			res.Difference = firstNonEmpty(res.Difference, "suite's own request does not fit the document: "+ferr.Error())
			return answer{}, false
		}
	} else {
		req.Body = nil
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if c.accept != "" {
		req.Header.Set("Accept", c.accept)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := r.hc.Do(req)
	first := !res.sent
	res.sent = true
	if first {
		res.Valid = true
	}
	if err != nil {
		res.DurationMS += time.Since(start).Milliseconds()
		res.Valid = false
		res.Difference = firstNonEmpty(res.Difference, fmt.Sprintf("%s %s: %v", method, c.path, err))
		return answer{}, false
	}
	r.reached = true
	defer resp.Body.Close()
	verr := v.ValidateResponse(req, resp)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	res.DurationMS += time.Since(start).Milliseconds()
	expect := c.expect
	if len(expect) == 0 {
		expect = []int{http.StatusOK}
	}
	accepted := slices.Contains(expect, resp.StatusCode)
	implemented := accepted || !slices.Contains([]int{http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented}, resp.StatusCode)
	if first {
		res.Status, res.Implemented, res.Accepted = resp.StatusCode, implemented, accepted
	} else {
		res.Implemented = res.Implemented || implemented
	}
	if !accepted {
		res.Difference = firstNonEmpty(res.Difference, fmt.Sprintf("%s %s answered %d, want %s: %s", method, c.path, resp.StatusCode, statusList(expect), snippet(body)))
	}
	if verr != nil {
		res.Valid = false
		res.Difference = firstNonEmpty(res.Difference, fmt.Sprintf("%s %s answered %d that does not fit the document: %v", method, c.path, resp.StatusCode, verr))
	}
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(body, &out)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: out}, accepted
}

// drive is the plan: which operations, in which order, with which ids.
func (r *runner) drive(ctx context.Context) {
	A, B, F := openapi.StackA, openapi.StackB, openapi.Federation
	for _, s := range openapi.Stacks() {
		r.send(ctx, call{stack: s, op: "getLiveness", path: "/healthz"})
		r.send(ctx, call{stack: s, op: "getReadiness", path: "/readyz"})
		health := map[string]string{A: "getStackAHealth", B: "getStackBHealth", F: "getFederationHealth"}[s]
		hpath := map[string]string{A: "/v1/health", B: "/v1/health", F: "/v1/federation/health"}[s]
		r.send(ctx, call{stack: s, op: health, path: hpath})
		r.send(ctx, call{stack: s, op: "getMetrics", path: "/metrics"})
		r.send(ctx, call{stack: s, op: "getOpenAPIYAML", path: "/openapi.yaml"})
		r.send(ctx, call{stack: s, op: "getOpenAPIJSON", path: "/openapi.json"})
		if idx, ok := r.send(ctx, call{stack: s, op: "listExamples", path: "/examples/"}); ok {
			if items, _ := idx.body["examples"].([]any); len(items) > 0 {
				if m, _ := items[0].(map[string]any); m != nil {
					r.exampleName, _ = m["name"].(string)
				}
			}
		}
		if r.exampleName != "" {
			r.send(ctx, call{stack: s, op: "getExample", path: "/examples/" + url.PathEscape(r.exampleName) + ".json"})
		}
	}
	r.stackA(ctx)
	r.stackB(ctx)
	r.federation(ctx)
	r.cleanup(ctx)
}

func (r *runner) stackA(ctx context.Context) {
	A := openapi.StackA
	// Admin: the probe tenant and a token in it.
	tpath := "/v1/admin/tenants/" + ProbeTenantID
	r.send(ctx, call{stack: A, op: "createTenant", path: "/v1/admin/tenants", key: "admin", example: "createTenant.request",
		edit: func(b map[string]any) {
			set(b, ProbeTenantID, "tenant_create", "tenant_id")
			set(b, "Conformance probe (agentos conformance)", "tenant_create", "name")
		}, expect: []int{http.StatusCreated, http.StatusConflict}})
	// A probe tenant left disabled by an earlier run is switched back on.
	r.send(ctx, call{stack: A, op: "updateTenant", path: tpath, key: "admin", body: map[string]any{"tenant_update": map[string]any{"status": "active"}}})
	r.send(ctx, call{stack: A, op: "listTenants", path: "/v1/admin/tenants", key: "admin"})
	r.send(ctx, call{stack: A, op: "getTenant", path: tpath, key: "admin"})
	if a, ok := r.send(ctx, call{stack: A, op: "createToken", path: tpath + "/tokens", key: "admin", example: "createToken.request",
		edit: func(b map[string]any) {
			set(b, "svc_conformance_probe", "token_create", "principal_id")
			set(b, "agentos conformance probe", "token_create", "display_name")
			set(b, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "token_create", "expires_at")
		}, expect: []int{http.StatusCreated}}); ok {
		r.tokenID = str(a.body, "token", "token_id")
	}
	r.send(ctx, call{stack: A, op: "listTokens", path: tpath + "/tokens", key: "admin"})
	if r.tokenID != "" {
		r.send(ctx, call{stack: A, op: "rotateToken", path: tpath + "/tokens/" + r.tokenID + ":rotate", key: "admin"})
		r.send(ctx, call{stack: A, op: "revokeToken", path: tpath + "/tokens/" + r.tokenID, key: "admin"})
	}
	// The probe tenant's secret store: put the golden body, list, delete.
	r.send(ctx, call{stack: A, op: "putSecret", path: tpath + "/secrets/conformance_probe", key: "admin", example: "putSecret.request",
		expect: []int{http.StatusCreated, http.StatusOK}})
	r.send(ctx, call{stack: A, op: "listSecrets", path: tpath + "/secrets", key: "admin"})
	r.send(ctx, call{stack: A, op: "deleteSecret", path: tpath + "/secrets/conformance_probe", key: "admin"})

	// Tenant: agents, tools, memory, runs, audit, console.
	r.send(ctx, call{stack: A, op: "listAgents", path: "/v1/agents", key: "tenant"})
	if a, ok := r.send(ctx, call{stack: A, op: "putAgent", path: "/v1/agents/" + ProbeAgentID, key: "tenant", example: "putAgent.request",
		edit: func(b map[string]any) {
			set(b, "Conformance probe (agentos conformance)", "agent", "name")
			set(b, "active", "agent", "status")
		}, expect: []int{http.StatusCreated, http.StatusOK}}); ok {
		r.keyTenant = str(a.body, "agent", "tenant_id")
	}
	r.send(ctx, call{stack: A, op: "getAgent", path: "/v1/agents/" + ProbeAgentID, key: "tenant"})
	r.send(ctx, call{stack: A, op: "listTools", path: "/v1/tools", key: "tenant"})
	// The golden tool names its signing secret (secret:weather_tool), which
	// the tenant under test need not have: a node refuses a secret_ref the
	// tenant lacks, so the probe registers the tool without one.
	r.send(ctx, call{stack: A, op: "putTool", path: "/v1/tools/" + ProbeToolID, key: "tenant", example: "putTool.request",
		edit: func(b map[string]any) {
			tool, _ := b["tool"].(map[string]any)
			if cfg, ok := tool["config"].(map[string]any); ok {
				delete(cfg, "secret_ref")
			}
		},
		expect: []int{http.StatusCreated, http.StatusOK}})
	mem := "/v1/memory/" + ProbeMemoryNamespace
	r.send(ctx, call{stack: A, op: "putMemory", path: mem + "/release_notes", key: "tenant", example: "putMemory.request"})
	r.send(ctx, call{stack: A, op: "getMemory", path: mem + "/release_notes", key: "tenant"})
	r.send(ctx, call{stack: A, op: "searchMemory", path: mem + ":search", key: "tenant", example: "searchMemory.request"})

	if a, ok := r.send(ctx, call{stack: A, op: "createRun", path: "/v1/agents/" + ProbeAgentID + "/runs", key: "tenant", example: "createRun.request",
		edit:   func(b map[string]any) { set(b, "idem_conformance_"+r.suffix, "idempotency_key") },
		expect: []int{http.StatusCreated, http.StatusOK}}); ok {
		r.runID = str(a.body, "run", "run_id")
		r.keyTenant = firstNonEmpty(r.keyTenant, str(a.body, "run", "tenant_id"))
	}
	if r.runID != "" {
		r.waitRun(ctx)
		r.send(ctx, call{stack: A, op: "listRuns", path: "/v1/runs?limit=5", key: "tenant"})
		r.send(ctx, call{stack: A, op: "streamRunEvents", path: "/v1/runs/" + r.runID + "/events", key: "tenant", accept: "text/event-stream"})
		r.send(ctx, call{stack: A, op: "cancelRun", path: "/v1/runs/" + r.runID + ":cancel", key: "tenant",
			expect: []int{http.StatusOK, http.StatusConflict}})
	}
	r.interop(ctx)
	r.send(ctx, call{stack: A, op: "listAudit", path: "/v1/audit?limit=5", key: "tenant"})
	r.send(ctx, call{stack: A, op: "getConsole", path: "/console"})
	if a, ok := r.send(ctx, call{stack: A, op: "getConsoleOverview", path: "/v1/console/overview", key: "tenant"}); ok {
		r.keyTenant = firstNonEmpty(r.keyTenant, str(a.body, "whoami", "tenant_id"))
		r.principal = str(a.body, "whoami", "principal_id")
	}
	r.send(ctx, call{stack: A, op: "getConsoleUsage", path: "/v1/console/usage", key: "tenant"})
	r.send(ctx, call{stack: A, op: "listConsoleAlerts", path: "/v1/console/alerts", key: "tenant"})
}

// interop drives the A2A and MCP surfaces of Stack A with the probe agent.
func (r *runner) interop(ctx context.Context) {
	A := openapi.StackA
	r.send(ctx, call{stack: A, op: "listA2AAgents", path: "/a2a/agents", key: "tenant"})
	r.send(ctx, call{stack: A, op: "getA2AAgentCard", path: "/a2a/agents/" + ProbeAgentID + "/.well-known/agent-card.json", key: "tenant"})
	if r.keyTenant != "" {
		// Public cards are opt-in per tenant: 401 is the documented answer
		// of a tenant that has not published.
		r.send(ctx, call{stack: A, op: "getPublicA2AAgentCard", path: "/a2a/tenants/" + r.keyTenant + "/agents/" + ProbeAgentID + "/.well-known/agent-card.json",
			expect: []int{http.StatusOK, http.StatusUnauthorized}})
	}
	r.send(ctx, call{stack: A, op: "callA2AAgent", path: "/a2a/agents/" + ProbeAgentID, key: "tenant", example: "callA2AAgent.request",
		edit: func(b map[string]any) { set(b, "msg-conformance-"+r.suffix, "params", "message", "messageId") }})

	// MCP: a session is opened with initialize (no golden example: it is
	// the protocol's handshake), the golden tool call runs the probe agent
	// in it, and the session is ended.
	const mcpAccept = "application/json, text/event-stream"
	init, ok := r.send(ctx, call{stack: A, op: "postMCP", path: "/mcp", key: "tenant", accept: mcpAccept, body: map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{},
			"clientInfo": map[string]any{"name": "agentos-conformance", "version": "1"}}}})
	session := ""
	if ok {
		session = init.header.Get("Mcp-Session-Id")
	}
	hdr := map[string]string{}
	if session != "" {
		hdr["Mcp-Session-Id"] = session
		r.send(ctx, call{stack: A, op: "postMCP", path: "/mcp", key: "tenant", accept: mcpAccept, header: hdr, expect: []int{http.StatusAccepted, http.StatusOK},
			body: map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"}})
	}
	r.send(ctx, call{stack: A, op: "postMCP", path: "/mcp", key: "tenant", accept: mcpAccept, header: hdr, example: "postMCP.request",
		edit: func(b map[string]any) { set(b, ProbeAgentID, "params", "name") }})
	// A session's GET stream stays open for server messages; without a
	// session id the documented answer is 400.
	r.send(ctx, call{stack: A, op: "getMCPStream", path: "/mcp", key: "tenant", accept: "text/event-stream", expect: []int{http.StatusBadRequest}})
	if session != "" {
		r.send(ctx, call{stack: A, op: "deleteMCPSession", path: "/mcp", key: "tenant", header: hdr, expect: []int{http.StatusNoContent, http.StatusOK}})
	}
}

// waitRun polls getRun until the run is terminal, bounded by four request
// timeouts.
func (r *runner) waitRun(ctx context.Context) {
	deadline := time.Now().Add(4 * r.t.Timeout)
	for {
		a, ok := r.send(ctx, call{stack: openapi.StackA, op: "getRun", path: "/v1/runs/" + r.runID, key: "tenant"})
		st := str(a.body, "run", "status")
		if !ok || st == "completed" || st == "failed" || st == "cancelled" || st == "canceled" || time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// asKeyTenant points a golden auth block at the key's tenant.
func (r *runner) asKeyTenant(b map[string]any, path ...string) {
	if r.keyTenant != "" {
		set(b, r.keyTenant, append(path, "tenant_id")...)
	}
	if r.principal != "" {
		set(b, r.principal, append(path, "principal", "principal_id")...)
	}
}

func (r *runner) stackB(ctx context.Context) {
	B := openapi.StackB
	r.send(ctx, call{stack: B, op: "listModels", path: "/v1/models", key: "tenant"})
	r.send(ctx, call{stack: B, op: "invokeModel", path: "/v1/models:invoke", key: "tenant", example: "invokeModel.request",
		edit: func(b map[string]any) {
			r.asKeyTenant(b, "auth")
			set(b, "req_conformance_"+r.suffix+"_1", "request", "request_id")
		}})
	r.send(ctx, call{stack: B, op: "checkPolicy", path: "/v1/policy:check", key: "tenant", example: "checkPolicy.request",
		edit: func(b map[string]any) {
			r.asKeyTenant(b, "auth")
			set(b, "req_conformance_"+r.suffix+"_2", "policy_check", "request_id")
		}})
	r.send(ctx, call{stack: B, op: "createChatCompletion", path: "/v1/chat/completions", key: "tenant", example: "createChatCompletion.request"})
	r.send(ctx, call{stack: B, op: "createEmbedding", path: "/v1/embeddings", key: "tenant", example: "createEmbedding.request"})
	r.send(ctx, call{stack: B, op: "getUsage", path: "/v1/usage", key: "tenant"})

	// The drop-in surfaces for the official SDKs.
	r.send(ctx, call{stack: B, op: "listOpenAIModels", path: "/openai/v1/models", key: "tenant"})
	r.send(ctx, call{stack: B, op: "getOpenAIModel", path: "/openai/v1/models/echo-1", key: "tenant"})
	r.send(ctx, call{stack: B, op: "createOpenAIChatCompletion", path: "/openai/v1/chat/completions", key: "tenant", example: "createOpenAIChatCompletion.request"})
	r.send(ctx, call{stack: B, op: "createOpenAIEmbedding", path: "/openai/v1/embeddings", key: "tenant", example: "createOpenAIEmbedding.request"})
	if a, ok := r.send(ctx, call{stack: B, op: "createResponse", path: "/openai/v1/responses", key: "tenant", example: "createResponse.request"}); ok {
		if id := str(a.body, "id"); id != "" {
			r.send(ctx, call{stack: B, op: "getResponse", path: "/openai/v1/responses/" + id, key: "tenant"})
			r.send(ctx, call{stack: B, op: "deleteResponse", path: "/openai/v1/responses/" + id, key: "tenant"})
		}
	}
	r.send(ctx, call{stack: B, op: "createMessage", path: "/anthropic/v1/messages", key: "tenant", example: "createMessage.request"})
	r.send(ctx, call{stack: B, op: "countMessageTokens", path: "/anthropic/v1/messages/count_tokens", key: "tenant", example: "countMessageTokens.request"})
	r.send(ctx, call{stack: B, op: "listAnthropicModels", path: "/anthropic/v1/models", key: "tenant"})
	r.send(ctx, call{stack: B, op: "getAnthropicModel", path: "/anthropic/v1/models/echo-1", key: "tenant"})
}

func (r *runner) federation(ctx context.Context) {
	F := openapi.Federation
	r.send(ctx, call{stack: F, op: "getPeerInfo", path: "/v1/federation/peer", key: "tenant"})
	r.send(ctx, call{stack: F, op: "getPeerInfoAlias", path: "/v1/peer/info", key: "tenant"})
	r.send(ctx, call{stack: F, op: "getPeerCapabilities", path: "/v1/federation/peer/capabilities", key: "tenant"})
	r.send(ctx, call{stack: F, op: "getPeerCapabilitiesAlias", path: "/v1/peer/capabilities", key: "tenant"})
	r.send(ctx, call{stack: F, op: "listPeers", path: "/v1/federation/peers", key: "admin"})
	r.send(ctx, call{stack: F, op: "registerPeer", path: "/v1/federation/peers", key: "admin", example: "registerPeer.request",
		edit: func(b map[string]any) {
			set(b, ProbePeerStackID, "peer", "stack_id")
			set(b, "http://127.0.0.1:9", "peer", "federation_url")
			set(b, "http://127.0.0.1:9", "peer", "stack_a_url")
			if r.keyTenant != "" {
				set(b, []any{r.keyTenant}, "peer", "trusted_tenants")
			}
		}, expect: []int{http.StatusCreated, http.StatusConflict}})
	r.send(ctx, call{stack: F, op: "deletePeer", path: "/v1/federation/peers/" + ProbePeerStackID, key: "admin"})
	// The golden forward names a peer the target does not know: the
	// documented answer is 409 (a federation with that peer answers 200).
	r.send(ctx, call{stack: F, op: "forwardRun", path: "/v1/federation/runs:forward", key: "admin", example: "forwardRun.request",
		edit: func(b map[string]any) {
			r.asKeyTenant(b, "forward", "auth")
			set(b, "idem_conformance_fwd_"+r.suffix, "forward", "run_request", "idempotency_key")
		}, expect: []int{http.StatusOK, http.StatusConflict}})
	if r.runID != "" {
		r.send(ctx, call{stack: F, op: "streamFederatedRunEvents", path: "/v1/federation/runs/" + r.runID + "/events", key: "tenant", accept: "text/event-stream"})
	}
	// Ingest needs a peer's signed assertion the suite cannot make: the
	// documented answer to the golden batch without it is 401.
	r.send(ctx, call{stack: F, op: "ingestEvents", path: "/v1/federation/events:ingest", example: "ingestEvents.request",
		expect: []int{http.StatusOK, http.StatusUnauthorized}})
}

// cleanup leaves the probe agent and tenant disabled; the golden tenant
// update is the one that disables.
func (r *runner) cleanup(ctx context.Context) {
	A := openapi.StackA
	r.send(ctx, call{stack: A, op: "putAgent", path: "/v1/agents/" + ProbeAgentID, key: "tenant", example: "putAgent.request",
		edit: func(b map[string]any) {
			set(b, "Conformance probe (agentos conformance)", "agent", "name")
			set(b, "disabled", "agent", "status")
		}, expect: []int{http.StatusOK, http.StatusCreated}})
	r.send(ctx, call{stack: A, op: "updateTenant", path: "/v1/admin/tenants/" + ProbeTenantID, key: "admin", example: "updateTenant.request"})
}

func exampleBody(name string) (map[string]any, error) {
	raw, ok := examples.Get(name)
	if !ok {
		return nil, fmt.Errorf("golden example %s is not embedded", name)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("golden example %s: %w", name, err)
	}
	return m, nil
}

// set puts v at path in m, creating objects on the way.
func set(m map[string]any, v any, path ...string) {
	for _, p := range path[:len(path)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

// str reads a string at path in m.
func str(m map[string]any, path ...string) string {
	var cur any = m
	for _, p := range path {
		obj, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = obj[p]
	}
	s, _ := cur.(string)
	return s
}

func statusList(s []int) string {
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, " or ")
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
