package federation_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/golang-jwt/jwt/v5"
)

const (
	tenantDemo  = "tnt_demo"
	tenantOther = "tnt_other"
	sampleAgent = "agt_sample_echo_v1"
	adminID     = "usr_platform_admin"
)

// pair is two nodes, each the other's peer. B is registered in A at
// bURL (a cuttable proxy in the plain setup).
type pair struct {
	a, b  *node
	proxy *proxy
}

// startPair starts stk_a and stk_b and registers each in the other,
// trusted for tnt_demo only. With tf, both serve mTLS on the federation
// port and B is registered at its https URL; without, B is registered in
// A behind a TCP proxy the test can cut.
func startPair(t *testing.T, tf *tlsFiles) *pair { return startPairOn(t, tf, "bbolt") }

// startPairOn is startPair with both nodes on store (each on its own
// database for postgres).
func startPairOn(t *testing.T, tf *tlsFiles, store string) *pair {
	t.Helper()
	// Both processes boot at once.
	p := &pair{a: launchNode(t, "stk_a", tf, testbinary.StoreFlags(t, store)...), b: launchNode(t, "stk_b", tf, testbinary.StoreFlags(t, store)...)}
	p.a.wait(t)
	p.b.wait(t)
	ia, ib := p.a.info(t), p.b.info(t)
	if tf != nil {
		if !strings.HasPrefix(ib.Endpoints.FederationBaseURL, "https://") || !strings.HasPrefix(p.b.fed, "https://") {
			t.Fatalf("with --fed-tls-* the federation URL should be https: %q", ib.Endpoints.FederationBaseURL)
		}
	}
	bURL := p.b.fed
	if tf == nil {
		p.proxy = startProxy(t, strings.TrimPrefix(p.b.fed, "http://"))
		bURL = p.proxy.url()
	}
	p.a.register(t, ib, bURL, tenantDemo)
	p.b.register(t, ia, p.a.fed, tenantDemo)
	return p
}

// forwardBody is a forward of agentID for the platform admin of tnt_demo.
func forwardBody(selector map[string]any, tenant, principal, agentID, idem, text string) map[string]any {
	return map[string]any{"forward": map[string]any{
		"target_selector": selector,
		"auth": map[string]any{
			"tenant_id": tenant, "principal": map[string]any{"principal_id": principal, "principal_type": "user"},
			"scopes":         []string{"runs:forward", "runs:read"},
			"policy_context": map[string]any{"data_classification": "internal", "region": "local", "purpose": "product_inference"},
		},
		"run_request": map[string]any{"agent_id": agentID, "input": map[string]any{"type": "text", "text": text},
			"idempotency_key": idem},
	}}
}

type forwarded struct {
	TenantID        string `json:"tenant_id"`
	RemoteStackID   string `json:"remote_stack_id"`
	RemoteRunID     string `json:"remote_run_id"`
	RemoteEventsURL string `json:"remote_events_url"`
	Status          string `json:"status"`
	Replayed        bool   `json:"replayed"`
}

func forward(t *testing.T, n *node, key string, body map[string]any) (forwarded, answer) {
	t.Helper()
	a := must(t, do(t, n.client, "POST", n.fed+"/v1/federation/runs:forward", key, body), "forward", 200)
	var out struct {
		Forwarded     forwarded `json:"forwarded"`
		CorrelationID string    `json:"correlation_id"`
	}
	a.Decode(t, &out)
	if out.Forwarded.RemoteRunID == "" || out.CorrelationID == "" {
		t.Fatalf("forward answer: %s", a.Body)
	}
	return out.Forwarded, a
}

// remoteEventsRaw lists a run's events on B's Stack A (its own store) as
// JSON objects; items may be bare events or envelopes.
func remoteEventsRaw(t *testing.T, b *node, runID string) []json.RawMessage {
	t.Helper()
	var out struct {
		Events []json.RawMessage `json:"events"`
	}
	must(t, do(t, plain, "GET", b.stackA+"/v1/runs/"+runID+"/events", b.key, nil), "events on B", 200).Decode(t, &out)
	for i, raw := range out.Events {
		var env struct {
			Event json.RawMessage `json:"event"`
		}
		if json.Unmarshal(raw, &env) == nil && len(env.Event) > 0 {
			out.Events[i] = env.Event
		}
	}
	return out.Events
}

// remoteEvents is remoteEventsRaw decoded.
func remoteEvents(t *testing.T, b *node, runID string) []event {
	t.Helper()
	raws := remoteEventsRaw(t, b, runID)
	evs := make([]event, len(raws))
	for i, raw := range raws {
		if err := json.Unmarshal(raw, &evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	return evs
}

// sameEvents fails unless the stream delivered exactly B's events.
func sameEvents(t *testing.T, got []sse, want []event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("streamed %d events, B stored %d", len(got), len(want))
	}
	for i := range want {
		if got[i].event != want[i] {
			t.Fatalf("event %d: streamed %+v, B stored %+v", i, got[i].event, want[i])
		}
	}
}

// forwardAndStream forwards the sample agent A→B, streams it through A to
// the end and checks it against B. It returns the forward.
func forwardAndStream(t *testing.T, p *pair, idem string) forwarded {
	t.Helper()
	body := forwardBody(map[string]any{"stack_id": p.b.stackID, "required_capabilities": []string{"events_stream", "tenant_isolation"}},
		tenantDemo, adminID, sampleAgent, idem, "hello across nodes")
	f, _ := forward(t, p.a, p.a.admin, body)
	if f.RemoteStackID != p.b.stackID || f.TenantID != tenantDemo || f.Replayed {
		t.Fatalf("forwarded: %+v", f)
	}
	if !strings.HasPrefix(f.RemoteEventsURL, p.b.fed+"/v1/federation/runs/"+f.RemoteRunID) {
		t.Fatalf("remote_events_url %q is not B's (%s)", f.RemoteEventsURL, p.b.fed)
	}
	evs := streamEvents(t, p.a.stream, p.a.fed+"/v1/federation/runs/"+f.RemoteRunID+"/events", p.a.admin, 30*time.Second, nil)
	checkGapless(t, evs, tenantDemo, f.RemoteRunID)
	if last := evs[len(evs)-1].event.Type; last != "agentos.run.completed" {
		t.Fatalf("run ended %s", last)
	}

	// The run is B's own, in the same tenant, readable with B's key.
	var run struct {
		Run struct {
			RunID    string `json:"run_id"`
			TenantID string `json:"tenant_id"`
			AgentID  string `json:"agent_id"`
			Status   string `json:"status"`
		} `json:"run"`
	}
	must(t, do(t, plain, "GET", p.b.stackA+"/v1/runs/"+f.RemoteRunID, p.b.key, nil), "run on B", 200).Decode(t, &run)
	if run.Run.RunID != f.RemoteRunID || run.Run.TenantID != tenantDemo || run.Run.AgentID != sampleAgent || run.Run.Status != "completed" {
		t.Fatalf("run on B: %+v", run.Run)
	}
	sameEvents(t, evs, remoteEvents(t, p.b, f.RemoteRunID))
	// A does not run it: its own Stack A does not know the run.
	must(t, do(t, plain, "GET", p.a.stackA+"/v1/runs/"+f.RemoteRunID, p.a.key, nil), "run on A", 404)

	// The same idempotency key answers the same remote run, without a
	// second run on B.
	again, ans := forward(t, p.a, p.a.admin, body)
	if again.RemoteRunID != f.RemoteRunID || again.RemoteStackID != p.b.stackID || !again.Replayed {
		t.Fatalf("replayed forward: %+v, first %+v", again, f)
	}
	if ans.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replayed forward without Idempotent-Replayed: %v", ans.Header)
	}
	return f
}

func TestFederation_TwoNodes(t *testing.T) {
	p := startPair(t, nil)

	t.Run("ForwardStreamAndIdempotency", func(t *testing.T) {
		forwardAndStream(t, p, "idem_e2e_forward")
	})

	t.Run("RelaySurvivesCutStream", func(t *testing.T) { relaySurvivesCut(t, p) })

	t.Run("AssertionsRefused", func(t *testing.T) { assertionsRefused(t, p) })

	t.Run("UntrustedTenantForbidden", func(t *testing.T) { untrustedTenant(t, p) })

	t.Run("MissingCapabilityConflict", func(t *testing.T) { missingCapability(t, p) })

	t.Run("IngestTwiceStoresOnce", func(t *testing.T) { ingestTwice(t, p) })

	t.Run("UnreachablePeer", func(t *testing.T) {
		// A peer whose port is closed: retried, then 503 naming it once.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := "http://" + ln.Addr().String()
		ln.Close()
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		p.a.register(t, peerInfo{StackID: "stk_gone", PublicKey: "ed25519:" + base64.StdEncoding.EncodeToString(pub)}, closed, tenantDemo)
		defer func() {
			must(t, do(t, p.a.client, "DELETE", p.a.fed+"/v1/federation/peers/stk_gone", p.a.admin, nil), "delete stk_gone", 200)
		}()
		a := do(t, p.a.client, "POST", p.a.fed+"/v1/federation/runs:forward", p.a.admin,
			forwardBody(map[string]any{"stack_id": "stk_gone"}, tenantDemo, adminID, sampleAgent, "idem_e2e_gone", "hi"))
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		a.Decode(t, &e)
		if a.Status != 503 || e.Error.Code != "dependency_unavailable" || strings.Count(e.Error.Message, "stk_gone") != 1 {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})
}

// relaySurvivesCut runs a slow agent on B and cuts every connection
// between A and B twice while A relays it to a client.
func relaySurvivesCut(t *testing.T, p *pair) {
	slow := testkit.StartSlowWebhook(t, 2*time.Second)

	b := p.b
	testkit.PatchTenant(t, b.stackA, b.admin, tenantDemo, map[string]any{
		"entitlements": map[string]any{"tool_ids_allowed": []string{"tool.echo", "tool.slow"}}})
	testkit.PutWebhookAgent(t, b.stackA, b.key, "tool.slow", "agt_slow", slow.URL)

	// The run must see the new entitlement, or the model is offered no
	// tool: the PATCH's answer is the event to wait for, since a write
	// drops the cached tenant (the node's change feed) before it answers.

	reconnectsBefore := p.a.metric(t, "agentos_fed_relay_reconnects_total")
	f, _ := forward(t, p.a, p.a.admin, forwardBody(map[string]any{"stack_id": b.stackID}, tenantDemo, adminID, "agt_slow", "idem_e2e_slow", "take your time"))

	// Cut once the tool is running and the client has an event (so A is
	// relaying), and again once A's relay has reconnected through the
	// proxy, both while the tool still sleeps (2 s).
	firstEvent := make(chan struct{})
	var once sync.Once
	var cuts atomic.Int64
	cutDone := make(chan struct{})
	go func() {
		defer close(cutDone)
		select {
		case <-firstEvent:
		case <-time.After(20 * time.Second):
			return
		}
		// A poll, not a sleep: the proxy and the tool have no event to
		// await, and a goroutine must not fail the test, so a condition
		// that never holds only ends the wait (cuts stays 0 and the test
		// says so).
		until := func(limit time.Duration, cond func(live, accepted int) bool) {
			for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				if cond(p.proxy.counts()) {
					return
				}
			}
		}
		until(20*time.Second, func(live, _ int) bool { return live > 0 && slow.Calls.Load() > 0 })
		_, before := p.proxy.counts()
		cuts.Add(int64(p.proxy.cut()))
		until(5*time.Second, func(live, accepted int) bool { return live > 0 && accepted > before })
		cuts.Add(int64(p.proxy.cut()))
	}()
	evs := streamEvents(t, p.a.stream, p.a.fed+"/v1/federation/runs/"+f.RemoteRunID+"/events", p.a.admin, 45*time.Second,
		func(sse) { once.Do(func() { close(firstEvent) }) })
	<-cutDone
	if cuts.Load() == 0 {
		types := []string{}
		for _, e := range evs {
			types = append(types, e.event.Type)
		}
		t.Fatalf("the proxy had no live connection to cut: the relay was not exercised (events %v)", types)
	}
	checkGapless(t, evs, tenantDemo, f.RemoteRunID)
	if last := evs[len(evs)-1].event.Type; last != "agentos.run.completed" {
		t.Fatalf("slow run ended %s", last)
	}
	sameEvents(t, evs, remoteEvents(t, b, f.RemoteRunID))
	var sawTool bool
	for _, e := range evs {
		sawTool = sawTool || strings.HasPrefix(e.event.Type, "agentos.tool.")
	}
	if !sawTool {
		t.Fatalf("the slow agent never called its tool: %v", evs)
	}
	if got := p.a.metric(t, "agentos_fed_relay_reconnects_total"); got <= reconnectsBefore {
		t.Fatalf("relay reconnects %v → %v: the cut did not reach the relay", reconnectsBefore, got)
	}
	t.Logf("%d events relayed across %d cut connections", len(evs), cuts.Load())

	// A later reader resumes through A after the middle of the run and
	// gets exactly the rest.
	mid := len(evs) / 2
	rest := streamEvents(t, p.a.stream, fmt.Sprintf("%s/v1/federation/runs/%s/events?after_sequence=%d", p.a.fed, f.RemoteRunID, mid),
		p.a.admin, 15*time.Second, nil)
	sameEvents(t, rest, func() []event {
		out := []event{}
		for _, e := range evs[mid:] {
			out = append(out, e.event)
		}
		return out
	}())
}

// claims builds assertion claims from A (iss) to B (aud) for tenant.
func claims(iss, aud, tenant string, exp time.Time) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": iss, "aud": aud, "sub": adminID, "tenant_id": tenant,
		"scopes": []string{"runs:read", "runs:forward", "events:ingest"}, "principal_type": "user",
		"jti": fmt.Sprintf("jti_e2e_%d_%s", now.UnixNano(), randomHex(4)), "iat": now.Unix(), "exp": exp.Unix(),
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func sign(t *testing.T, key ed25519.PrivateKey, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// asPeer calls B's federation port with only an assertion.
func asPeer(t *testing.T, b *node, method, path, assertion string, body any) answer {
	t.Helper()
	return do(t, b.client, method, b.fed+path, "", body, "X-AgentOS-Peer-Assertion", assertion)
}

func assertionsRefused(t *testing.T, p *pair) {
	aKey := p.a.privateKey(t)
	_, randomKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The key in A's data dir is the one A publishes.
	if got := "ed25519:" + base64.StdEncoding.EncodeToString(aKey.Public().(ed25519.PublicKey)); got != p.a.info(t).PublicKey {
		t.Fatalf("A's key file does not match its published key")
	}
	const capsPath = "/v1/federation/peer/capabilities"
	hour := time.Now().Add(time.Hour)
	soon := time.Now().Add(time.Minute)
	unsigned, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(p.a.stackID, p.b.stackID, tenantDemo, soon)).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	// Same header and claims, the signature of another message.
	good := sign(t, aKey, claims(p.a.stackID, p.b.stackID, tenantDemo, soon))
	otherSig := sign(t, aKey, claims(p.a.stackID, p.b.stackID, tenantDemo, soon))
	tampered := good[:strings.LastIndex(good, ".")] + otherSig[strings.LastIndex(otherSig, "."):]

	cases := []struct {
		name      string
		assertion string
		status    int
		code      string
	}{
		{"unsigned (alg none)", unsigned, 401, "unauthorized"},
		{"signed with a random key", sign(t, randomKey, claims(p.a.stackID, p.b.stackID, tenantDemo, soon)), 401, "unauthorized"},
		{"signature of another assertion", tampered, 401, "unauthorized"},
		{"expired", sign(t, aKey, claims(p.a.stackID, p.b.stackID, tenantDemo, time.Now().Add(-2*time.Minute))), 401, "unauthorized"},
		{"lives too long", sign(t, aKey, claims(p.a.stackID, p.b.stackID, tenantDemo, hour)), 401, "unauthorized"},
		{"addressed to another node", sign(t, aKey, claims(p.a.stackID, "stk_elsewhere", tenantDemo, soon)), 401, "unauthorized"},
		{"unknown issuer", sign(t, aKey, claims("stk_stranger", p.b.stackID, tenantDemo, soon)), 401, "unauthorized"},
		{"not a JWT", "garbage", 401, "unauthorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := asPeer(t, p.b, "GET", capsPath, tc.assertion, nil)
			if a.Status != tc.status || a.ErrorCode(t) != tc.code {
				t.Fatalf("%d %s, want %d %s", a.Status, a.Body, tc.status, tc.code)
			}
		})
	}

	t.Run("replayed jti", func(t *testing.T) {
		tok := sign(t, aKey, claims(p.a.stackID, p.b.stackID, tenantDemo, soon))
		var caps struct {
			Capabilities struct {
				Supports map[string]bool `json:"supports"`
			} `json:"capabilities"`
		}
		must(t, asPeer(t, p.b, "GET", capsPath, tok, nil), "first use", 200).Decode(t, &caps)
		if !caps.Capabilities.Supports["runs_forward"] {
			t.Fatalf("capabilities: %+v", caps)
		}
		if a := asPeer(t, p.b, "GET", capsPath, tok, nil); a.Status != 401 || a.ErrorCode(t) != "unauthorized" {
			t.Fatalf("replay: %d %s", a.Status, a.Body)
		}
	})

	t.Run("events:ingest without an assertion", func(t *testing.T) {
		a := do(t, p.b.client, "POST", p.b.fed+"/v1/federation/events:ingest", p.b.admin,
			map[string]any{"events": []any{}, "ingest": map[string]any{"source_stack_id": p.a.stackID}})
		if a.Status != 401 {
			t.Fatalf("ingest with an API key: %d %s", a.Status, a.Body)
		}
	})
}

// createTenant makes tnt_other on n with a key that may forward and read.
func createTenant(t *testing.T, n *node, tenant string) string {
	t.Helper()
	must(t, do(t, plain, "POST", n.stackA+"/v1/admin/tenants", n.admin, map[string]any{"tenant_create": map[string]any{
		"tenant_id": tenant, "name": "Other", "plan_tier": "free"}}), "create "+tenant+" on "+n.stackID, 201)
	var tok struct {
		Secret string `json:"secret"`
	}
	must(t, do(t, plain, "POST", n.stackA+"/v1/admin/tenants/"+tenant+"/tokens", n.admin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_other", "principal_type": "user", "scopes": []string{"runs:forward", "runs:read", "runs:create"}, "roles": []string{}}}),
		"token for "+tenant, 201).Decode(t, &tok)
	if tok.Secret == "" {
		t.Fatal("no secret")
	}
	return tok.Secret
}

func untrustedTenant(t *testing.T, p *pair) {
	otherKeyA := createTenant(t, p.a, tenantOther)
	createTenant(t, p.b, tenantOther)

	// Directly: A's valid signature for a tenant B does not trust A for.
	tok := sign(t, p.a.privateKey(t), claims(p.a.stackID, p.b.stackID, tenantOther, time.Now().Add(time.Minute)))
	if a := asPeer(t, p.b, "GET", "/v1/federation/peer/capabilities", tok, nil); a.Status != 403 || a.ErrorCode(t) != "forbidden" {
		t.Fatalf("untrusted tenant, direct: %d %s", a.Status, a.Body)
	}

	// Through A: tnt_other's own key forwards to B, which refuses it.
	a := do(t, p.a.client, "POST", p.a.fed+"/v1/federation/runs:forward", otherKeyA,
		forwardBody(map[string]any{"stack_id": p.b.stackID}, tenantOther, "usr_other", sampleAgent, "idem_e2e_other", "hi"))
	if a.Status != 403 || a.ErrorCode(t) != "forbidden" {
		t.Fatalf("untrusted tenant, forward through A: %d %s", a.Status, a.Body)
	}
	var e struct {
		Error struct {
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	a.Decode(t, &e)
	if e.Error.Details["peer_stack_id"] != p.b.stackID {
		t.Fatalf("the 403 does not name B: %s", a.Body)
	}
}

// missingCapability: real nodes of this build support every capability a
// selector can name (runs_forward, events_stream, tenant_isolation,
// tool_hosting are all on), so A's selection is shown refusing (1) a
// stack_id it has no peer for and (2) a peer that reports no tool hosting:
// a stand-in peer registered in A that answers capabilities like a node
// started without tool hosting.
func missingCapability(t *testing.T, p *pair) {
	t.Run("no such peer", func(t *testing.T) {
		a := do(t, p.a.client, "POST", p.a.fed+"/v1/federation/runs:forward", p.a.admin,
			forwardBody(map[string]any{"stack_id": "stk_nowhere"}, tenantDemo, adminID, sampleAgent, "idem_e2e_nowhere", "hi"))
		if a.Status != 409 || a.ErrorCode(t) != "conflict" || !strings.Contains(string(a.Body), "stack_id:stk_nowhere") {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
	})

	t.Run("peer without tool_hosting", func(t *testing.T) {
		var capsCalls atomic.Int64
		lean := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/federation/peer/capabilities" || r.Header.Get("X-AgentOS-Peer-Assertion") == "" {
				http.Error(w, `{"error":{"code":"not_found","message":"no"}}`, http.StatusNotFound)
				return
			}
			capsCalls.Add(1)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"capabilities":{"supports":{"runs_forward":true,"events_stream":true,"tenant_isolation":true,"tool_hosting":false},`+
				`"limits":{"max_concurrent_runs":1,"max_event_streams":1},"models":{"tiers":["fast"],"backends":["builtin"]}},"correlation_id":"c"}`)
		}), nil)
		pub, _, _ := ed25519.GenerateKey(rand.Reader)
		p.a.register(t, peerInfo{StackID: "stk_lean", PublicKey: "ed25519:" + base64.StdEncoding.EncodeToString(pub)}, lean.URL, tenantDemo)
		defer func() {
			must(t, do(t, p.a.client, "DELETE", p.a.fed+"/v1/federation/peers/stk_lean", p.a.admin, nil), "delete stk_lean", 200)
		}()

		a := do(t, p.a.client, "POST", p.a.fed+"/v1/federation/runs:forward", p.a.admin,
			forwardBody(map[string]any{"stack_id": "stk_lean", "required_capabilities": []string{"tool_hosting"}},
				tenantDemo, adminID, sampleAgent, "idem_e2e_lean", "hi"))
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Details struct {
					Missing              []string `json:"missing"`
					RequiredCapabilities []string `json:"required_capabilities"`
				} `json:"details"`
			} `json:"error"`
		}
		a.Decode(t, &e)
		if a.Status != 409 || e.Error.Code != "conflict" || !slices.Contains(e.Error.Details.Missing, "tool_hosting") {
			t.Fatalf("%d %s", a.Status, a.Body)
		}
		if capsCalls.Load() == 0 {
			t.Fatal("A decided without asking the peer's live capabilities")
		}

		// Without a stack_id both peers are candidates and only B fits.
		f, _ := forward(t, p.a, p.a.admin, forwardBody(map[string]any{"required_capabilities": []string{"tool_hosting"}},
			tenantDemo, adminID, sampleAgent, "idem_e2e_pick", "hi"))
		if f.RemoteStackID != p.b.stackID {
			t.Fatalf("selection picked %s", f.RemoteStackID)
		}
	})
}

// ingestTwice pushes a run's events to B as A twice and reads them back.
func ingestTwice(t *testing.T, p *pair) {
	// Real events: those of a run B made, re-labelled as a run B has never
	// seen, so B can only know them from the ingest.
	f, _ := forward(t, p.a, p.a.admin, forwardBody(map[string]any{"stack_id": p.b.stackID}, tenantDemo, adminID, sampleAgent, "idem_e2e_ingest_src", "source"))
	streamEvents(t, p.a.stream, p.a.fed+"/v1/federation/runs/"+f.RemoteRunID+"/events", p.a.admin, 30*time.Second, nil)
	listed := remoteEventsRaw(t, p.b, f.RemoteRunID)
	runID := "run_e2eingest" + randomHex(8)
	items := make([]any, 0, len(listed))
	for i, raw := range listed {
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		ev["run_id"] = runID
		ev["event_id"] = fmt.Sprintf("evt_e2eingest_%s_%d", runID, i+1)
		items = append(items, map[string]any{"event": ev})
	}
	if len(items) < 2 {
		t.Fatalf("source run has %d events", len(items))
	}
	aKey := p.a.privateKey(t)
	body := map[string]any{"events": items, "ingest": map[string]any{"source_stack_id": p.a.stackID, "dedupe": map[string]any{"mode": "event_id"}}}
	dupBefore := p.b.metric(t, `agentos_fed_ingest_events_total{outcome="duplicate"}`)
	storedBefore := p.b.metric(t, `agentos_fed_ingest_events_total{outcome="stored"}`)
	for round := 1; round <= 2; round++ {
		tok := sign(t, aKey, claims(p.a.stackID, p.b.stackID, tenantDemo, time.Now().Add(time.Minute)))
		var out struct {
			Accepted int `json:"accepted"`
			Rejected int `json:"rejected"`
		}
		must(t, asPeer(t, p.b, "POST", "/v1/federation/events:ingest", tok, body), fmt.Sprintf("ingest round %d", round), 200).Decode(t, &out)
		if out.Accepted != len(items) || out.Rejected != 0 {
			t.Fatalf("round %d: accepted %d rejected %d, want %d/0", round, out.Accepted, out.Rejected, len(items))
		}
	}
	if d := p.b.metric(t, `agentos_fed_ingest_events_total{outcome="duplicate"}`) - dupBefore; d != float64(len(items)) {
		t.Fatalf("B counted %v duplicates, want %d", d, len(items))
	}
	if s := p.b.metric(t, `agentos_fed_ingest_events_total{outcome="stored"}`) - storedBefore; s != float64(len(items)) {
		t.Fatalf("B stored %v events, want %d", s, len(items))
	}

	// Read back from B in tnt_demo: once each, in order.
	var back struct {
		Events []event `json:"events"`
	}
	must(t, do(t, p.b.client, "GET", p.b.fed+"/v1/federation/runs/"+runID+"/events", p.b.key, nil), "ingested events", 200).Decode(t, &back)
	if len(back.Events) != len(items) {
		t.Fatalf("read back %d events, ingested %d twice", len(back.Events), len(items))
	}
	for i, ev := range back.Events {
		if ev.Sequence != int64(i+1) || ev.RunID != runID || ev.EventID != fmt.Sprintf("evt_e2eingest_%s_%d", runID, i+1) {
			t.Fatalf("event %d read back: %+v", i, ev)
		}
	}
	// Streamed too, to its terminal event.
	evs := streamEvents(t, p.b.stream, p.b.fed+"/v1/federation/runs/"+runID+"/events", p.b.key, 10*time.Second, nil)
	checkGapless(t, evs, tenantDemo, runID)
	// Another tenant does not see them.
	must(t, do(t, p.b.client, "GET", p.b.fed+"/v1/federation/runs/"+runID+"/events", otherTenantKey(t, p.b), nil), "other tenant reads", 404)
}

// otherTenantKey gives a tnt_other key on n, creating the tenant when an
// earlier subtest did not.
func otherTenantKey(t *testing.T, n *node) string {
	t.Helper()
	if a := do(t, plain, "GET", n.stackA+"/v1/admin/tenants/"+tenantOther, n.admin, nil); a.Status == 404 {
		return createTenant(t, n, tenantOther)
	}
	var tok struct {
		Secret string `json:"secret"`
	}
	must(t, do(t, plain, "POST", n.stackA+"/v1/admin/tenants/"+tenantOther+"/tokens", n.admin, map[string]any{"token_create": map[string]any{
		"principal_id": "usr_other_reader", "principal_type": "user", "scopes": []string{"runs:read"}, "roles": []string{}}}),
		"reader token", 201).Decode(t, &tok)
	return tok.Secret
}

// TestFederation_ForwardAndStreamOnPostgres: the forward, its idempotent
// replay and the relayed event stream with both nodes on PostgreSQL (peer
// registry, forward index, seen assertion ids and ingested events in the
// database).
func TestFederation_ForwardAndStreamOnPostgres(t *testing.T) {
	if !slices.Contains(testbinary.Stores(), "postgres") {
		t.Skip("no PostgreSQL test server (AGENTOS_TEST_POSTGRES_URL)")
	}
	p := startPairOn(t, nil, "postgres")
	forwardAndStream(t, p, "idem_e2e_pg_forward")
}

func TestFederation_MTLS(t *testing.T) {
	dir := t.TempDir()
	certs := exec.Command(testbinary.Binary, "certs", "--dir", dir, "--host", "127.0.0.1", "--host", "localhost")
	certs.Dir = t.TempDir()
	out, err := certs.CombinedOutput()
	if err != nil {
		t.Fatalf("agentos certs: %v\n%s", err, out)
	}
	tf := &tlsFiles{cert: filepath.Join(dir, "node.pem"), key: filepath.Join(dir, "node.key"), ca: filepath.Join(dir, "ca.pem")}
	p := startPair(t, tf)

	forwardAndStream(t, p, "idem_e2e_mtls")

	// The federation port refuses a client without a certificate.
	noCert := clientTLS(t, tf)
	noCert.Certificates = nil
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: noCert}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	if r, err := testkit.Send(c, "GET", p.b.fed+"/v1/federation/health", "", nil); err == nil {
		t.Fatalf("a client without a certificate got %d", r.Status)
	}
	// And plain HTTP gets nothing useful either.
	if resp, err := plain.Get("http://" + strings.TrimPrefix(p.b.fed, "https://") + "/v1/federation/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP reached the mTLS federation port")
		}
	}
}
