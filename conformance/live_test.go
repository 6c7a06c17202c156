package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/openapi"
	"github.com/rs/zerolog"
)

// liveClient sends requests to a live node and checks every answer
// against the port's OpenAPI document, recording which operations it hit.
type liveClient struct {
	t          *testing.T
	validators map[string]*openapi.Validator
	urls       map[string]string
	covered    map[string]map[string]bool
}

func (lc *liveClient) call(stack, method, path, key string, body any, hdr ...string) (int, map[string]any) {
	t := lc.t
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, lc.urls[stack]+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	v := lc.validators[stack]
	if op, ok := v.Match(method, req.URL.Path); ok {
		lc.covered[stack][op.OperationID] = true
	}
	if err := v.ValidateResponse(req, resp); err != nil {
		raw, _ := io.ReadAll(resp.Body)
		t.Errorf("%s %s %s -> %d does not fit the document: %v\nbody: %.600s", stack, method, path, resp.StatusCode, err, raw)
	}
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(raw, &out)
	}
	return resp.StatusCode, out
}

// TestLiveNode_AnswersFitTheDocuments drives every operation of the three
// documents on a real node and validates each answer, success and error.
func TestLiveNode_AnswersFitTheDocuments(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	n := app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	if err := n.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	creds, err := app.ReadCredentials(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
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

	for _, s := range openapi.Stacks() {
		health := "/v1/health"
		if s == F {
			health = "/v1/federation/health"
		}
		for _, p := range []string{health, "/healthz", "/readyz", "/metrics", "/openapi.yaml", "/openapi.json", "/examples/"} {
			if st, _ := lc.call(s, "GET", p, "", nil); st != 200 {
				t.Errorf("%s %s: %d", s, p, st)
			}
		}
		_, idx := lc.call(s, "GET", "/examples/", "", nil)
		if items, _ := idx["examples"].([]any); len(items) > 0 {
			name := items[0].(map[string]any)["name"].(string)
			lc.call(s, "GET", "/examples/"+name+".json", "", nil)
		}
	}

	// Stack A: tenants and tokens.
	lc.call(A, "POST", "/v1/admin/tenants", admin, map[string]any{"tenant_create": map[string]any{"tenant_id": "tnt_conf", "name": "Conformance"}})
	lc.call(A, "POST", "/v1/admin/tenants", admin, map[string]any{"tenant_create": map[string]any{"tenant_id": "tnt_conf", "name": "Conformance"}}) // 409
	lc.call(A, "GET", "/v1/admin/tenants", admin, nil)
	lc.call(A, "GET", "/v1/admin/tenants/tnt_conf", admin, nil)
	lc.call(A, "GET", "/v1/admin/tenants/tnt_conf", key, nil) // 404
	lc.call(A, "PATCH", "/v1/admin/tenants/tnt_conf", admin, map[string]any{"tenant_update": map[string]any{"name": "Renamed", "quotas": map[string]any{"runs": map[string]any{"max_concurrent_runs": 3}}}})
	_, tok := lc.call(A, "POST", "/v1/admin/tenants/tnt_conf/tokens", admin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_conf", "principal_type": "user", "scopes": []string{"runs:read"}, "roles": []string{"tenant_user"}}})
	tokenID, _ := tok["token"].(map[string]any)["token_id"].(string)
	lc.call(A, "GET", "/v1/admin/tenants/tnt_conf/tokens", admin, nil)
	lc.call(A, "POST", "/v1/admin/tenants/tnt_conf/tokens/"+tokenID+":rotate", admin, nil)
	lc.call(A, "DELETE", "/v1/admin/tenants/tnt_conf/tokens/"+tokenID, admin, nil)
	lc.call(A, "GET", "/v1/audit?limit=5", key, nil)
	lc.call(A, "GET", "/v1/audit", "", nil) // 401

	// Agents, tools, memory.
	lc.call(A, "GET", "/v1/agents", key, nil)
	lc.call(A, "GET", "/v1/agents/agt_sample_echo_v1", key, nil)
	lc.call(A, "GET", "/v1/agents/agt_missing", key, nil) // 404
	lc.call(A, "PUT", "/v1/agents/agt_conf", key, map[string]any{"agent": map[string]any{"name": "conf", "model_ref": "tier:fast", "tool_ids": []string{"tool.echo"}}})
	lc.call(A, "GET", "/v1/tools", key, nil)
	lc.call(A, "PUT", "/v1/tools/tool.hook", key, map[string]any{"tool": map[string]any{"tool_id": "tool.hook", "name": "hook", "kind": "http",
		"config": map[string]any{"url": "http://127.0.0.1:9/hook", "timeout_ms": 1000}}})
	lc.call(A, "PUT", "/v1/memory/notes/k1", key, map[string]any{"value": map[string]any{"text": "the quick brown fox"}, "metadata": map[string]any{"lang": "en"}})
	lc.call(A, "GET", "/v1/memory/notes/k1", key, nil)
	lc.call(A, "GET", "/v1/memory/notes/missing", key, nil) // 404
	lc.call(A, "POST", "/v1/memory/notes:search", key, map[string]any{"query": "quick fox", "mode": "keyword", "limit": 5})
	lc.call(A, "POST", "/v1/memory/notes:search", key, map[string]any{"query": "quick fox", "mode": "vector", "limit": 5})

	// Runs and events.
	st, created := lc.call(A, "POST", "/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "idem_conf"})
	if st != 201 {
		t.Fatalf("create run: %d %v", st, created)
	}
	runID := created["run"].(map[string]any)["run_id"].(string)
	lc.call(A, "POST", "/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "idem_conf"})    // 200 replay
	lc.call(A, "POST", "/v1/agents/agt_sample_echo_v1/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "other"}, "idempotency_key": "idem_conf"}) // 409
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, r := lc.call(A, "GET", "/v1/runs/"+runID, key, nil)
		if s, _ := r["run"].(map[string]any)["status"].(string); s == "completed" || s == "failed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	lc.call(A, "GET", "/v1/runs?limit=2", key, nil)
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

	// Console.
	lc.call(A, "GET", "/console", "", nil)
	lc.call(A, "GET", "/v1/console/overview", key, nil)
	lc.call(A, "GET", "/v1/console/usage", admin, nil)
	lc.call(A, "GET", "/v1/console/usage?tenant_id=tnt_conf", key, nil) // 404
	lc.call(A, "GET", "/v1/console/alerts", key, nil)

	// Stack B.
	auth := map[string]any{"tenant_id": "tnt_demo", "principal": map[string]any{"principal_id": "usr_tnt_demo_admin", "principal_type": "user"},
		"scopes": []string{"models:invoke"}, "policy_context": map[string]any{"data_classification": "internal", "region": "local", "purpose": "test"}}
	lc.call(B, "GET", "/v1/models", key, nil)
	lc.call(B, "POST", "/v1/models:invoke", key, map[string]any{"auth": auth, "request": map[string]any{"request_id": "req_conf1", "operation": "chat", "model_ref": "tier:fast",
		"input": map[string]any{"messages": []any{map[string]any{"role": "user", "content": "mail me at jane@example.com"}}}}})
	lc.call(B, "POST", "/v1/models:invoke", key, map[string]any{"auth": auth, "request": map[string]any{"request_id": "req_conf2", "operation": "embed", "model_ref": "builtin/hash-embed-1",
		"input": map[string]any{"texts": []string{"hello world"}}}})
	lc.call(B, "POST", "/v1/policy:check", key, map[string]any{"auth": auth, "policy_check": map[string]any{"request_id": "req_conf3",
		"content": map[string]any{"type": "text", "text": "card 4111 1111 1111 1111"}, "ruleset": "pol_default"}})
	lc.call(B, "POST", "/v1/chat/completions", key, map[string]any{"model": "tier:fast", "messages": []any{map[string]any{"role": "user", "content": "hello"}}})
	lc.call(B, "POST", "/v1/embeddings", key, map[string]any{"model": "builtin/hash-embed-1", "input": "hello"})
	lc.call(B, "GET", "/v1/usage", key, nil)

	// Federation.
	lc.call(F, "GET", "/v1/federation/peer", admin, nil)
	lc.call(F, "GET", "/v1/peer/info", admin, nil)
	lc.call(F, "GET", "/v1/federation/peer/capabilities", admin, nil)
	lc.call(F, "GET", "/v1/peer/capabilities", admin, nil)
	lc.call(F, "GET", "/v1/federation/peers", admin, nil)
	lc.call(F, "POST", "/v1/federation/peers", admin, map[string]any{"peer": map[string]any{"stack_id": "stk_conf", "federation_url": "http://127.0.0.1:9",
		"public_key": "ed25519:" + strings.Repeat("A", 43) + "=", "region": "local", "trusted_tenants": []string{"tnt_demo"}}})
	lc.call(F, "DELETE", "/v1/federation/peers/stk_conf", admin, nil)
	lc.call(F, "POST", "/v1/federation/runs:forward", admin, map[string]any{"forward": map[string]any{
		"target_selector": map[string]any{"stack_id": "stk_nowhere"},
		"run_request":     map[string]any{"agent_id": "agt_sample_echo_v1", "input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": "idem_fwd"}}}) // 409: no such peer
	lc.call(F, "GET", "/v1/federation/runs/"+runID+"/events", key, nil)
	lc.call(F, "POST", "/v1/federation/events:ingest", admin, map[string]any{"events": []any{}}) // 401: needs a peer assertion

	for _, s := range openapi.Stacks() {
		var missing []string
		for _, op := range lc.validators[s].Operations() {
			if !lc.covered[s][op.OperationID] {
				missing = append(missing, op.OperationID)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("%s: operations not exercised against the live node: %v", s, missing)
		}
	}
}
