package stacka_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a2aproject/a2a-go/v2/a2a"
	"github.com/a2aproject/a2a-go/v2/a2asrv"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stacka"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// kindFixture is what the per-kind conformance suite needs of a tool kind:
// a live descriptor, one the kind must refuse, and what a good call gives.
type kindFixture struct {
	// tool is a valid descriptor (tool_id tool.kind.<name>, or a builtin's)
	// that reaches a live endpoint the fixture starts.
	tool map[string]any
	// bad is a descriptor of the kind the registry must refuse, naming
	// badField.
	bad      map[string]any
	badField string
	// remote kinds call out over the network: the suite checks egress
	// refusal and an unreachable endpoint too; unreachable rewrites tool to
	// point at a closed port.
	remote      bool
	unreachable func(tool map[string]any, addr string) map[string]any
	// check inspects a successful call's tool.call.completed payload.
	check func(t *testing.T, completed map[string]any)
}

// kindFixtures holds one fixture per registered tool kind; a kind without
// one fails TestToolKinds_Conformance, so adding a kind means adding its
// fixture here.
var kindFixtures = map[string]func(t *testing.T) kindFixture{
	stacka.KindBuiltin: func(t *testing.T) kindFixture {
		return kindFixture{
			tool:     map[string]any{"tool_id": "tool.echo", "kind": "builtin", "name": "echo"},
			bad:      map[string]any{"tool_id": "tool.kind.builtin", "kind": "builtin"},
			badField: "tool.kind",
			check: func(t *testing.T, c map[string]any) {
				if out, _ := c["output"].(map[string]any); out["text"] != "kind call" {
					t.Fatalf("echo output %v", c["output"])
				}
			},
		}
	},
	stacka.KindHTTP: func(t *testing.T) kindFixture {
		hook := testkit.StartWebhook(t, func(c testkit.WebhookCall) (int, string) {
			return 200, fmt.Sprintf(`{"output":{"got":%q}}`, c.Input()["text"])
		})
		return kindFixture{
			tool:     map[string]any{"tool_id": "tool.kind.http", "kind": "http", "config": map[string]any{"url": hook.URL}},
			bad:      map[string]any{"tool_id": "tool.kind.http", "kind": "http", "config": map[string]any{}},
			badField: "tool.config.url",
			remote:   true,
			unreachable: func(tool map[string]any, addr string) map[string]any {
				return map[string]any{"tool_id": tool["tool_id"], "kind": "http", "config": map[string]any{"url": "http://" + addr + "/hook"}}
			},
			check: func(t *testing.T, c map[string]any) {
				if out, _ := c["output"].(map[string]any); out["got"] != "kind call" {
					t.Fatalf("webhook output %v", c["output"])
				}
			},
		}
	},
	stacka.KindMCP: func(t *testing.T) kindFixture {
		srv := newMCPToolServer(t, nil)
		return kindFixture{
			tool:     map[string]any{"tool_id": "tool.kind.mcp", "kind": "mcp", "config": map[string]any{"url": srv.URL, "tool_name": "shout"}},
			bad:      map[string]any{"tool_id": "tool.kind.mcp", "kind": "mcp", "config": map[string]any{"tool_name": "shout"}},
			badField: "tool.config.url",
			remote:   true,
			unreachable: func(tool map[string]any, addr string) map[string]any {
				return map[string]any{"tool_id": tool["tool_id"], "kind": "mcp", "config": map[string]any{"url": "http://" + addr + "/mcp", "tool_name": "shout"}}
			},
			check: func(t *testing.T, c map[string]any) {
				if out, _ := c["output"].(map[string]any); out["upper"] != "KIND CALL" {
					t.Fatalf("mcp output %v", c["output"])
				}
			},
		}
	},
	stacka.KindA2A: func(t *testing.T) kindFixture {
		remote := newA2AAgent(t, "")
		return kindFixture{
			tool:     map[string]any{"tool_id": "tool.kind.a2a", "kind": "a2a", "config": map[string]any{"card_url": remote.srv.URL}},
			bad:      map[string]any{"tool_id": "tool.kind.a2a", "kind": "a2a", "config": map[string]any{"card_url": "not a url"}},
			badField: "tool.config.card_url",
			remote:   true,
			unreachable: func(tool map[string]any, addr string) map[string]any {
				return map[string]any{"tool_id": tool["tool_id"], "kind": "a2a", "config": map[string]any{"card_url": "http://" + addr}}
			},
			check: func(t *testing.T, c map[string]any) {
				out, _ := c["output"].(map[string]any)
				rem, _ := c["remote"].(map[string]any)
				if out["text"] != "KIND CALL" || rem["task_id"] == nil || rem["task_id"] != out["task_id"] || rem["state"] != "TASK_STATE_COMPLETED" {
					t.Fatalf("a2a output %v remote %v", out, rem)
				}
				if !remote.sawTask(rem["task_id"].(string)) {
					t.Fatalf("remote agent never ran task %v", rem["task_id"])
				}
			},
		}
	},
}

// TestToolKinds_Conformance runs the same suite against every registered
// tool kind: registry validation, a live call through a run, and for
// remote kinds the egress rules and an unreachable endpoint.
func TestToolKinds_Conformance(t *testing.T) {
	for _, kind := range stacka.ToolKinds() {
		t.Run(kind, func(t *testing.T) {
			mk, ok := kindFixtures[kind]
			if !ok {
				t.Fatalf("tool kind %q has no conformance fixture in kindFixtures", kind)
			}
			fx := mk(t)
			id := fx.tool["tool_id"].(string)
			allowed := func(_ *stackaConfig, ts tenants) {
				for _, tn := range ts {
					tn.Entitlements.ToolIDsAllowed = append(tn.Entitlements.ToolIDsAllowed, id)
				}
			}
			n := newNode(t, allowed)
			t.Run("refuses a bad descriptor", func(t *testing.T) {
				code, _, b := n.do("PUT", "/v1/tools/"+fx.bad["tool_id"].(string), "tok-a", map[string]any{"tool": fx.bad})
				e, _ := b["error"].(map[string]any)
				d, _ := e["details"].(map[string]any)
				if code != 400 || d["field"] != fx.badField {
					t.Fatalf("%d %v (want 400 naming %s)", code, b, fx.badField)
				}
			})
			t.Run("calls", func(t *testing.T) {
				putTool(t, n, fx.tool)
				n.putAgent("tok-a", "agt_kind", id)
				run := n.createRun("tok-a", "agt_kind", "kind call")
				waitStatus(t, n, "tok-a", run["run_id"].(string), "completed", 15*time.Second)
				c := completedCall(t, n, "tok-a", run["run_id"].(string))
				if c["status"] != "ok" {
					t.Fatalf("tool call %v", c)
				}
				fx.check(t, c)
			})
			if !fx.remote {
				return
			}
			t.Run("egress refused in prod", func(t *testing.T) {
				p := newNode(t, allowed, func(c *stackaConfig, _ tenants) { c.AllowLoopbackEgress, c.Mode = false, "prod" })
				putTool(t, p, fx.tool)
				p.putAgent("tok-a", "agt_kind", id)
				run := p.createRun("tok-a", "agt_kind", "kind call")
				got := waitStatus(t, p, "tok-a", run["run_id"].(string), "failed", 15*time.Second)
				if e := got["error"].(map[string]any); e["code"] != "forbidden" {
					t.Fatalf("error %v, want forbidden (egress)", e)
				}
			})
			t.Run("unreachable endpoint", func(t *testing.T) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				ln.Close()
				putTool(t, n, fx.unreachable(fx.tool, addr))
				run := n.createRun("tok-a", "agt_kind", "kind call")
				got := waitStatus(t, n, "tok-a", run["run_id"].(string), "failed", 15*time.Second)
				if e := got["error"].(map[string]any); e["code"] != "dependency_unavailable" {
					t.Fatalf("error %v, want dependency_unavailable", e)
				}
			})
		})
	}
}

func putTool(t *testing.T, n *testNode, tool map[string]any) {
	t.Helper()
	if code, _, b := n.do("PUT", "/v1/tools/"+tool["tool_id"].(string), "tok-a", map[string]any{"tool": tool}); code != 200 && code != 201 { // replaced or created
		t.Fatalf("put tool: %d %v", code, b)
	}
}

// completedCall returns the payload of the run's tool.call.completed event.
func completedCall(t *testing.T, n *testNode, token, runID string) map[string]any {
	t.Helper()
	_, _, b := n.do("GET", "/v1/runs/"+runID+"/events", token, nil)
	for _, x := range asSlice(b["events"]) {
		ev := x.(map[string]any)
		if ev["type"] == "agentos.tool.call.completed" {
			return ev["payload"].(map[string]any)
		}
	}
	t.Fatalf("run %s has no tool.call.completed event: %v", runID, b)
	return nil
}

// newMCPToolServer serves an MCP "shout" tool over streamable HTTP and
// counts the sessions clients open (initialize requests).
func newMCPToolServer(t *testing.T, inits *atomic.Int64) *httptest.Server {
	server := mcp.NewServer(&mcp.Implementation{Name: "kind-mcp", Version: "1.0.0"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "shout", Description: "upper-cases text"},
		func(ctx context.Context, req *mcp.CallToolRequest, in shoutIn) (*mcp.CallToolResult, shoutOut, error) {
			return nil, shoutOut{Upper: strings.ToUpper(in.Text)}, nil
		})
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	return testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inits != nil && r.Method == http.MethodPost {
			raw, _ := io.ReadAll(r.Body)
			if strings.Contains(string(raw), `"method":"initialize"`) {
				inits.Add(1)
			}
			r.Body = io.NopCloser(strings.NewReader(string(raw)))
		}
		h.ServeHTTP(w, r)
	}), nil)
}

// a2aAgent is a remote A2A agent built with the official a2a-go server:
// it upper-cases the message text into an artifact, or waits for cancel
// when the text is "hang".
type a2aAgent struct {
	srv      *httptest.Server
	mu       sync.Mutex
	tasks    map[string]bool
	canceled chan string
	auth     atomic.Value // string: last Authorization header seen
}

func (a *a2aAgent) sawTask(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.tasks[id]
}

type upperExecutor struct{ a *a2aAgent }

func (e upperExecutor) Execute(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		e.a.mu.Lock()
		e.a.tasks[string(ec.TaskID)] = true
		e.a.mu.Unlock()
		var text string
		for _, p := range ec.Message.Parts {
			text += p.Text()
		}
		if !yield(a2a.NewSubmittedTask(ec, ec.Message), nil) {
			return
		}
		if !yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateWorking, nil), nil) {
			return
		}
		if text == "hang" {
			<-ctx.Done()
			return
		}
		if !yield(a2a.NewArtifactEvent(ec, a2a.NewTextPart(strings.ToUpper(text))), nil) {
			return
		}
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCompleted, nil), nil)
	}
}

func (e upperExecutor) Cancel(ctx context.Context, ec *a2asrv.ExecutorContext) iter.Seq2[a2a.Event, error] {
	return func(yield func(a2a.Event, error) bool) {
		select {
		case e.a.canceled <- string(ec.TaskID):
		default:
		}
		yield(a2a.NewStatusUpdateEvent(ec, a2a.TaskStateCanceled, nil), nil)
	}
}

// newA2AAgent starts the agent; a non-empty bearer is required on every
// request (card included).
func newA2AAgent(t *testing.T, bearer string) *a2aAgent {
	a := &a2aAgent{tasks: map[string]bool{}, canceled: make(chan string, 4)}
	mux := http.NewServeMux()
	rpc := a2asrv.NewJSONRPCHandler(a2asrv.NewHandler(upperExecutor{a}))
	var card *a2a.AgentCard
	mux.Handle("/rpc", rpc)
	mux.Handle("/.well-known/agent-card.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a2asrv.NewStaticAgentCardHandler(card).ServeHTTP(w, r)
	}))
	a.srv = testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.auth.Store(r.Header.Get("Authorization"))
		if bearer != "" && r.Header.Get("Authorization") != "Bearer "+bearer {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"no"}`)
			return
		}
		mux.ServeHTTP(w, r)
	}), nil)
	card = &a2a.AgentCard{Name: "upper", Description: "upper-cases text", Version: "1.0.0",
		SupportedInterfaces: []*a2a.AgentInterface{a2a.NewAgentInterface(a.srv.URL+"/rpc", a2a.TransportProtocolJSONRPC)},
		Capabilities:        a2a.AgentCapabilities{Streaming: true},
		DefaultInputModes:   []string{"text/plain"}, DefaultOutputModes: []string{"text/plain"},
		Skills: []a2a.AgentSkill{{ID: "upper", Name: "upper", Description: "upper-cases", Tags: []string{"text"}}}}
	return a
}

func TestTools_MCPSessionsReusedWithinBound(t *testing.T) {
	cases := []struct {
		name      string
		sessions  int
		idle      time.Duration
		tokens    []string
		wantInits int64
	}{
		{"one session per tenant and server", 0, 0, []string{"tok-a", "tok-a", "tok-a", "tok-b", "tok-b"}, 2},
		{"bound of one evicts the other tenant's", 1, 0, []string{"tok-a", "tok-b", "tok-a"}, 3},
		{"idle sessions are closed", 0, time.Nanosecond, []string{"tok-a", "tok-a"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var inits atomic.Int64
			srv := newMCPToolServer(t, &inits)
			n := newNode(t, func(c *stackaConfig, _ tenants) { c.MCPSessions, c.MCPSessionIdle = tc.sessions, tc.idle })
			for _, tok := range []string{"tok-a", "tok-b"} {
				if code, _, b := n.do("PUT", "/v1/tools/tool.mcp.add", tok, map[string]any{"tool": map[string]any{"kind": "mcp",
					"config": map[string]any{"url": srv.URL, "tool_name": "shout"}}}); code != 201 {
					t.Fatalf("put tool: %d %v", code, b)
				}
				n.putAgent(tok, "agt_m", "tool.mcp.add")
			}
			for i, tok := range tc.tokens {
				id := n.createRun(tok, "agt_m", fmt.Sprintf("call %d", i))["run_id"].(string)
				waitStatus(t, n, tok, id, "completed", 10*time.Second)
			}
			if got := inits.Load(); got != tc.wantInits {
				t.Fatalf("MCP sessions opened = %d, want %d", got, tc.wantInits)
			}
		})
	}
}

func TestTools_A2ACredentialRemoteTaskAndCancel(t *testing.T) {
	remote := newA2AAgent(t, "remote-secret")
	n := newNode(t, func(_ *stackaConfig, ts tenants) {
		for _, tn := range ts {
			tn.Entitlements.ToolIDsAllowed = append(tn.Entitlements.ToolIDsAllowed, "tool.remote", "tool.remote.noauth")
		}
	})
	n.putSecret("tnt_a", "a2a_token", "remote-secret")
	putTool(t, n, map[string]any{"tool_id": "tool.remote", "kind": "a2a", "timeout_ms": 20000,
		"config": map[string]any{"card_url": remote.srv.URL + "/.well-known/agent-card.json", "secret_ref": "secret:a2a_token"}})
	putTool(t, n, map[string]any{"tool_id": "tool.remote.noauth", "kind": "a2a", "config": map[string]any{"card_url": remote.srv.URL}})
	n.putAgent("tok-a", "agt_r", "tool.remote")
	n.putAgent("tok-a", "agt_r_noauth", "tool.remote.noauth")

	id := n.createRun("tok-a", "agt_r", "delegate me")["run_id"].(string)
	run := waitStatus(t, n, "tok-a", id, "completed", 10*time.Second)
	c := completedCall(t, n, "tok-a", id)
	rem, _ := c["remote"].(map[string]any)
	if rem["protocol"] != "a2a" || rem["agent"] != "upper" || !remote.sawTask(fmt.Sprint(rem["task_id"])) {
		t.Fatalf("remote of the tool call %v", c)
	}
	if !strings.Contains(run["output"].(map[string]any)["text"].(string), "DELEGATE ME") {
		t.Fatalf("run output %v", run["output"])
	}
	if got := remote.auth.Load(); got != "Bearer remote-secret" {
		t.Fatalf("remote saw Authorization %q", got)
	}
	audit, _ := n.st.ListAudit(context.Background(), "tnt_a", core.AuditFilter{Action: "secret.read", Limit: 10})
	if len(audit) == 0 {
		t.Fatal("the credential read left no audit record")
	}

	id = n.createRun("tok-a", "agt_r_noauth", "delegate me")["run_id"].(string)
	run = waitStatus(t, n, "tok-a", id, "failed", 10*time.Second)
	if e := run["error"].(map[string]any); e["code"] != "dependency_unavailable" || !strings.Contains(fmt.Sprint(e["message"]), "401") {
		t.Fatalf("without the credential: %v", e)
	}

	id = n.createRun("tok-a", "agt_r", "hang")["run_id"].(string)
	waitRemoteTask(t, remote, 10*time.Second)
	if code, _, b := n.do("POST", "/v1/runs/"+id+":cancel", "tok-a", nil); code != 200 {
		t.Fatalf("cancel: %d %v", code, b)
	}
	if tid := testkit.Await(t, "the run's cancel to cancel the remote task", 10*time.Second, remote.canceled); !remote.sawTask(tid) {
		t.Fatalf("canceled unknown task %s", tid)
	}
}

// waitRemoteTask waits until the remote agent has two tasks (the first
// call's and the hanging one; the call without a credential made none).
func waitRemoteTask(t *testing.T, a *a2aAgent, d time.Duration) {
	t.Helper()
	tasks := func() int {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.tasks)
	}
	testkit.WaitFor(t, "two tasks on the remote agent", d, func() bool { return tasks() >= 2 },
		func() string { return fmt.Sprintf("(it has %d)", tasks()) })
}

func TestTools_MCPSessionDroppedByServerIsReplacedOnce(t *testing.T) {
	var inits atomic.Int64
	newHandler := func() http.Handler {
		server := mcp.NewServer(&mcp.Implementation{Name: "restarting-mcp", Version: "1.0.0"}, nil)
		mcp.AddTool(server, &mcp.Tool{Name: "shout", Description: "upper-cases text"},
			func(ctx context.Context, req *mcp.CallToolRequest, in shoutIn) (*mcp.CallToolResult, shoutOut, error) {
				return nil, shoutOut{Upper: strings.ToUpper(in.Text)}, nil
			})
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	}
	var current atomic.Value
	current.Store(newHandler())
	srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			raw, _ := io.ReadAll(r.Body)
			if strings.Contains(string(raw), `"method":"initialize"`) {
				inits.Add(1)
			}
			r.Body = io.NopCloser(strings.NewReader(string(raw)))
		}
		current.Load().(http.Handler).ServeHTTP(w, r)
	}), nil)
	n := newNode(t)
	putTool(t, n, map[string]any{"tool_id": "tool.mcp.add", "kind": "mcp", "config": map[string]any{"url": srv.URL, "tool_name": "shout"}})
	n.putAgent("tok-a", "agt_m", "tool.mcp.add")
	id := n.createRun("tok-a", "agt_m", "before")["run_id"].(string)
	waitStatus(t, n, "tok-a", id, "completed", 10*time.Second)
	// The server restarts and forgets every session; the pooled one is
	// stale, and the next call opens a new one instead of failing.
	current.Store(newHandler())
	id = n.createRun("tok-a", "agt_m", "after")["run_id"].(string)
	run := waitStatus(t, n, "tok-a", id, "completed", 10*time.Second)
	if !strings.Contains(run["output"].(map[string]any)["text"].(string), "AFTER") {
		t.Fatalf("output %v", run["output"])
	}
	if got := inits.Load(); got != 2 {
		t.Fatalf("sessions opened = %d, want 2 (one before, one after the restart)", got)
	}
}
