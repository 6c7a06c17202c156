package stacka_test

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stacka"
	"github.com/agentos/agentos/store"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// echoModel is a small real ModelPort with the semantics of builtin/echo-1
// and builtin/hash-embed-1 (CONTRACT §4.5).
type echoModel struct {
	fail    atomic.Value // failBox
	calls   atomic.Int64
	delay   atomic.Int64 // ns each chat call waits (aborted by ctx)
	aborted atomic.Int64
}

type failBox struct{ err error }

func (m *echoModel) setFail(err error) { m.fail.Store(failBox{err}) }

func (m *echoModel) Chat(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	m.calls.Add(1)
	if f, ok := m.fail.Load().(failBox); ok && f.err != nil {
		return core.ModelResponse{}, f.err
	}
	if d := time.Duration(m.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			m.aborted.Add(1)
			return core.ModelResponse{}, ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return core.ModelResponse{}, err
	}
	lastUser, toolSeen, in := "", false, 0
	for _, msg := range req.Input.Messages {
		in += (len(msg.Content) + 3) / 4
		switch msg.Role {
		case "user":
			lastUser = msg.Content
		case "tool":
			toolSeen = true
		}
	}
	out := core.ModelOutput{Type: "chat", Message: &core.ChatMessage{Role: "assistant"}}
	if len(req.Input.Tools) > 0 && !toolSeen {
		t := req.Input.Tools[0]
		out.ToolCalls = []core.ToolCall{{ID: core.NewID("call"), ToolID: t.ToolID, Name: t.Name, Arguments: map[string]any{"text": lastUser}}}
	} else {
		var b strings.Builder
		b.WriteString("echo: " + lastUser)
		for _, msg := range req.Input.Messages {
			if msg.Role == "tool" {
				fmt.Fprintf(&b, "\ntool %s: %s", msg.Name, msg.Content)
			}
		}
		out.Message.Content = b.String()
	}
	outTok := (len(out.Message.Content) + 3) / 4
	return core.ModelResponse{RequestID: req.RequestID, Status: "ok", Output: out,
		Usage:         core.Usage{InputTokens: in, OutputTokens: outTok, TotalTokens: in + outTok},
		PolicyOutcome: core.PolicyOutcome{Decision: "allowed", Reasons: []string{}, Redactions: []core.Redaction{}},
		Route:         core.Route{Backend: "builtin", Model: "echo-1", Node: "stk_test"}}, nil
}

func hashEmbed(text string) []float64 {
	v := make([]float64, 256)
	w := strings.Fields(strings.ToLower(text))
	add := func(s string) {
		h := fnv.New32a()
		h.Write([]byte(s))
		v[h.Sum32()%256]++
	}
	for i := range w {
		add(w[i])
		if i > 0 {
			add(w[i-1] + " " + w[i])
		}
	}
	var n float64
	for _, x := range v {
		n += x * x
	}
	if n > 0 {
		for i := range v {
			v[i] /= math.Sqrt(n)
		}
	}
	return v
}

func (m *echoModel) Embed(ctx context.Context, a core.Auth, req core.ModelRequest) (core.ModelResponse, error) {
	out := core.ModelOutput{Type: "embedding"}
	for i, t := range req.Input.Texts {
		out.Embeddings = append(out.Embeddings, core.Embedding{Index: i, Vector: hashEmbed(t)})
	}
	return core.ModelResponse{RequestID: req.RequestID, Status: "ok", Output: out}, nil
}

func (m *echoModel) PolicyCheck(ctx context.Context, a core.Auth, req core.PolicyCheckRequest) (core.PolicyResult, error) {
	return core.PolicyResult{RequestID: req.RequestID, Decision: "allowed", Reasons: []string{}, Redactions: []core.Redaction{}}, nil
}

func (m *echoModel) ListModels(ctx context.Context, a core.Auth) ([]core.ModelInfo, error) {
	return []core.ModelInfo{{ModelID: "echo-1", Provider: "builtin", Capabilities: []string{"chat"}}}, nil
}

var allTools = append(stacka.BuiltinToolIDs(), "tool.slow", "tool.hook", "tool.mcp.add")

// testNode is Stack A on a real store and a real HTTP server.
type testNode struct {
	t     testing.TB
	st    core.Storage
	svc   *stacka.Service
	srv   *httptest.Server
	model *echoModel
	auths map[string]core.Auth
	reg   *prometheus.Registry
}

type nodeOpt func(*stacka.Config, map[string]*core.Tenant)

func authFor(tenantID, principal string) core.Auth {
	return core.Auth{TenantID: tenantID, Principal: core.Principal{PrincipalID: principal, PrincipalType: "user"},
		Scopes: []string{}, Roles: []string{core.RoleTenantAdmin}, PolicyContext: core.DefaultPolicyContext("local")}
}

func newNodeAt(t testing.TB, path string, start bool, opts ...nodeOpt) *testNode {
	t.Helper()
	st, err := store.Open(path, store.Options{NoSync: os.Getenv("STACKA_TEST_NOSYNC") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, st, start, opts...)
	t.Cleanup(func() { n.close() })
	return n
}

func newNode(t testing.TB, opts ...nodeOpt) *testNode {
	return newNodeAt(t, filepath.Join(t.TempDir(), "agentos.db"), true, opts...)
}

func startNode(t testing.TB, st core.Storage, start bool, opts ...nodeOpt) *testNode {
	t.Helper()
	ctx := context.Background()
	cfg := stacka.Config{HeartbeatInterval: 200 * time.Millisecond, AllowLoopbackEgress: true, Workers: 16}
	tenants := map[string]*core.Tenant{
		"tnt_a": {TenantID: "tnt_a", Name: "A", Status: core.TenantActive, PlanTier: "enterprise",
			Entitlements: core.Entitlements{ToolIDsAllowed: allTools}},
		"tnt_b": {TenantID: "tnt_b", Name: "B", Status: core.TenantActive, PlanTier: "enterprise",
			Entitlements: core.Entitlements{ToolIDsAllowed: allTools}},
	}
	for _, o := range opts {
		o(&cfg, tenants)
	}
	for _, tn := range tenants {
		if _, err := st.GetTenant(ctx, tn.TenantID); err != nil {
			if err := st.CreateTenant(ctx, *tn, nil); err != nil {
				t.Fatal(err)
			}
		} else if _, err := st.UpdateTenant(ctx, tn.TenantID, func(x *core.Tenant) error { *x = *tn; return nil }, nil); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	model := &echoModel{}
	var secrets core.SecretPort
	if sp, ok := st.(core.SecretPort); ok {
		secrets = sp
	}
	svc, err := stacka.New(stacka.Deps{Agents: st, Runs: st, Queue: st, Tools: st, Memory: st, Tenants: st, Audit: st,
		Secrets: secrets, Models: model, Log: zerolog.Nop(), Metrics: reg, Config: cfg, StackID: "stk_test"})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{t: t, st: st, svc: svc, model: model, reg: reg, auths: map[string]core.Auth{
		"tok-a": authFor("tnt_a", "usr_a"), "tok-a2": authFor("tnt_a", "usr_a2"), "tok-b": authFor("tnt_b", "usr_b"),
	}}
	// The node's own error mapper and ids; auth is a table of test tokens.
	n.srv = testkit.Serve(t, testkit.EdgeHandler(nil, func(c echo.Context) (core.Auth, bool, error) {
		if c.Path() == "/v1/health" {
			return core.Auth{}, false, nil
		}
		a, ok := n.auths[strings.TrimPrefix(c.Request().Header.Get("Authorization"), "Bearer ")]
		if !ok {
			return a, false, core.Errorf(core.CodeUnauthorized, "no credential")
		}
		return a, true, nil
	}, svc.Register), nil)
	if start {
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

func (n *testNode) close() {
	if n.srv != nil {
		n.srv.CloseClientConnections()
		n.srv.Close()
		n.srv = nil
	}
	if n.svc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.svc.Close(ctx)
		cancel()
		n.svc = nil
	}
	if n.st != nil {
		_ = n.st.Close()
		n.st = nil
	}
}

// do sends a JSON request accepting JSON (testkit.Do) and decodes the
// JSON answer.
func (n *testNode) do(method, path, token string, body any, hdr ...string) (int, http.Header, map[string]any) {
	n.t.Helper()
	r := testkit.Do(n.t, method, n.srv.URL+path, token, body, append([]string{"Accept", "application/json"}, hdr...)...)
	var out map[string]any
	if len(r.Body) > 0 {
		r.Decode(n.t, &out)
	}
	return r.Status, r.Header, out
}

func (n *testNode) putAgent(token, id string, tools ...string) {
	n.t.Helper()
	if tools == nil {
		tools = []string{}
	}
	code, _, body := n.do("PUT", "/v1/agents/"+id, token, map[string]any{"agent": map[string]any{
		"name": id, "model_ref": "tier:fast", "instructions": "Be brief.", "tool_ids": tools}})
	if code != 200 && code != 201 { // replaced or created
		n.t.Fatalf("put agent: %d %v", code, body)
	}
}

func (n *testNode) createRun(token, agent, text string) map[string]any {
	n.t.Helper()
	code, _, body := n.do("POST", "/v1/agents/"+agent+"/runs", token, map[string]any{
		"input": map[string]any{"type": "text", "text": text}, "idempotency_key": core.NewID("idem")})
	if code != 201 {
		n.t.Fatalf("create run: %d %v", code, body)
	}
	return body["run"].(map[string]any)
}

type sseMsg struct {
	id    string
	event string
	data  core.EventEnvelope
}

// stream opens the SSE stream and returns a channel of messages (closed
// at the end of the stream) and a cancel.
func (n *testNode) stream(token, runID string, hdr ...string) (<-chan sseMsg, *http.Response, func()) {
	n.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n.t.Cleanup(cancel)
	resp := testkit.OpenStream(n.t, ctx, nil, n.srv.URL+"/v1/runs/"+runID+"/events", token, hdr...)
	ch := make(chan sseMsg, 256)
	if resp.StatusCode != 200 {
		close(ch)
		resp.Body.Close()
		return ch, resp, cancel
	}
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		testkit.ReadSSE(resp.Body, func(m testkit.SSE) bool {
			if m.ID != "" {
				ch <- sseMsg{id: m.ID, event: m.Name, data: core.EventEnvelope{Event: m.Event}}
			}
			return true
		})
	}()
	return ch, resp, cancel
}

// collect reads a stream to its end (or fails after d).
func collect(t testing.TB, ch <-chan sseMsg, d time.Duration) []sseMsg {
	t.Helper()
	return readStream(t, ch, "", d)
}

// until reads ch up to and including the first event of type typ, and
// returns what it read; the stream ending first, or no such event within
// d, fails the test.
func until(t testing.TB, ch <-chan sseMsg, typ string, d time.Duration) []sseMsg {
	t.Helper()
	return readStream(t, ch, typ, d)
}

// readStream reads ch to the first event of type typ ("": to the stream's
// end), failing the test after d.
func readStream(t testing.TB, ch <-chan sseMsg, typ string, d time.Duration) []sseMsg {
	t.Helper()
	var out []sseMsg
	timer := time.After(d)
	for {
		select {
		case m, ok := <-ch:
			if !ok && typ == "" {
				return out
			}
			if !ok {
				t.Fatalf("stream ended before %s (got %d messages)", typ, len(out))
			}
			out = append(out, m)
			if typ != "" && m.data.Event.Type == typ {
				return out
			}
		case <-timer:
			t.Fatalf("no %s within %s (got %d messages)", cmp.Or(typ, "end of stream"), d, len(out))
		}
	}
}

// runInModelCall starts a run of agt_x whose model call hangs (20 s) and
// returns its id and event stream once that call is in flight.
func (n *testNode) runInModelCall() (string, <-chan sseMsg) {
	n.t.Helper()
	n.putAgent("tok-a", "agt_x", "tool.echo")
	n.model.delay.Store(int64(20 * time.Second))
	id := n.createRun("tok-a", "agt_x", "x")["run_id"].(string)
	ch, _, cancel := n.stream("tok-a", id)
	n.t.Cleanup(cancel)
	until(n.t, ch, core.EventModelRequested, 10*time.Second)
	return id, ch
}

func waitStatus(t testing.TB, n *testNode, token, runID string, want string, d time.Duration) map[string]any {
	t.Helper()
	return testkit.WaitRun(t, n.srv.URL, token, runID, d, want)
}

type stackaConfig = stacka.Config
type tenants = map[string]*core.Tenant

// putSecret stores a tenant secret through the storage's secret store; a
// storage without one skips the test.
func (n *testNode) putSecret(tenantID, name, value string) {
	n.t.Helper()
	sp, ok := n.st.(core.SecretPort)
	if !ok {
		n.t.Skip("this storage has no tenant secret store")
	}
	if _, _, err := sp.PutSecret(context.Background(), tenantID, name, []byte(value), nil); err != nil {
		n.t.Fatal(err)
	}
}
