package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/conformance/suite"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/internal/testkit/testnode"
	"github.com/agentos/agentos/openapi"
)

// liveClient sends requests to a live node and checks every answer
// against the port's OpenAPI document, recording which operations it hit.
type liveClient struct {
	t          *testing.T
	validators map[string]*openapi.Validator
	urls       map[string]string
	covered    map[string]map[string]bool
}

// call sends one request (testkit.Do), records the operation it hit and
// checks the answer against the stack's document; it returns the status
// and a JSON answer decoded.
func (lc *liveClient) call(stack, method, path, key string, body any, hdr ...string) (int, map[string]any) {
	t := lc.t
	t.Helper()
	r := testkit.Do(t, method, lc.urls[stack]+path, key, body, hdr...)
	req, err := http.NewRequest(method, lc.urls[stack]+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := lc.validators[stack]
	if op, ok := v.Match(method, req.URL.Path); ok {
		lc.covered[stack][op.OperationID] = true
	}
	resp := &http.Response{StatusCode: r.Status, Header: r.Header, Body: io.NopCloser(bytes.NewReader(r.Body))}
	if err := v.ValidateResponse(req, resp); err != nil {
		t.Errorf("%s %s %s -> %d does not fit the document: %v\nbody: %.600s", stack, method, path, r.Status, err, r.Body)
	}
	var out map[string]any
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(r.Body, &out)
	}
	return r.Status, out
}

// TestLiveNode_AnswersFitTheDocuments drives every operation of the three
// documents on a real node with the golden examples (conformance/suite,
// the engine of `agentos conformance`) and validates each answer. A second
// run against the same node reuses the probe objects and passes too.
func TestLiveNode_AnswersFitTheDocuments(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	target := suite.Target{URLs: map[string]string{openapi.StackA: n.URL(app.StackA), openapi.StackB: n.URL(app.StackB), openapi.Federation: n.URL(app.StackFed)},
		APIKey: creds.TenantAdmin.APIKey, AdminKey: creds.PlatformAdmin.APIKey, Timeout: 10 * time.Second}
	want := 0
	for _, s := range openapi.Stacks() {
		v, err := openapi.NewValidator(s)
		if err != nil {
			t.Fatal(err)
		}
		want += len(v.Operations())
	}
	for round := 1; round <= 2; round++ {
		rep, err := suite.Run(context.Background(), target)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			if !r.Passed() || r.Skipped != "" {
				t.Errorf("round %d: %s %s: status %d implemented=%v accepted=%v valid=%v skipped=%q: %s",
					round, r.Stack, r.OperationID, r.Status, r.Implemented, r.Accepted, r.Valid, r.Skipped, r.Difference)
			}
		}
		if !rep.OK() || rep.Passed != want || len(rep.Results) != want {
			t.Fatalf("round %d: passed %d failed %d skipped %d of %d, want %d operations", round, rep.Passed, rep.Failed, rep.Skipped, len(rep.Results), want)
		}
	}
}

// TestLiveNode_ErrorAnswersFitTheDocuments sends the requests the golden
// examples do not (missing objects, duplicates, replays, no credential) and
// validates the error answers against the documents.
func TestLiveNode_ErrorAnswersFitTheDocuments(t *testing.T) {
	n, creds := testnode.Start(t).Parts()
	lc := &liveClient{t: t, validators: map[string]*openapi.Validator{}, urls: map[string]string{}, covered: map[string]map[string]bool{}}
	for _, s := range openapi.Stacks() {
		v, err := openapi.NewValidator(s)
		if err != nil {
			t.Fatal(err)
		}
		lc.validators[s] = v
		lc.urls[s] = n.URL(s)
		lc.covered[s] = map[string]bool{}
	}
	admin, key := creds.PlatformAdmin.APIKey, creds.TenantAdmin.APIKey
	A, B, F := openapi.StackA, openapi.StackB, openapi.Federation

	create := map[string]any{"tenant_create": map[string]any{"tenant_id": "tnt_conf", "name": "Conformance"}}
	lc.call(A, "POST", "/v1/admin/tenants", admin, create)
	lc.call(A, "POST", "/v1/admin/tenants", admin, create)    // 409
	lc.call(A, "GET", "/v1/admin/tenants/tnt_conf", key, nil) // 404
	lc.call(A, "GET", "/v1/audit", "", nil)                   // 401
	lc.call(A, "GET", "/v1/agents/agt_missing", key, nil)     // 404
	lc.call(A, "GET", "/v1/memory/notes/missing", key, nil)   // 404
	lc.call(A, "GET", "/v1/runs/run_missing", key, nil)       // 404
	lc.call(A, "POST", "/v1/memory/notes:search", key, map[string]any{"query": "quick fox", "mode": "vector", "limit": 5})

	st, created := lc.call(A, "POST", "/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "idem_conf"})
	if st != 201 {
		t.Fatalf("create run: %d %v", st, created)
	}
	runID := created["run"].(map[string]any)["run_id"].(string)
	lc.call(A, "POST", "/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "idem_conf"})    // 201 replay
	lc.call(A, "POST", "/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "other"}, "idempotency_key": "idem_conf"}) // 409
	testkit.WaitFor(t, "run "+runID+" to end", 10*time.Second, func() bool {
		_, r := lc.call(A, "GET", "/v1/runs/"+runID, key, nil)
		s, _ := r["run"].(map[string]any)["status"].(string)
		return s == "completed" || s == "failed"
	})
	lc.call(A, "GET", "/v1/runs/"+runID+"/events", key, nil, "Accept", "application/json")

	// Interop: the agents as A2A agents and as MCP tools.
	lc.call(A, "GET", "/a2a/agents", key, nil)
	lc.call(A, "GET", "/a2a/agents/agt_sample_echo_v1/.well-known/agent-card.json", key, nil)
	lc.call(A, "GET", "/a2a/tenants/tnt_demo/agents/agt_sample_echo_v1/.well-known/agent-card.json", "", nil) // 401: not published
	if st, rpc := lc.call(A, "POST", "/a2a/agents/agt_sample_echo_v1", key, map[string]any{"jsonrpc": "2.0", "id": 1,
		"method": "GetTask", "params": map[string]any{"id": runID}}); st != 200 || rpc["result"] == nil {
		t.Errorf("A2A GetTask of the sample run: %d %v", st, rpc)
	}
	lc.call(A, "POST", "/mcp", key, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": map[string]any{
		"protocolVersion": "2025-06-18", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "conformance", "version": "1"}}},
		"Accept", "application/json, text/event-stream")
	lc.call(A, "GET", "/mcp", key, nil, "Accept", "text/event-stream")        // no session id
	lc.call(A, "DELETE", "/mcp", key, nil)                                    // no session id
	lc.call(A, "GET", "/v1/runs/"+runID+"/events?after_sequence=3", key, nil) // SSE, closes after the terminal event
	lc.call(A, "POST", "/v1/runs/"+runID+":cancel", key, nil)                 // 409, finished
	lc.call(A, "GET", "/v1/console/usage?tenant_id=tnt_conf", key, nil)       // 404

	// Stack B's drop-in surfaces answer errors in their own shapes.
	lc.call(B, "GET", "/openai/v1/models/no-such-model", key, nil)                                                                                                     // 404
	lc.call(B, "POST", "/openai/v1/chat/completions", "", map[string]any{"model": "tier:fast", "messages": []any{map[string]any{"role": "user", "content": "hello"}}}) // 401
	lc.call(B, "POST", "/openai/v1/responses", key, map[string]any{"model": "tier:fast", "previous_response_id": "resp_missing", "input": "x"})                        // 404
	lc.call(B, "GET", "/openai/v1/responses/resp_missing", key, nil)                                                                                                   // 404
	lc.call(B, "POST", "/anthropic/v1/messages", key, map[string]any{"model": "tier:fast", "messages": []any{map[string]any{"role": "user", "content": "hello"}}})     // 400: no max_tokens
	lc.call(B, "POST", "/anthropic/v1/messages", "", map[string]any{"model": "tier:fast", "max_tokens": 8, "messages": []any{}})                                       // 401
	lc.call(B, "GET", "/anthropic/v1/models/no-such-model", key, nil)                                                                                                  // 404

	lc.call(F, "POST", "/v1/federation/runs:forward", admin, map[string]any{"forward": map[string]any{
		"target_selector": map[string]any{"stack_id": "stk_nowhere"},
		"run_request":     map[string]any{"agent_id": "agt_sample_echo_v1", "input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": "idem_fwd"}}}) // 409: no such peer
	lc.call(F, "POST", "/v1/federation/events:ingest", admin, map[string]any{"events": []any{}}) // 401: needs a peer assertion
}
