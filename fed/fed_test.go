package fed_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

func TestRoutes_ColonPathsAndAliases(t *testing.T) {
	a, _ := pair(t, nil)
	tests := []struct {
		name, method, path, key string
		body                    any
		wantStatus              int
		wantCode                string
	}{
		{"health is public", http.MethodGet, "/v1/federation/health", "", nil, 200, ""},
		{"peer info", http.MethodGet, "/v1/federation/peer", keyDemo, nil, 200, ""},
		{"peer info alias", http.MethodGet, "/v1/peer/info", keyDemo, nil, 200, ""},
		{"capabilities", http.MethodGet, "/v1/federation/peer/capabilities", keyDemo, nil, 200, ""},
		{"capabilities alias", http.MethodGet, "/v1/peer/capabilities", keyDemo, nil, 200, ""},
		{"peer info needs a credential", http.MethodGet, "/v1/federation/peer", "", nil, 401, core.CodeUnauthorized},
		{"runs:forward routes to forward", http.MethodPost, "/v1/federation/runs:forward", keyDemo, map[string]any{}, 400, core.CodeInvalidRequest},
		{"runs:forward needs the scope", http.MethodPost, "/v1/federation/runs:forward", keyNoScope,
			forwardBody(nil, "agt_x", "idem_1", "hi"), 403, core.CodeForbidden},
		{"events:ingest routes to ingest", http.MethodPost, "/v1/federation/events:ingest", keyDemo,
			map[string]any{"events": []any{}}, 401, core.CodeUnauthorized},
		{"runs:other is not a route", http.MethodPost, "/v1/federation/runs:other", keyDemo, map[string]any{}, 404, core.CodeNotFound},
		{"unknown run is 404", http.MethodGet, "/v1/federation/runs/run_nope/events", keyDemo, nil, 404, core.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.call(tc.method, tc.path, tc.key, tc.body)
			if r.status != tc.wantStatus || r.errCode() != tc.wantCode {
				t.Fatalf("status %d code %q, want %d %q: %s", r.status, r.errCode(), tc.wantStatus, tc.wantCode, r.raw)
			}
			if r.body["correlation_id"] == nil {
				t.Fatalf("no correlation_id in %s", r.raw)
			}
		})
	}
	r := a.call(http.MethodGet, "/v1/federation/health", "", nil)
	if r.body["status"] != "ok" || r.body["service"] != "federation" || r.body["version"] != "1.0.2" {
		t.Fatalf("health: %s", r.raw)
	}
	r = a.call(http.MethodGet, "/v1/federation/peer", keyDemo, nil)
	peer := r.body["peer"].(map[string]any)
	if peer["stack_id"] != "stk_a" || peer["public_key"] != a.node.PublicKey() || peer["region"] != "us-west-2" ||
		peer["endpoints"].(map[string]any)["federation_base_url"] != a.url {
		t.Fatalf("peer info: %s", r.raw)
	}
	r = a.call(http.MethodGet, "/v1/federation/peer/capabilities", keyDemo, nil)
	caps := r.body["capabilities"].(map[string]any)
	models := caps["models"].(map[string]any)
	if models["max_context_tokens"].(float64) != 32768 || len(models["tiers"].([]any)) != 2 {
		t.Fatalf("capabilities: %s", r.raw)
	}
}

func TestForward_StreamThroughA_ToCompletion(t *testing.T) {
	a, b := pair(t, newMemRuns(3, 5*time.Millisecond))
	r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b", "required_capabilities": []string{"events_stream", "tenant_isolation"},
			"preferred_model_tier": "balanced"}, "agt_sample_echo_v1", "idem_stream_1", "hello"),
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f := forwarded(t, r)
	runID := f["remote_run_id"].(string)
	if f["remote_stack_id"] != "stk_b" || f["tenant_id"] != tenantDemo || f["status"] != core.RunQueued {
		t.Fatalf("forwarded: %v", f)
	}
	if f["remote_events_url"] != b.url+"/v1/federation/runs/"+runID+"/events" {
		t.Fatalf("remote_events_url %v", f["remote_events_url"])
	}
	// The run is B's own, under the same tenant and principal.
	run, err := b.runs.GetRun(context.Background(), core.Auth{TenantID: tenantDemo}, runID)
	if err != nil || run.PrincipalID != "usr_demo" {
		t.Fatalf("run on B: %+v %v", run, err)
	}
	if _, err := b.runs.GetRun(context.Background(), core.Auth{TenantID: tenantOther}, runID); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("another tenant sees the run on B: %v", err)
	}

	resp := a.stream(runID, keyDemo, 0)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	evs, _ := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	assertGapless(t, evs, 0)
	if want := len(b.runs.plan()) + 1; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	if evs[0].Event.Type != core.EventRunCreated || evs[0].Event.TenantID != tenantDemo {
		t.Fatalf("first event %+v", evs[0].Event)
	}

	// Resume from the middle: A answers from what it stored while relaying.
	resp = a.stream(runID, keyDemo, 10)
	tail, _ := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	assertGapless(t, tail, 10)
	if tail[0].Event.EventID != evs[10].Event.EventID {
		t.Fatal("resumed stream does not continue the same events")
	}

	// Both sides audited the forward (checked below); now B goes away and
	// A still replays the whole run from what its relay stored.
	defer func() {
		b.srv.Close()
		resp := a.stream(runID, keyDemo, 0)
		again, _ := readSSE(t, resp.Body, nil)
		resp.Body.Close()
		assertGapless(t, again, 0)
		if len(again) != len(evs) {
			t.Fatalf("replay from A's store: %d events, want %d", len(again), len(evs))
		}
	}()

	// Another tenant on A cannot read it.
	if r := a.call(http.MethodGet, "/v1/federation/runs/"+runID+"/events", keyOther, nil); r.status != 404 {
		t.Fatalf("other tenant: %d %s", r.status, r.raw)
	}
	// The JSON form lists the events through the peer.
	r = a.call(http.MethodGet, "/v1/federation/runs/"+runID+"/events?after_sequence=2", keyDemo, nil, "Accept", "application/json")
	if list, _ := r.body["events"].([]any); r.status != 200 || len(list) != len(evs)-2 {
		t.Fatalf("json events: %d %s", r.status, r.raw)
	}

	// Both sides audited the forward.
	recs, _ := a.store.ListAudit(context.Background(), tenantDemo, core.AuditFilter{Action: "federation.forward"})
	if len(recs) != 1 || recs[0].ObjectID != runID || recs[0].Outcome != "success" {
		t.Fatalf("A audit: %+v", recs)
	}
	recs, _ = b.store.ListAudit(context.Background(), tenantDemo, core.AuditFilter{Action: "federation.forward.receive"})
	if len(recs) != 1 || recs[0].Details["source_stack_id"] != "stk_a" {
		t.Fatalf("B audit: %+v", recs)
	}
}

func TestForward_SameIdempotencyKey_SameRemoteRun(t *testing.T) {
	bRuns := newMemRuns(1, 0)
	dirA := t.TempDir()
	a := startNode(t, nodeOpts{stackID: "stk_a", dir: dirA})
	b := startNode(t, nodeOpts{stackID: "stk_b", runs: bRuns})
	a.trust(b, b.url, tenantDemo)
	b.trust(a, a.url, tenantDemo)

	body := forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_same", "hello")
	first := forwarded(t, a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo, body))
	r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo, body)
	second := forwarded(t, r)
	if first["remote_run_id"] != second["remote_run_id"] || r.header.Get("Idempotent-Replayed") != "true" ||
		second["replayed"] != true || first["replayed"] != false {
		t.Fatalf("replay made another run: %v vs %v", first, second)
	}
	if n := bRuns.count(); n != 1 {
		t.Fatalf("B has %d runs, want 1", n)
	}
	// Same key, other body: conflict.
	r = a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_same", "something else"))
	if r.status != 409 || r.errCode() != core.CodeConflict {
		t.Fatalf("different body: %d %s", r.status, r.raw)
	}

	// Restart A on the same data dir: same key (file), same index.
	pub := a.node.PublicKey()
	a.close()
	a2 := startNode(t, nodeOpts{stackID: "stk_a", dir: dirA})
	if a2.node.PublicKey() != pub {
		t.Fatal("node key changed across restart")
	}
	b.trust(a2, a2.url, tenantDemo)
	third := forwarded(t, a2.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo, body))
	if third["remote_run_id"] != first["remote_run_id"] || bRuns.count() != 1 {
		t.Fatalf("after restart: %v, B runs %d", third, bRuns.count())
	}
}

// flakyProxy fronts a node and fails the first n forward POSTs with 502.
func flakyProxy(t *testing.T, target string, fail int32) (*httptest.Server, *atomic.Int32) {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	var posts atomic.Int32
	srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && posts.Add(1) <= fail {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}), nil)
	return srv, &posts
}

func TestForward_RetriesOn5xx_OneRemoteRun(t *testing.T) {
	bRuns := newMemRuns(1, 0)
	a := startNode(t, nodeOpts{stackID: "stk_a"})
	b := startNode(t, nodeOpts{stackID: "stk_b", runs: bRuns})
	proxy, posts := flakyProxy(t, b.url, 2)
	a.trust(b, proxy.URL, tenantDemo)
	b.trust(a, a.url, tenantDemo)
	f := forwarded(t, a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_retry", "hello")))
	if posts.Load() != 3 || bRuns.count() != 1 || f["remote_run_id"] == "" {
		t.Fatalf("posts %d, B runs %d, forwarded %v", posts.Load(), bRuns.count(), f)
	}
}

func TestForward_PeerDown_Is503(t *testing.T) {
	a := startNode(t, nodeOpts{stackID: "stk_a"})
	b := startNode(t, nodeOpts{stackID: "stk_b"})
	a.trust(b, "http://127.0.0.1:1", tenantDemo)
	r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_down", "hello"))
	if r.status != 503 || r.errCode() != core.CodeDependencyUnavailable {
		t.Fatalf("peer down: %d %s", r.status, r.raw)
	}
}

// cuttableProxy fronts B; cut() drops every open connection (streams
// included) while the proxy keeps accepting new ones.
func cuttableProxy(t *testing.T, target string) (*httptest.Server, *atomic.Int32) {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	var streams atomic.Int32
	srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.Header.Get("Accept") == "text/event-stream" {
			streams.Add(1)
		}
		rp.ServeHTTP(w, r)
	}), nil)
	return srv, &streams
}

func TestRelay_SurvivesCutStream_NoGapNoDuplicate(t *testing.T) {
	bRuns := newMemRuns(6, 15*time.Millisecond) // 51 events over ~750 ms
	a := startNode(t, nodeOpts{stackID: "stk_a"})
	b := startNode(t, nodeOpts{stackID: "stk_b", runs: bRuns})
	proxy, streams := cuttableProxy(t, b.url)
	a.trust(b, proxy.URL, tenantDemo)
	b.trust(a, a.url, tenantDemo)
	f := forwarded(t, a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_cut", "hello")))
	runID := f["remote_run_id"].(string)

	resp := a.stream(runID, keyDemo, 0)
	defer resp.Body.Close()
	cuts := 0
	evs, _ := readSSE(t, resp.Body, func(e sseEvent) {
		if e.Event.Sequence == 5 || e.Event.Sequence == 20 {
			proxy.CloseClientConnections() // cut B's stream mid-run
			cuts++
		}
	})
	assertGapless(t, evs, 0)
	if want := len(bRuns.plan()) + 1; len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
	if cuts != 2 || streams.Load() < 3 {
		t.Fatalf("cuts %d, stream connections to B %d: the relay did not reconnect", cuts, streams.Load())
	}
}

func TestAssertion_Refusals(t *testing.T) {
	a, b := pair(t, nil)
	priv := readNodeKey(t, a.dir)
	_, strangerKey := newKey(t)
	now := time.Now()
	good := func() assertionClaims {
		return assertionClaims{iss: "stk_a", aud: "stk_b", sub: "usr_demo", tenant: tenantDemo,
			scopes: []string{"runs:read"}, exp: now.Add(2 * time.Minute), jti: core.NewID("jti")}
	}
	replayed := good()
	tests := []struct {
		name   string
		token  func() string
		want   int
		repeat bool
	}{
		{"valid", func() string { return sign(t, priv, good()) }, 200, false},
		{"no credential at all", func() string { return "" }, 401, false},
		{"garbage", func() string { return "not.a.jwt" }, 401, false},
		{"wrong key", func() string { return sign(t, strangerKey, good()) }, 401, false},
		{"unknown issuer", func() string { c := good(); c.iss = "stk_zz"; return sign(t, priv, c) }, 401, false},
		{"wrong audience", func() string { c := good(); c.aud = "stk_c"; return sign(t, priv, c) }, 401, false},
		{"expired", func() string { c := good(); c.exp = now.Add(-2 * time.Minute); return sign(t, priv, c) }, 401, false},
		{"lives too long", func() string { c := good(); c.exp = now.Add(time.Hour); return sign(t, priv, c) }, 401, false},
		{"no jti", func() string { c := good(); c.jti = ""; return sign(t, priv, c) }, 401, false},
		{"HS256 instead of EdDSA", func() string { return signHS(t, good()) }, 401, false},
		{"replayed jti", func() string { return sign(t, priv, replayed) }, 401, true},
		{"untrusted tenant", func() string { c := good(); c.tenant = tenantOther; return sign(t, priv, c) }, 403, false},
		{"unknown tenant", func() string { c := good(); c.tenant = "tnt_ghost"; return sign(t, priv, c) }, 403, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token()
			if tc.repeat {
				if r := b.call(http.MethodGet, "/v1/federation/peer/capabilities", "", nil, "X-AgentOS-Peer-Assertion", tok); r.status != 200 {
					t.Fatalf("first use: %d %s", r.status, r.raw)
				}
			}
			var hdr []string
			if tok != "" {
				hdr = []string{"X-AgentOS-Peer-Assertion", tok}
			}
			r := b.call(http.MethodGet, "/v1/federation/peer/capabilities", "", nil, hdr...)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.raw)
			}
		})
	}
}

func TestForward_UntrustedTenant_Is403(t *testing.T) {
	a, _ := pair(t, nil) // trust covers tnt_demo only
	r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyOther,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_untrusted", "hello"))
	if r.status != 403 || r.errCode() != core.CodeForbidden {
		t.Fatalf("untrusted tenant: %d %s", r.status, r.raw)
	}
}

func TestForward_Selection(t *testing.T) {
	a, _ := pair(t, nil) // B has no tool hosting
	tests := []struct {
		name        string
		selector    map[string]any
		wantStatus  int
		wantMissing string
	}{
		{"missing capability", map[string]any{"stack_id": "stk_b", "required_capabilities": []string{"tool_hosting"}}, 409, "tool_hosting"},
		{"unknown stack", map[string]any{"stack_id": "stk_nope"}, 409, "stack_id:stk_nope"},
		{"no peer in region", map[string]any{"region": "eu-central-1"}, 409, "region:eu-central-1"},
		{"unknown capability name", map[string]any{"required_capabilities": []string{"teleport"}}, 400, ""},
		{"by region", map[string]any{"region": "us-west-2", "required_capabilities": []string{"events_stream"}}, 200, ""},
		{"by capability only, tier not offered is fine", map[string]any{"preferred_model_tier": "premium"}, 200, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
				forwardBody(tc.selector, "agt_sample_echo_v1", "idem_sel_"+string(rune('a'+i)), "hello"))
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantMissing != "" {
				det := r.body["error"].(map[string]any)["details"].(map[string]any)
				var missing []string
				for _, m := range det["missing"].([]any) {
					missing = append(missing, m.(string))
				}
				if !slices.Contains(missing, tc.wantMissing) {
					t.Fatalf("details.missing %v lacks %s", missing, tc.wantMissing)
				}
			}
		})
	}
}

func TestForward_ReceivingSideErrorsPassThrough(t *testing.T) {
	a, _ := pair(t, nil)
	r := a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_missing", "idem_missing_agent", "hello"))
	if r.status != 404 || r.errCode() != core.CodeNotFound {
		t.Fatalf("unknown agent on B: %d %s", r.status, r.raw)
	}
}

func TestStream_LocalRun_PingsResumeAndIsolation(t *testing.T) {
	runs := newMemRuns(2, 40*time.Millisecond) // 19 events over ~750 ms; pings every 100 ms
	a := startNode(t, nodeOpts{stackID: "stk_a", runs: runs})
	run, _, err := runs.CreateRun(context.Background(), testKeys[keyDemo], "agt_sample_echo_v1",
		core.RunRequest{Input: core.RunInput{Type: "text", Text: "hi"}, IdempotencyKey: "idem_local"}, "")
	if err != nil {
		t.Fatal(err)
	}
	resp := a.stream(run.RunID, keyDemo, 0)
	evs, pings := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	assertGapless(t, evs, 0)
	if pings == 0 {
		t.Fatal("no ': ping' comment on a slow stream")
	}
	// Last-Event-ID resumes after the given sequence.
	resp = a.streamWith(run.RunID, "Authorization", "Bearer "+keyDemo, "Last-Event-ID", "7")
	tail, _ := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	assertGapless(t, tail, 7)
	if r := a.call(http.MethodGet, "/v1/federation/runs/"+run.RunID+"/events", keyOther, nil); r.status != 404 {
		t.Fatalf("other tenant: %d", r.status)
	}
	if r := a.call(http.MethodGet, "/v1/federation/runs/"+run.RunID+"/events?after_sequence=-1", keyDemo, nil); r.status != 400 {
		t.Fatalf("negative after_sequence: %d", r.status)
	}
}

// TestForward_LostAnswer_RetryFindsSameRun: the peer creates the run but
// its answer never reaches A (the proxy swallows it); A's retry carries the
// same idempotency key, so the peer answers with the run it made.
func TestForward_LostAnswer_RetryFindsSameRun(t *testing.T) {
	bRuns := newMemRuns(1, 0)
	a := startNode(t, nodeOpts{stackID: "stk_a"})
	b := startNode(t, nodeOpts{stackID: "stk_b", runs: bRuns})
	u, _ := url.Parse(b.url)
	rp := httputil.NewSingleHostReverseProxy(u)
	var swallowed atomic.Bool
	proxy := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && swallowed.CompareAndSwap(false, true) {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r)                                   // B creates the run…
			http.Error(w, "upstream reset", http.StatusBadGateway) // …A never hears of it
			return
		}
		rp.ServeHTTP(w, r)
	}), nil)
	a.trust(b, proxy.URL, tenantDemo)
	b.trust(a, a.url, tenantDemo)
	f := forwarded(t, a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_lost", "hello")))
	if !swallowed.Load() || bRuns.count() != 1 {
		t.Fatalf("swallowed %v, B runs %d, want exactly 1", swallowed.Load(), bRuns.count())
	}
	if _, err := b.runs.GetRun(context.Background(), testKeys[keyDemo], f["remote_run_id"].(string)); err != nil {
		t.Fatalf("recorded run is not B's run: %v", err)
	}
}

func TestNode_CloseEndsOpenStreams(t *testing.T) {
	runs := newMemRuns(1, 0)
	runs.manual = true // the run never finishes on its own
	a := startNode(t, nodeOpts{stackID: "stk_a", runs: runs})
	run, _, _ := runs.CreateRun(context.Background(), testKeys[keyDemo], "agt_sample_echo_v1",
		core.RunRequest{Input: core.RunInput{Type: "text", Text: "hi"}, IdempotencyKey: "idem_close"}, "")
	resp := a.stream(run.RunID, keyDemo, 0)
	defer resp.Body.Close()
	got := make(chan int, 1)
	first := make(chan struct{})
	go func() {
		var once sync.Once
		evs, _ := readSSE(t, resp.Body, func(sseEvent) { once.Do(func() { close(first) }) })
		got <- len(evs)
	}()
	// The stream is open and serving once its first event arrived.
	testkit.Await(t, "the stream's first event", 5*time.Second, first)
	done := make(chan struct{})
	go func() { a.node.Close(); close(done) }()
	testkit.Await(t, "Close to end the open stream", 5*time.Second, done)
	if n := <-got; n != 1 {
		t.Fatalf("stream delivered %d events before close, want 1", n)
	}
	if r := a.call(http.MethodGet, "/v1/federation/runs/"+run.RunID+"/events", keyDemo, nil); r.status != 503 {
		t.Fatalf("stream after Close: %d", r.status)
	}
}

func TestCapabilities_WithoutModelCatalogue_StillForwardable(t *testing.T) {
	a := startNode(t, nodeOpts{stackID: "stk_a"})
	b := startNode(t, nodeOpts{stackID: "stk_b", modelsDown: true})
	a.trust(b, b.url, tenantDemo)
	b.trust(a, a.url, tenantDemo)
	r := b.call(http.MethodGet, "/v1/federation/peer/capabilities", keyDemo, nil)
	caps := r.body["capabilities"].(map[string]any)
	if r.status != 200 || len(caps["models"].(map[string]any)["tiers"].([]any)) != 0 || caps["supports"].(map[string]any)["runs_forward"] != true {
		t.Fatalf("capabilities: %d %s", r.status, r.raw)
	}
	forwarded(t, a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b", "preferred_model_tier": "fast"}, "agt_sample_echo_v1", "idem_nomodels", "hi")))
}

func TestForward_BodyAuth(t *testing.T) {
	bRuns := newMemRuns(1, 0)
	a, _ := pair(t, bRuns)
	tests := []struct {
		name       string
		key        string
		auth       map[string]any
		wantStatus int
		wantOwner  string // principal of the run on B
	}{
		{"own auth echoed", keyDemo, map[string]any{"tenant_id": tenantDemo, "principal": map[string]any{"principal_id": "usr_demo", "principal_type": "user"}}, 200, "usr_demo"},
		{"tenant only", keyDemo, map[string]any{"tenant_id": tenantDemo}, 200, "usr_demo"},
		{"another tenant without act_as", keyDemo, map[string]any{"tenant_id": tenantOther, "principal": map[string]any{"principal_id": "usr_other"}}, 403, ""},
		{"another principal without act_as", keyDemo, map[string]any{"tenant_id": tenantDemo, "principal": map[string]any{"principal_id": "usr_x"}}, 403, ""},
		{"platform admin acts for a principal", keyAdmin, map[string]any{"tenant_id": tenantDemo,
			"principal": map[string]any{"principal_id": "svc_batch", "principal_type": "service"},
			"scopes":    []string{"runs:create", "runs:read", "runs:forward"}}, 200, "svc_batch"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_auth_"+string(rune('a'+i)), "hi")
			body["forward"].(map[string]any)["auth"] = tc.auth
			r := a.call(http.MethodPost, "/v1/federation/runs:forward", tc.key, body)
			if r.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tc.wantStatus, r.raw)
			}
			if tc.wantOwner != "" {
				run, err := bRuns.GetRun(context.Background(), core.Auth{TenantID: tenantDemo}, forwarded(t, r)["remote_run_id"].(string))
				if err != nil || run.PrincipalID != tc.wantOwner {
					t.Fatalf("run on B: %+v %v", run, err)
				}
			}
		})
	}
}
