package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2aclient"
	"github.com/a2aproject/a2a-go/v2/a2aclient/agentcard"
	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const sampleAgent = "agt_sample_echo_v1"

// interopNode is a seeded node with a second tenant, a gated agent in the
// demo tenant and keys for both tenants.
type interopNode struct {
	*testNode
	a, admin, demo, other, otherAudit string
	gate                              *testkit.HeldWebhook // holds each call of agt_gated until released
}

func newInteropNode(t *testing.T) *interopNode {
	t.Helper()
	n := MustStartNode(t)
	in := &interopNode{testNode: n, a: n.URL(app.StackA), admin: n.creds.PlatformAdmin.APIKey, demo: n.creds.TenantAdmin.APIKey}
	in.gate = testkit.StartHeldWebhook(t)
	r := do(t, "GET", in.a+"/v1/admin/tenants/tnt_demo", in.admin, nil)
	expectStatus(t, r, 200, "read demo tenant")
	ent := r.JSON(t)["tenant"].(map[string]any)["entitlements"].(map[string]any)
	tools := append(ent["tool_ids_allowed"].([]any), "tool.gate")
	testkit.PatchTenant(t, in.a, in.admin, "tnt_demo", map[string]any{"entitlements": map[string]any{"tool_ids_allowed": tools}})
	expectStatus(t, do(t, "PUT", in.a+"/v1/tools/tool.gate", in.demo, map[string]any{"tool": map[string]any{"kind": "http", "name": "gate",
		"config": map[string]any{"url": in.gate.URL, "timeout_ms": 60000}}}), 201, "put tool.gate")
	expectStatus(t, do(t, "PUT", in.a+"/v1/agents/agt_gated", in.demo, map[string]any{"agent": map[string]any{
		"name": "Gated", "description": "Waits for the test.", "model_ref": "tier:fast", "tool_ids": []string{"tool.gate"}}}), 201, "put agt_gated")

	expectStatus(t, do(t, "POST", in.a+"/v1/admin/tenants", in.admin, map[string]any{"tenant_create": map[string]any{
		"tenant_id": "tnt_other", "name": "Other", "plan_tier": "pro"}}), 201, "create tnt_other")
	in.other = issueKey(t, in.a, in.admin, "tnt_other", "usr_other", []string{"runs:create", "runs:read", "runs:cancel", "agents:read", "agents:write"})
	in.otherAudit = issueKey(t, in.a, in.admin, "tnt_other", "usr_auditor", []string{"audit:read"})
	expectStatus(t, do(t, "PUT", in.a+"/v1/agents/agt_other", in.other, map[string]any{"agent": map[string]any{
		"name": "Other", "model_ref": "tier:fast"}}), 201, "put agt_other")
	return in
}

func issueKey(t *testing.T, a, admin, tenant, principal string, scopes []string) string {
	t.Helper()
	r := do(t, "POST", a+"/v1/admin/tenants/"+tenant+"/tokens", admin, map[string]any{"token_create": map[string]any{
		"principal_id": principal, "principal_type": "user", "scopes": scopes, "roles": []string{}}})
	expectStatus(t, r, 201, "issue key for "+principal)
	return r.JSON(t)["secret"].(string)
}

// a2aClient discovers agent from its card with the official resolver and
// builds the official client, authenticating with key through the SDK's
// auth interceptor and the card's security schemes.
func a2aClient(t *testing.T, ctx context.Context, base, agent, key string) (*a2aclient.Client, *a2a.AgentCard, context.Context) {
	t.Helper()
	card, err := agentcard.NewResolver(nil).Resolve(ctx, base+"/a2a/agents/"+agent, agentcard.WithRequestHeader("Authorization", "Bearer "+key))
	if err != nil {
		t.Fatalf("resolve card of %s: %v", agent, err)
	}
	creds := a2aclient.NewInMemoryCredentialsStore()
	creds.Set("test", "bearer", a2aclient.AuthCredential(key))
	client, err := a2aclient.NewFromCard(ctx, card, a2aclient.WithCallInterceptors(&a2aclient.AuthInterceptor{Service: creds}))
	if err != nil {
		t.Fatalf("client from card: %v", err)
	}
	t.Cleanup(func() { _ = client.Destroy() })
	return client, card, a2aclient.AttachSessionID(ctx, "test")
}

func seqOf(t *testing.T, meta map[string]any) int64 {
	t.Helper()
	f, ok := meta["agentos.sequence"].(float64)
	if !ok {
		t.Fatalf("update without agentos.sequence: %v", meta)
	}
	return int64(f)
}

func metaOf(ev a2a.Event) map[string]any {
	switch e := ev.(type) {
	case *a2a.Task:
		return e.Metadata
	case *a2a.TaskStatusUpdateEvent:
		return e.Metadata
	case *a2a.TaskArtifactUpdateEvent:
		return e.Metadata
	}
	return nil
}

func TestA2A_OfficialClientDiscoversSendsStreamsCancelsResubscribes(t *testing.T) {
	n := newInteropNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client, card, ctx := a2aClient(t, ctx, n.a, sampleAgent, n.demo)
	if card.Name != "Sample echo agent" || !card.Capabilities.Streaming || len(card.Skills) != 1 ||
		card.SupportedInterfaces[0].URL != n.a+"/a2a/agents/"+sampleAgent || card.SupportedInterfaces[0].ProtocolVersion != "1.0" {
		t.Fatalf("card %+v", card)
	}
	if _, ok := card.SecuritySchemes["bearer"].(a2a.HTTPAuthSecurityScheme); !ok {
		t.Fatalf("card security schemes %+v", card.SecuritySchemes)
	}

	t.Run("send", func(t *testing.T) {
		res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("hello a2a"))})
		if err != nil {
			t.Fatal(err)
		}
		task, ok := res.(*a2a.Task)
		if !ok || task.Status.State != a2a.TaskStateCompleted || len(task.Artifacts) != 1 ||
			!strings.Contains(task.Artifacts[0].Parts[0].Text(), "echo: hello a2a") {
			t.Fatalf("send result %#v", res)
		}
		r := do(t, "GET", n.a+"/v1/runs/"+string(task.ID), n.demo, nil)
		expectStatus(t, r, 200, "the task is a run")
		run := r.JSON(t)["run"].(map[string]any)
		if run["status"] != "completed" || run["context"].(map[string]any)["session_id"] != task.ContextID {
			t.Fatalf("run of the task %v", run)
		}
		r = do(t, "GET", n.a+"/v1/audit?action=run.create", n.demo, nil)
		if !strings.Contains(string(r.Body), string(task.ID)) {
			t.Fatal("the A2A-created run has no run.create audit record")
		}
	})

	t.Run("stream to completion", func(t *testing.T) {
		var seqs []int64
		var first a2a.Event
		var last *a2a.TaskStatusUpdateEvent
		var artifact string
		sawTool := false
		for ev, err := range client.SendStreamingMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("stream me"))}) {
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = ev
				continue
			}
			s := seqOf(t, metaOf(ev))
			switch e := ev.(type) {
			case *a2a.TaskStatusUpdateEvent:
				last = e
				seqs = append(seqs, s)
				if e.Metadata["agentos.event_type"] == "agentos.tool.call.completed" {
					sawTool = true
				}
			case *a2a.TaskArtifactUpdateEvent:
				artifact = e.Artifact.Parts[0].Text()
			}
		}
		if _, ok := first.(*a2a.Task); !ok {
			t.Fatalf("first streamed event %T, want the task", first)
		}
		if last == nil || last.Status.State != a2a.TaskStateCompleted || !strings.Contains(artifact, "echo: stream me") || !sawTool {
			t.Fatalf("stream ended with %+v, artifact %q, tool update seen %v", last, artifact, sawTool)
		}
		for i, s := range seqs {
			if s != int64(i)+2 {
				t.Fatalf("update sequences %v: not 2,3,… without a gap", seqs)
			}
		}
	})

	gated, _, gctx := a2aClient(t, ctx, n.a, "agt_gated", n.demo)

	t.Run("cancel", func(t *testing.T) {
		res, err := gated.SendMessage(gctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("cancel me")),
			Config: &a2a.SendMessageConfig{ReturnImmediately: true}})
		if err != nil {
			t.Fatal(err)
		}
		task := res.(*a2a.Task)
		if got := testkit.Await(t, "the gated tool's call", 10*time.Second, n.gate.Hit).Field("run_id"); got != string(task.ID) {
			t.Fatalf("gate saw run %s, want %s", got, task.ID)
		}
		canceled, err := gated.CancelTask(gctx, &a2a.CancelTaskRequest{ID: task.ID})
		if err != nil || canceled.Status.State != a2a.TaskStateCanceled {
			t.Fatalf("cancel: %v %+v", err, canceled)
		}
		if r := do(t, "GET", n.a+"/v1/runs/"+string(task.ID), n.demo, nil); r.JSON(t)["run"].(map[string]any)["status"] != "canceled" {
			t.Fatalf("run after cancel %s", r.Body)
		}
		if _, err := gated.CancelTask(gctx, &a2a.CancelTaskRequest{ID: task.ID}); !errors.Is(err, a2a.ErrTaskNotCancelable) {
			t.Fatalf("second cancel: %v, want task not cancelable", err)
		}
	})

	t.Run("resubscribe after a cut stream", func(t *testing.T) {
		cutCtx, cut := context.WithCancel(gctx)
		var taskID a2a.TaskID
		seen := map[int64]int{}
		var lastSeen int64
		for ev, err := range gated.SendStreamingMessage(cutCtx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("cut me"))}) {
			if err != nil {
				t.Fatal(err)
			}
			if task, ok := ev.(*a2a.Task); ok {
				taskID = task.ID
				continue
			}
			s := seqOf(t, metaOf(ev))
			seen[s]++
			lastSeen = s
			if metaOf(ev)["agentos.event_type"] == "agentos.tool.call.requested" {
				break // the client drops the stream mid-run
			}
		}
		cut()
		testkit.Await(t, "the gated tool's call", 10*time.Second, n.gate.Hit)
		n.gate.Release() // the run goes on while nobody listens
		testkit.WaitRun(t, n.a, n.demo, string(taskID), 20*time.Second, "completed")

		rctx := a2aclient.AttachServiceParams(gctx, a2aclient.ServiceParams{"Last-Event-ID": {fmt.Sprint(lastSeen)}})
		var final *a2a.TaskStatusUpdateEvent
		first := true
		for ev, err := range gated.SubscribeToTask(rctx, &a2a.SubscribeToTaskRequest{ID: taskID}) {
			if err != nil {
				t.Fatal(err)
			}
			if first {
				if task, ok := ev.(*a2a.Task); !ok || task.ID != taskID || task.Status.State != a2a.TaskStateCompleted {
					t.Fatalf("resubscribe starts with %#v, want the task snapshot", ev)
				}
				first = false
				continue
			}
			if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok {
				seen[seqOf(t, st.Metadata)]++
				final = st
			}
		}
		if final == nil || final.Status.State != a2a.TaskStateCompleted {
			t.Fatalf("resubscribed stream ended with %+v", final)
		}
		r := do(t, "GET", n.a+"/v1/runs/"+string(taskID)+"/events", n.demo, nil, "Accept", "application/json")
		for _, x := range r.JSON(t)["events"].([]any) {
			s := int64(x.(map[string]any)["sequence"].(float64))
			if s == 1 {
				continue // run.created is the task snapshot the stream opens with
			}
			if seen[s] != 1 {
				t.Fatalf("event %d (%v) delivered %d times across the cut; seen %v", s, x.(map[string]any)["type"], seen[s], seen)
			}
		}
	})
}

func TestA2A_SubscribeToAFinishedTaskIsItsSnapshot(t *testing.T) {
	n := newInteropNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, _, ctx := a2aClient(t, ctx, n.a, sampleAgent, n.demo)
	res, err := client.SendMessage(ctx, &a2a.SendMessageRequest{Message: a2a.NewMessage(a2a.MessageRoleUser, a2a.NewTextPart("done soon"))})
	if err != nil {
		t.Fatal(err)
	}
	task := res.(*a2a.Task)
	var got []a2a.Event
	for ev, err := range client.SubscribeToTask(ctx, &a2a.SubscribeToTaskRequest{ID: task.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ev)
	}
	snap, ok := got[0].(*a2a.Task)
	if len(got) != 1 || !ok || snap.Status.State != a2a.TaskStateCompleted || len(snap.Artifacts) != 1 ||
		seqOf(t, snap.Metadata) != seqOf(t, task.Metadata) {
		t.Fatalf("subscribe to a finished task without a resume point: %#v", got)
	}
	// With a resume point it replays what came after it, then ends.
	rctx := a2aclient.AttachServiceParams(ctx, a2aclient.ServiceParams{"Last-Event-ID": {"1"}})
	var seqs []int64
	for ev, err := range client.SubscribeToTask(rctx, &a2a.SubscribeToTaskRequest{ID: task.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		if st, ok := ev.(*a2a.TaskStatusUpdateEvent); ok {
			seqs = append(seqs, seqOf(t, st.Metadata))
		}
	}
	if len(seqs) == 0 || seqs[0] != 2 || seqs[len(seqs)-1] != seqOf(t, task.Metadata) {
		t.Fatalf("replay after sequence 1: %v (task at %d)", seqs, seqOf(t, task.Metadata))
	}
	// A bad resume point is an invalid-params error, not a stream.
	bctx := a2aclient.AttachServiceParams(ctx, a2aclient.ServiceParams{"Last-Event-ID": {"-3"}})
	var badErr error
	for _, err := range client.SubscribeToTask(bctx, &a2a.SubscribeToTaskRequest{ID: task.ID}) {
		badErr = err
		break
	}
	if !errors.Is(badErr, a2a.ErrInvalidParams) {
		t.Fatalf("negative Last-Event-ID: %v", badErr)
	}
}

// rpc posts one JSON-RPC request to an A2A endpoint.
func rpc(t *testing.T, url, key, method string, params any, hdr ...string) response {
	t.Helper()
	return do(t, "POST", url, key, map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, hdr...)
}

func rpcErr(t *testing.T, r response) (float64, map[string]any) {
	t.Helper()
	e, _ := r.JSON(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("JSON-RPC answer without error: %s", r.Body)
	}
	code, _ := e["code"].(float64)
	return code, e
}

func TestA2A_TenancyScopesQuotasAndPublicCards(t *testing.T) {
	n := newInteropNode(t)
	demoCard := n.a + "/a2a/agents/" + sampleAgent + "/.well-known/agent-card.json"
	publicCard := n.a + "/a2a/tenants/tnt_demo/agents/" + sampleAgent + "/.well-known/agent-card.json"

	// A demo run, to be attacked from the other tenant.
	r := rpc(t, n.a+"/a2a/agents/"+sampleAgent, n.demo, "SendMessage", map[string]any{
		"message": map[string]any{"messageId": "m-demo-1", "role": "ROLE_USER", "parts": []any{map[string]any{"text": "mine"}}}})
	expectStatus(t, r, 200, "demo send")
	demoTask := r.JSON(t)["result"].(map[string]any)["task"].(map[string]any)["id"].(string)

	cases := []struct {
		name   string
		method string
		url    string
		key    string
		body   any
		status int
		code   string
	}{
		{"card without credential", "GET", demoCard, "", nil, 401, "unauthorized"},
		{"card of another tenant's agent", "GET", demoCard, n.other, nil, 404, "not_found"},
		{"card without a run or agent scope", "GET", n.a + "/a2a/agents/agt_other/.well-known/agent-card.json", n.otherAudit, nil, 403, "forbidden"},
		{"endpoint of another tenant's agent", "POST", n.a + "/a2a/agents/" + sampleAgent, n.other,
			map[string]any{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": map[string]any{"id": demoTask}}, 404, "not_found"},
		{"endpoint without credential", "POST", n.a + "/a2a/agents/agt_other", "",
			map[string]any{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": map[string]any{"id": demoTask}}, 401, "unauthorized"},
		{"listing without runs:create", "GET", n.a + "/a2a/agents", n.otherAudit, nil, 403, "forbidden"},
		{"public card is off by default", "GET", publicCard, "", nil, 401, "unauthorized"},
		{"public path of another tenant with a credential", "GET", publicCard, n.other, nil, 404, "not_found"},
		{"public path with a bad credential", "GET", publicCard, "aos_not_a_key", nil, 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, tc.method, tc.url, tc.key, tc.body)
			expectStatus(t, r, tc.status, tc.name)
			if got := r.ErrorCode(t); got != tc.code {
				t.Fatalf("code %s, want %s (%s)", got, tc.code, r.Body)
			}
		})
	}

	// Through its own agent's endpoint, the other tenant cannot reach the
	// demo task either: task not found (-32001), never the task.
	own := n.a + "/a2a/agents/agt_other"
	for _, m := range []string{"GetTask", "CancelTask"} {
		code, e := rpcErr(t, rpc(t, own, n.other, m, map[string]any{"id": demoTask}))
		if code != -32001 {
			t.Fatalf("%s of another tenant's task: %v", m, e)
		}
	}
	r = rpc(t, own, n.other, "SubscribeToTask", map[string]any{"id": demoTask})
	if !strings.Contains(string(r.Body), "-32001") || strings.Contains(string(r.Body), "mine") {
		t.Fatalf("subscribe to another tenant's task: %s", r.Body)
	}
	// Naming another tenant in the request is refused.
	if code, e := rpcErr(t, rpc(t, own, n.other, "SendMessage", map[string]any{"tenant": "tnt_demo",
		"message": map[string]any{"messageId": "m-x", "role": "ROLE_USER", "parts": []any{map[string]any{"text": "x"}}}})); code == 0 || !strings.Contains(fmt.Sprint(e), "not the credential's tenant") {
		t.Fatalf("tenant field of another tenant: %v", e)
	}
	// The listing holds the caller's agents only.
	r = do(t, "GET", n.a+"/a2a/agents", n.other, nil)
	expectStatus(t, r, 200, "listing")
	if strings.Contains(string(r.Body), sampleAgent) || !strings.Contains(string(r.Body), "agt_other") {
		t.Fatalf("listing %s", r.Body)
	}

	// The same quotas as the REST create: a burst of 1 refuses the second send.
	expectStatus(t, do(t, "PATCH", n.a+"/v1/admin/tenants/tnt_other", n.admin, map[string]any{"tenant_update": map[string]any{
		"quotas": map[string]any{"runs": map[string]any{"run_create_qps": 0.001, "run_create_burst": 1}}}}), 200, "tight quota")
	send := func(id string) response {
		return rpc(t, own, n.other, "SendMessage", map[string]any{"configuration": map[string]any{"returnImmediately": true},
			"message": map[string]any{"messageId": id, "role": "ROLE_USER", "parts": []any{map[string]any{"text": "q"}}}})
	}
	if r := send("m-q1"); r.JSON(t)["result"] == nil {
		t.Fatalf("first send under the quota: %s", r.Body)
	}
	if r := send("m-q2"); !strings.Contains(string(r.Body), `"rate_limited"`) {
		t.Fatalf("second send over the burst: %s", r.Body)
	}
	// A retried message (same messageId) is the same run, not a new one.
	if r := send("m-q1"); r.JSON(t)["result"] == nil {
		t.Fatalf("retry of the first message: %s", r.Body)
	}

	// Publishing the demo tenant's cards opens the public path, and only it.
	testkit.PatchTenant(t, n.a, n.admin, "tnt_demo", map[string]any{"metadata": map[string]any{"a2a_public_cards": true}})
	card, err := agentcard.NewResolver(nil).Resolve(context.Background(), n.a+"/a2a/tenants/tnt_demo/agents/"+sampleAgent)
	if err != nil || card.Name != "Sample echo agent" {
		t.Fatalf("public card: %v %+v", err, card)
	}
	expectStatus(t, do(t, "GET", n.a+"/a2a/tenants/tnt_demo/agents/agt_nope/.well-known/agent-card.json", "", nil), 404, "unknown agent of a publishing tenant")
	expectStatus(t, do(t, "GET", n.a+"/a2a/tenants/tnt_other/agents/agt_other/.well-known/agent-card.json", "", nil), 401, "tenant that does not publish")
	expectStatus(t, do(t, "GET", demoCard, "", nil), 401, "the credential path still needs one")
	expectStatus(t, do(t, "POST", n.a+"/a2a/agents/"+sampleAgent, "", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "GetTask",
		"params": map[string]any{"id": demoTask}}), 401, "calls still need a credential")
}

// mcpSession connects the official MCP client to /mcp with key.
func mcpSession(t *testing.T, ctx context.Context, base, key string, onProgress func(*mcp.ProgressNotificationClientRequest)) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "test-client", Version: "1.0.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			if onProgress != nil {
				onProgress(req)
			}
		}})
	hc := &http.Client{Transport: headerTransport{key: key}}
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("mcp connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

type headerTransport struct{ key string }

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-API-Key", h.key)
	return http.DefaultTransport.RoundTrip(r)
}

func TestMCP_AgentsAsToolsCallProgressCancelAndTenancy(t *testing.T) {
	n := newInteropNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type progress struct {
		seq  float64
		ev   map[string]any
		tok  any
		text string
	}
	var mu sync.Mutex
	var got []progress
	started := make(chan string, 4)
	cs := mcpSession(t, ctx, n.a, n.demo, func(req *mcp.ProgressNotificationClientRequest) {
		var ev map[string]any
		_ = json.Unmarshal([]byte(req.Params.Message), &ev)
		mu.Lock()
		got = append(got, progress{seq: req.Params.Progress, ev: ev, tok: req.Params.ProgressToken})
		mu.Unlock()
		if ev["type"] == "agentos.run.started" && req.Params.ProgressToken == "p-2" {
			started <- ev["run_id"].(string)
		}
	})

	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	if !slices.Contains(names, sampleAgent) || !slices.Contains(names, "agt_gated") || slices.Contains(names, "agt_other") {
		t.Fatalf("tools %v", names)
	}

	params := &mcp.CallToolParams{Name: sampleAgent, Arguments: map[string]any{"input": "hi mcp", "context": map[string]any{"locale": "en-US"}}}
	params.SetProgressToken("p-1")
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(*mcp.TextContent).Text
	sc, _ := res.StructuredContent.(map[string]any)
	if res.IsError || !strings.Contains(text, "echo: hi mcp") || sc["status"] != "completed" {
		t.Fatalf("call result %v %s %v", res.IsError, text, sc)
	}
	runID, _ := sc["run_id"].(string)
	// Progress notifications are handled apart from the result; wait for
	// the terminal one.
	testkit.WaitFor(t, "a progress notification for run.completed", 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].ev["type"] == "agentos.run.completed"
	})
	mu.Lock()
	var types []string
	for i, p := range got {
		if p.tok != "p-1" || p.seq != float64(i+1) || p.ev["run_id"] != runID {
			t.Fatalf("progress %d: %+v (run %s)", i, p, runID)
		}
		types = append(types, p.ev["type"].(string))
	}
	mu.Unlock()
	if len(types) < 5 || types[0] != "agentos.run.created" || types[len(types)-1] != "agentos.run.completed" ||
		!slices.Contains(types, "agentos.tool.call.completed") {
		t.Fatalf("progress carried %v", types)
	}

	// A client cancel cancels the run.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		p := &mcp.CallToolParams{Name: "agt_gated", Arguments: map[string]any{"input": "cancel me"}}
		p.SetProgressToken("p-2")
		_, err := cs.CallTool(cctx, p)
		done <- err
	}()
	gatedRun := testkit.Await(t, "the gated run's started progress", 10*time.Second, started)
	testkit.Await(t, "the gated tool's call", 10*time.Second, n.gate.Hit)
	ccancel()
	if err := testkit.Await(t, "the canceled call to return", 10*time.Second, done); err == nil {
		t.Fatal("a canceled call returned a result")
	}
	testkit.WaitRun(t, n.a, n.demo, gatedRun, 20*time.Second, "canceled")

	// Another tenant's session sees its own agents only, and calling the
	// demo agent answers not_found as REST does.
	oc := mcpSession(t, ctx, n.a, n.other, nil)
	olist, err := oc.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(olist.Tools) != 1 || olist.Tools[0].Name != "agt_other" {
		t.Fatalf("other tenant's tools %+v", olist.Tools)
	}
	ores, err := oc.CallTool(ctx, &mcp.CallToolParams{Name: sampleAgent, Arguments: map[string]any{"input": "steal"}})
	if err != nil || !ores.IsError || !strings.Contains(fmt.Sprint(ores.StructuredContent), "not_found") {
		t.Fatalf("cross-tenant call: %v %+v", err, ores)
	}
	// The same quotas as the REST create: a burst of 1 refuses the second call.
	expectStatus(t, do(t, "PATCH", n.a+"/v1/admin/tenants/tnt_other", n.admin, map[string]any{"tenant_update": map[string]any{
		"quotas": map[string]any{"runs": map[string]any{"run_create_qps": 0.001, "run_create_burst": 1}}}}), 200, "tight quota")
	if r1, err := oc.CallTool(ctx, &mcp.CallToolParams{Name: "agt_other", Arguments: map[string]any{"input": "one"}}); err != nil || r1.IsError {
		t.Fatalf("first call under the quota: %v %+v", err, r1)
	}
	r2, err := oc.CallTool(ctx, &mcp.CallToolParams{Name: "agt_other", Arguments: map[string]any{"input": "two"}})
	if err != nil || !r2.IsError || !strings.Contains(fmt.Sprint(r2.StructuredContent), "rate_limited") {
		t.Fatalf("second call over the burst: %v %+v", err, r2)
	}
	// A credential that may not run agents has no tools and is refused.
	ac := mcpSession(t, ctx, n.a, n.otherAudit, nil)
	alist, err := ac.ListTools(ctx, nil)
	if err != nil || len(alist.Tools) != 0 {
		t.Fatalf("tools of an audit-only key: %v %+v", err, alist)
	}
	ares, err := ac.CallTool(ctx, &mcp.CallToolParams{Name: "agt_other", Arguments: map[string]any{"input": "x"}})
	if err != nil || !ares.IsError || !strings.Contains(fmt.Sprint(ares.StructuredContent), "forbidden") {
		t.Fatalf("call without runs:create: %v %+v", err, ares)
	}
	// The demo session cannot be used with the other tenant's key.
	r := do(t, "POST", n.a+"/mcp", n.other, map[string]any{"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
		"Mcp-Session-Id", cs.ID(), "Accept", "application/json, text/event-stream")
	if r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
		t.Fatalf("session of another tenant: %d %s", r.Status, r.Body)
	}
	// No credential: refused at the edge.
	expectStatus(t, do(t, "POST", n.a+"/mcp", "", map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), 401, "mcp without credential")
}
