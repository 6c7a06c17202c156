package stacka_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestTools_WebhookSignedCallAndErrorObject(t *testing.T) {
	hook := testkit.StartWebhook(t, func(c testkit.WebhookCall) (int, string) {
		if text := c.Input()["text"].(string); text != "fail please" {
			return 200, `{"output":{"shouted":"` + strings.ToUpper(text) + `"}}`
		}
		return http.StatusBadGateway, `{"error":{"code":"dependency_unavailable","message":"crm down","retryable":true,"details":{}}}`
	})
	n := newNode(t)
	n.putSecret("tnt_a", "hook", "s3cret")
	code, _, b := n.do("PUT", "/v1/tools/tool.hook", "tok-a", map[string]any{"tool": map[string]any{"kind": "http", "name": "shout",
		"config": map[string]any{"url": hook.URL, "secret_ref": "secret:hook", "timeout_ms": 5000}}})
	if code != 201 || b["tool"].(map[string]any)["tool_id"] != "tool.hook" {
		t.Fatalf("put tool: %d %v", code, b)
	}
	n.putAgent("tok-a", "agt_h", "tool.hook")
	id := n.createRun("tok-a", "agt_h", "hi there")["run_id"].(string)
	run := waitStatus(t, n, "tok-a", id, "completed", 5*time.Second)
	c := testkit.Await(t, "the webhook call", 5*time.Second, hook.Got)
	if !c.SignedWith("s3cret") || !strings.HasPrefix(c.Header.Get("traceparent"), "00-") || c.Field("run_id") != id || c.Field("tenant_id") != "tnt_a" ||
		c.Field("tool_id") != "tool.hook" || !strings.HasPrefix(c.Field("tool_call_id"), "tcall_") {
		t.Fatalf("webhook call: %v %s", c.Header, c.Body)
	}
	if !strings.Contains(run["output"].(map[string]any)["text"].(string), `tool shout: {"shouted":"HI THERE"}`) {
		t.Fatalf("output %v", run["output"])
	}
	id = n.createRun("tok-a", "agt_h", "fail please")["run_id"].(string)
	run = waitStatus(t, n, "tok-a", id, "failed", 5*time.Second)
	if e := run["error"].(map[string]any); e["code"] != "dependency_unavailable" || !strings.Contains(e["message"].(string), "crm down") {
		t.Fatalf("error %v", e)
	}
}

type shoutIn struct {
	Text string `json:"text"`
}
type shoutOut struct {
	Upper string `json:"upper"`
}

func TestTools_MCPToolOverStreamableHTTP(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "test-mcp", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "shout", Description: "upper-cases text"},
		func(ctx context.Context, req *mcp.CallToolRequest, in shoutIn) (*mcp.CallToolResult, shoutOut, error) {
			return nil, shoutOut{Upper: strings.ToUpper(in.Text)}, nil
		})
	var traced atomic.Int32
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Get("traceparent")) == 55 {
			traced.Add(1)
		}
		mcpHandler.ServeHTTP(w, r)
	}), nil)
	n := newNode(t)
	if code, _, b := n.do("PUT", "/v1/tools/tool.mcp.add", "tok-a", map[string]any{"tool": map[string]any{"kind": "mcp", "name": "shout",
		"config": map[string]any{"url": srv.URL, "tool_name": "shout"}}}); code != 201 {
		t.Fatalf("put tool: %d %v", code, b)
	}
	n.putAgent("tok-a", "agt_m", "tool.mcp.add")
	id := n.createRun("tok-a", "agt_m", "quiet words")["run_id"].(string)
	run := waitStatus(t, n, "tok-a", id, "completed", 10*time.Second)
	if !strings.Contains(run["output"].(map[string]any)["text"].(string), `{"upper":"QUIET WORDS"}`) {
		t.Fatalf("output %v", run["output"])
	}
	if traced.Load() == 0 {
		t.Fatal("no MCP request carried the run's traceparent")
	}
}

func TestTools_HTTPFetchEgressRules(t *testing.T) {
	page := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("a", 100)))
	}), nil)
	cases := []struct {
		name     string
		loopback bool
		allow    []string
		url      string
		status   string
		want     string
	}{
		{"loopback allowed in demo", true, nil, page.URL, "completed", `"truncated":true`},
		{"loopback refused in prod", false, nil, page.URL, "failed", "forbidden"},
		{"listed host name still checks the resolved IP", false, []string{"localhost"}, strings.Replace(page.URL, "127.0.0.1", "localhost", 1), "failed", "forbidden"},
		{"listed CIDR", false, []string{"127.0.0.0/8"}, page.URL, "completed", `"status":200`},
		{"private address refused", true, nil, "http://10.255.255.1:9/", "failed", "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, func(c *stackaConfig, _ tenants) {
				c.AllowLoopbackEgress, c.ToolEgressAllow, c.FetchMaxBytes = tc.loopback, tc.allow, 64
				c.Mode = "prod"
			})
			n.putAgent("tok-a", "agt_f", "tool.http.fetch")
			id := n.createRun("tok-a", "agt_f", tc.url)["run_id"].(string)
			run := waitStatus(t, n, "tok-a", id, tc.status, 10*time.Second)
			hay := fmt.Sprint(run["output"], run["error"])
			if !strings.Contains(hay, tc.want) {
				t.Fatalf("run output/error %s", hay)
			}
		})
	}
}

func TestTools_RegistryAPI(t *testing.T) {
	n := newNode(t)
	cases := []struct {
		name   string
		id     string
		tool   map[string]any
		status int
		field  string
	}{
		{"http ok", "tool.crm", map[string]any{"kind": "http", "config": map[string]any{"url": "https://crm.example.com/hook"}}, 201, ""},
		{"unknown kind", "tool.x", map[string]any{"kind": "grpc"}, 400, "tool.kind"},
		{"http without url", "tool.x", map[string]any{"kind": "http", "config": map[string]any{}}, 400, "tool.config.url"},
		{"bad secret ref", "tool.x", map[string]any{"kind": "http", "config": map[string]any{"url": "https://a.b", "secret_ref": "vault:x"}}, 400, "tool.config.secret_ref"},
		{"mcp without tool name", "tool.x", map[string]any{"kind": "mcp", "config": map[string]any{"url": "http://a.b/mcp"}}, 400, "tool.config.tool_name"},
		{"builtin kind is reserved", "tool.mine", map[string]any{"kind": "builtin"}, 400, "tool.kind"},
		{"bad id", "bad id!", map[string]any{"kind": "http", "config": map[string]any{"url": "https://a.b"}}, 400, "tool.tool_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := n.do("PUT", "/v1/tools/"+strings.ReplaceAll(tc.id, " ", "%20"), "tok-a", map[string]any{"tool": tc.tool})
			if code != tc.status {
				t.Fatalf("%d %v", code, b)
			}
			if tc.field != "" && b["error"].(map[string]any)["details"].(map[string]any)["field"] != tc.field {
				t.Fatalf("error %v", b["error"])
			}
		})
	}
	_, _, b := n.do("GET", "/v1/tools", "tok-a", nil)
	ids := map[string]bool{}
	for _, x := range asSlice(b["tools"]) {
		ids[x.(map[string]any)["tool_id"].(string)] = true
	}
	for _, want := range []string{"tool.crm", "tool.echo", "tool.kv.put", "tool.kv.get", "tool.kv.search", "tool.http.fetch"} {
		if !ids[want] {
			t.Fatalf("GET /v1/tools lacks %s: %v", want, ids)
		}
	}
	_, _, b = n.do("GET", "/v1/tools", "tok-b", nil)
	for _, x := range asSlice(b["tools"]) {
		if x.(map[string]any)["tool_id"] == "tool.crm" {
			t.Fatal("tenant b sees tenant a's tool")
		}
	}
	if err := n.svc.EnsureTool(context.Background(), "tnt_a", core.ToolDescriptor{ToolID: "tool.echo", Name: "echo", Kind: "builtin"}); err != nil {
		t.Fatal(err)
	}
	if err := n.svc.EnsureTool(context.Background(), "tnt_a", core.ToolDescriptor{ToolID: "tool.echo", Name: "echo", Kind: "builtin"}); err != nil {
		t.Fatal(err)
	}
}

func TestAgents_PutGetListVersioned(t *testing.T) {
	n := newNode(t)
	n.putAgent("tok-a", "agt_v", "tool.echo")
	n.putAgent("tok-a", "agt_v", "tool.echo", "tool.kv.get")
	code, _, b := n.do("GET", "/v1/agents/agt_v", "tok-a", nil)
	ag := b["agent"].(map[string]any)
	if code != 200 || ag["version"] != 2.0 || ag["tenant_id"] != "tnt_a" || len(asSlice(ag["tool_ids"])) != 2 || b["correlation_id"] == "" {
		t.Fatalf("%d %v", code, b)
	}
	if code, _, _ := n.do("PUT", "/v1/agents/agt_v", "tok-a", map[string]any{"agent": map[string]any{"name": "x"}}); code != 400 {
		t.Fatalf("agent without model_ref: %d", code)
	}
	if code, _, _ := n.do("PUT", "/v1/agents/agt_v", "tok-a", map[string]any{"agent": map[string]any{"agent_id": "agt_other", "model_ref": "tier:fast"}}); code != 400 {
		t.Fatalf("mismatched id: %d", code)
	}
	if code, _, _ := n.do("GET", "/v1/agents/agt_none", "tok-a", nil); code != 404 {
		t.Fatalf("unknown agent: %d", code)
	}
	seed := core.Agent{TenantID: "tnt_a", AgentID: "agt_sample_echo_v1", Name: "Sample echo agent", ModelRef: "tier:fast", ToolIDs: []string{"tool.echo"}}
	for i := 0; i < 2; i++ {
		if err := n.svc.EnsureAgent(context.Background(), seed); err != nil {
			t.Fatal(err)
		}
	}
	_, _, b = n.do("GET", "/v1/agents/agt_sample_echo_v1", "tok-a", nil)
	if b["agent"].(map[string]any)["version"] != 1.0 {
		t.Fatalf("EnsureAgent is not idempotent: %v", b["agent"])
	}
	_, _, b = n.do("GET", "/v1/agents", "tok-a", nil)
	if len(asSlice(b["agents"])) != 2 {
		t.Fatalf("list %v", b)
	}
	if code, _, b := n.do("GET", "/v1/health", "", nil); code != 200 || b["service"] != "stack-a" || b["version"] != core.APIVersion {
		t.Fatalf("health %d %v", code, b)
	}
}

func TestMemory_PutGetSearchAndQuota(t *testing.T) {
	n := newNode(t, func(c *stackaConfig, ts tenants) {
		ts["tnt_b"].Quotas.Storage = &core.StorageQuotas{MaxMemoryBytes: core.Ptr[int64](3000)}
	})
	put := func(tok, ns, key string, v any) (int, map[string]any) {
		code, _, b := n.do("PUT", "/v1/memory/"+ns+"/"+key, tok, map[string]any{"value": v, "metadata": map[string]any{"src": "test"}})
		return code, b
	}
	for k, v := range map[string]string{"cats": "cats purr and sleep in the sun", "dogs": "dogs bark at the mail carrier", "fish": "fish swim in the sea"} {
		if code, b := put("tok-a", "notes", k, v); code != 200 {
			t.Fatalf("put: %d %v", code, b)
		}
	}
	code, _, b := n.do("GET", "/v1/memory/notes/cats", "tok-a", nil)
	if code != 200 || b["memory"].(map[string]any)["value"] != "cats purr and sleep in the sun" {
		t.Fatalf("get %d %v", code, b)
	}
	if code, _, _ := n.do("GET", "/v1/memory/notes/cats", "tok-b", nil); code != 404 {
		t.Fatalf("other tenant: %d", code)
	}
	for _, mode := range []string{"keyword", "vector"} {
		code, _, b = n.do("POST", "/v1/memory/notes:search", "tok-a", map[string]any{"query": "dogs bark", "mode": mode, "limit": 2})
		res := asSlice(b["results"])
		if code != 200 || len(res) == 0 || len(res) > 2 || res[0].(map[string]any)["key"] != "dogs" {
			t.Fatalf("%s search: %d %v", mode, code, b)
		}
	}
	if code, _, _ := n.do("POST", "/v1/memory/notes:search", "tok-a", map[string]any{"query": "x", "mode": "fuzzy"}); code != 400 {
		t.Fatalf("bad mode: %d", code)
	}
	if code, _ := put("tok-a", "notes", "k", nil); code != 400 {
		t.Fatalf("missing value: %d", code)
	}
	if code, b := put("tok-b", "big", "one", strings.Repeat("x", 4000)); code != 429 || b["error"].(map[string]any)["code"] != "quota_exceeded" {
		t.Fatalf("over max_memory_bytes: %d %v", code, b)
	}
}

// A PUT that creates answers 201 and one that replaces 200 (openapi:
// putAgent, putTool), for agents and tools alike; the replace keeps
// created_at and, for an agent, bumps the version.
func TestPut_CreatedIs201ReplacedIs200(t *testing.T) {
	n := newNode(t)
	for i, want := range []int{201, 200, 200} {
		code, _, b := n.do("PUT", "/v1/agents/agt_p", "tok-a", map[string]any{"agent": map[string]any{"name": "p", "model_ref": "tier:fast"}})
		if code != want || b["agent"].(map[string]any)["version"] != float64(i+1) {
			t.Fatalf("agent put %d: %d %v, want %d and version %d", i+1, code, b, want, i+1)
		}
	}
	var created any
	for i, want := range []int{201, 200} {
		code, _, b := n.do("PUT", "/v1/tools/tool.p", "tok-a", map[string]any{"tool": map[string]any{"kind": "http", "config": map[string]any{"url": "https://crm.example.com/hook"}}})
		if code != want {
			t.Fatalf("tool put %d: %d %v, want %d", i+1, code, b, want)
		}
		tool := b["tool"].(map[string]any)
		if i == 0 {
			created = tool["created_at"]
		} else if tool["created_at"] != created || tool["updated_at"] == created {
			t.Fatalf("replace changed created_at or kept updated_at: %v (created %v)", tool, created)
		}
	}
	// Another tenant's PUT of the same ids creates its own: 201 again.
	if code, _, b := n.do("PUT", "/v1/tools/tool.p", "tok-b", map[string]any{"tool": map[string]any{"kind": "http", "config": map[string]any{"url": "https://crm.example.com/hook"}}}); code != 201 {
		t.Fatalf("other tenant's tool: %d %v", code, b)
	}
}
