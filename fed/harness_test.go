package fed_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/fed"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

const (
	tenantDemo  = "tnt_demo"
	tenantOther = "tnt_other"
	keyDemo     = "key-demo"  // tnt_demo user with runs:forward
	keyOther    = "key-other" // tnt_other user with runs:forward
	keyAdmin    = "key-admin" // platform_admin
	keyNoScope  = "key-noscope"
)

var testKeys = map[string]core.Auth{
	keyDemo: {TenantID: tenantDemo, Principal: core.Principal{PrincipalID: "usr_demo", PrincipalType: "user"},
		Scopes: []string{core.ScopeRunsForward}, Roles: []string{core.RoleTenantUser}, TokenID: "tok_demo"},
	keyOther: {TenantID: tenantOther, Principal: core.Principal{PrincipalID: "usr_other", PrincipalType: "user"},
		Scopes: []string{core.ScopeRunsForward}, Roles: []string{core.RoleTenantUser}, TokenID: "tok_other"},
	keyAdmin: {TenantID: tenantDemo, Principal: core.Principal{PrincipalID: "usr_platform_admin", PrincipalType: "user"},
		Roles: []string{core.RolePlatformAdmin}, TokenID: "tok_admin"},
	keyNoScope: {TenantID: tenantDemo, Principal: core.Principal{PrincipalID: "usr_reader", PrincipalType: "user"},
		Scopes: []string{core.ScopeRunsRead}, TokenID: "tok_reader"},
}

// testNode is one federation node: its own store in a temp dir, the
// in-memory Stack A, and a real HTTP server on 127.0.0.1:0.
type testNode struct {
	t       testing.TB
	id      string
	dir     string
	store   *store.Store
	runs    *memRuns
	node    *fed.Node
	srv     *httptest.Server
	url     string
	reg     *prometheus.Registry
	client  *http.Client
	serverT *tls.Config
}

type nodeOpts struct {
	stackID     string
	dir         string
	runs        *memRuns
	toolHosting bool
	serverTLS   *tls.Config
	clientTLS   *tls.Config
	modelsDown  bool // Stack B's model list fails
}

// startNode starts a node; the caller registers peers.
func startNode(tb testing.TB, o nodeOpts) *testNode {
	tb.Helper()
	if o.dir == "" {
		o.dir = tb.TempDir()
	}
	if o.runs == nil {
		o.runs = newMemRuns(2, 5*time.Millisecond)
	}
	st, err := store.Open(filepath.Join(o.dir, "agentos.db"), store.Options{NoSync: true})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	ctx := context.Background()
	for _, id := range []string{tenantDemo, tenantOther} {
		err := st.CreateTenant(ctx, core.Tenant{TenantID: id, Name: id, Status: core.TenantActive, PlanTier: "demo"}, nil)
		if err != nil && !core.IsCode(err, core.CodeConflict) {
			tb.Fatalf("create tenant: %v", err)
		}
	}
	tn := &testNode{t: tb, id: o.stackID, dir: o.dir, store: st, runs: o.runs, reg: prometheus.NewRegistry(), serverT: o.serverTLS}
	n, err := fed.New(fed.Deps{
		DataDir: o.dir, StackID: o.stackID, Region: "us-west-2", Environment: "test",
		Version: "test", GitSHA: "abc123", BuildTime: "2026-11-25T00:00:00Z",
		StackAURL: func() string { return "http://stack-a.invalid" },
		StackBURL: func() string { return "http://stack-b.invalid" },
		FedURL:    func() string { return tn.url },
		Peers:     st, Forward: st, JTIs: st, Events: st, Tenants: st, Audit: st,
		Runs: o.runs,
		Models: func(context.Context) ([]core.ModelInfo, error) {
			if o.modelsDown {
				return nil, errors.New("stack b unreachable")
			}
			return []core.ModelInfo{
				{ModelID: "echo-1", Provider: "builtin", Capabilities: []string{"chat"}, Tier: "fast", ContextWindowTokens: 8192},
				{ModelID: "qwen", Provider: "local-vllm", Capabilities: []string{"chat"}, Tier: "balanced", ContextWindowTokens: 32768},
			}, nil
		},
		ToolHosting:  o.toolHosting,
		ClientTLS:    o.clientTLS,
		PingInterval: 100 * time.Millisecond,
		RetryBase:    5 * time.Millisecond,
		RelayGiveUp:  5 * time.Second,
		Log:          zerolog.Nop(),
		Metrics:      tn.reg,
	})
	if err != nil {
		tb.Fatalf("fed.New: %v", err)
	}
	tn.node = n
	tn.srv = testkit.Serve(tb, testkit.EdgeHandler(nil, tn.testAuth, n.Register), o.serverTLS)
	tn.url = tn.srv.URL
	tn.client = &http.Client{Transport: &http.Transport{TLSClientConfig: o.clientTLS}}
	tb.Cleanup(tn.close)
	return tn
}

func (tn *testNode) close() {
	if tn.srv != nil {
		tn.srv.CloseClientConnections()
		tn.srv.Close()
		tn.srv = nil
	}
	if tn.store != nil {
		tn.store.Close()
		tn.store = nil
	}
}

// trust registers peer p on tn (reachable at url) for tenants.
func (tn *testNode) trust(p *testNode, url string, tenants ...string) {
	tn.t.Helper()
	_, err := tn.store.PutPeer(context.Background(), core.Peer{StackID: p.id, FederationURL: url,
		PublicKey: p.node.PublicKey(), Region: "us-west-2", TrustedTenants: tenants})
	if err != nil {
		tn.t.Fatalf("put peer: %v", err)
	}
}

// testAuth is the tiny auth app provides for real: peer assertion first,
// then an API key from the fixed table, then public paths.
func (tn *testNode) testAuth(c echo.Context) (core.Auth, bool, error) {
	r := c.Request()
	if a, ok, err := tn.node.AuthenticatePeer(r); ok || err != nil {
		return a, ok, err
	}
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if a, found := testKeys[key]; found {
		return a, true, nil
	} else if key != "" {
		return a, false, core.Errorf(core.CodeUnauthorized, "unknown API key")
	}
	if r.URL.Path != "/v1/federation/health" {
		return core.Auth{}, false, core.Errorf(core.CodeUnauthorized, "credential required")
	}
	return core.Auth{}, false, nil
}

// pair starts nodes A and B that trust each other for tnt_demo only.
func pair(t *testing.T, bRuns *memRuns) (a, b *testNode) {
	t.Helper()
	a = startNode(t, nodeOpts{stackID: "stk_a"})
	b = startNode(t, nodeOpts{stackID: "stk_b", runs: bRuns, toolHosting: false})
	a.trust(b, b.url, tenantDemo)
	b.trust(a, a.url, tenantDemo)
	return a, b
}

type apiResp struct {
	status int
	header http.Header
	body   map[string]any
	raw    []byte
}

func (r apiResp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

// call makes a JSON request to tn with an API key (or extra headers).
func (tn *testNode) call(method, path, key string, body any, hdr ...string) apiResp {
	tn.t.Helper()
	r := testkit.DoWith(tn.t, tn.client, method, tn.url+path, key, body, hdr...)
	out := apiResp{status: r.Status, header: r.Header, raw: r.Body}
	_ = json.Unmarshal(r.Body, &out.body)
	return out
}

func forwardBody(selector map[string]any, agentID, idem, text string) map[string]any {
	return map[string]any{"forward": map[string]any{
		"target_selector": selector,
		"run_request": map[string]any{"agent_id": agentID, "input": map[string]any{"type": "text", "text": text},
			"idempotency_key": idem},
	}}
}

func forwarded(t testing.TB, r apiResp) map[string]any {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("forward: status %d: %s", r.status, r.raw)
	}
	f, ok := r.body["forwarded"].(map[string]any)
	if !ok {
		t.Fatalf("forward: no forwarded object: %s", r.raw)
	}
	return f
}

// sseEvent is one message read from an SSE stream.
type sseEvent = testkit.SSE

// readSSE reads an SSE stream until it ends (testkit.ReadSSE), calling
// each(ev) per event; it returns the events and the number of ping
// comments seen. A stream cut by the node ends the read, as a client sees.
func readSSE(t testing.TB, body io.Reader, each func(sseEvent)) ([]sseEvent, int) {
	t.Helper()
	evs, pings, _ := testkit.ReadSSE(body, func(m sseEvent) bool {
		if each != nil {
			each(m)
		}
		return true
	})
	return evs, pings
}

// stream opens the federation events stream of runID on tn.
func (tn *testNode) stream(runID, key string, after int64) *http.Response {
	tn.t.Helper()
	return testkit.OpenStream(tn.t, context.Background(), tn.client, tn.url+"/v1/federation/runs/"+runID+"/events?after_sequence="+strconv.FormatInt(after, 10), key)
}

// assertGapless checks sequences after..after+len rise by one with unique
// event ids, the SSE id matches, and the last event is terminal.
func assertGapless(t testing.TB, evs []sseEvent, after int64) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatal("no events")
	}
	ids := map[string]bool{}
	for i, e := range evs {
		want := after + int64(i) + 1
		if e.Event.Sequence != want {
			t.Fatalf("event %d: sequence %d, want %d", i, e.Event.Sequence, want)
		}
		if e.ID != strconv.FormatInt(want, 10) || e.Name != "agentos.event" {
			t.Fatalf("event %d: id %q name %q", i, e.ID, e.Name)
		}
		if ids[e.Event.EventID] {
			t.Fatalf("duplicate event_id %s", e.Event.EventID)
		}
		ids[e.Event.EventID] = true
	}
	if last := evs[len(evs)-1].Event.Type; !core.EventTerminal(last) {
		t.Fatalf("stream ended with %s, not a terminal event", last)
	}
}

// waitFor polls cond for up to 5 s (testkit.WaitFor).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.WaitFor(t, what, 5*time.Second, cond)
}
