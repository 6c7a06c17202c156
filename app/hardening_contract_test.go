package app_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/golang-jwt/jwt/v5"
)

// fakePeer is a federation peer the test plays itself: its own Ed25519
// key, registered on the node, signing assertions like a node that follows
// upstream's documents would.
type fakePeer struct {
	stackID string
	key     ed25519.PrivateKey
}

func registerFakePeer(t *testing.T, n *testNode, stackID string) fakePeer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r := do(t, "POST", n.URL(app.StackFed)+"/v1/federation/peers", n.creds.PlatformAdmin.APIKey, map[string]any{"peer": map[string]any{
		"stack_id": stackID, "federation_url": "http://127.0.0.1:9", "public_key": "ed25519:" + base64.StdEncoding.EncodeToString(pub),
		"trusted_tenants": []string{app.DemoTenantID}}})
	expectStatus(t, r, http.StatusCreated, "register peer")
	return fakePeer{stackID: stackID, key: priv}
}

// assertion signs a fresh peer assertion for the node n.
func (p fakePeer) assertion(t *testing.T, n *testNode, principal string, scopes ...string) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": p.stackID, "aud": n.StackID(), "sub": principal, "tenant_id": app.DemoTenantID,
		"scopes": scopes, "principal_type": "user", "jti": core.NewID("jti"), "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix()}
	s, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims).SignedString(p.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHardening_RunOmitsUnsetTimestamps: issue 14 item 11. started_at and
// completed_at are absent (not null) until set, output and error are null
// until set, and run-level events carry no step_id key at all.
func TestHardening_RunOmitsUnsetTimestamps(t *testing.T) {
	n := MustStartNode(t)
	a, key := n.URL(app.StackA), n.creds.TenantAdmin.APIKey
	r := do(t, "POST", a+"/v1/agents/"+app.SampleAgentID+"/runs", key, map[string]any{
		"input": map[string]any{"type": "text", "text": "shapes"}, "idempotency_key": "idem_shapes"})
	expectStatus(t, r, http.StatusCreated, "create run")
	run := r.JSON(t)["run"].(map[string]any)
	if run["status"] != core.RunQueued {
		t.Fatalf("a new run is %v", run["status"])
	}
	for _, k := range []string{"started_at", "completed_at"} {
		if v, ok := run[k]; ok {
			t.Errorf("queued run carries %s: %v", k, v)
		}
	}
	for _, k := range []string{"output", "error"} {
		if v, ok := run[k]; !ok || v != nil {
			t.Errorf("queued run: %s must be present and null, got %v (present %v)", k, v, ok)
		}
	}
	id := run["run_id"].(string)
	done := testkit.WaitRun(t, a, key, id, 10*time.Second)
	for _, k := range []string{"started_at", "completed_at"} {
		if s, _ := done[k].(string); s == "" {
			t.Errorf("finished run lacks %s", k)
		} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			t.Errorf("%s %q: %v", k, s, err)
		}
	}
	if done["error"] != nil || done["output"] == nil {
		t.Errorf("completed run: output %v error %v", done["output"], done["error"])
	}

	// Stored events (JSON) and the live stream (SSE) alike.
	check := func(src string, ev map[string]any) {
		typ := ev["type"].(string)
		_, has := ev["step_id"]
		runLevel := strings.HasPrefix(typ, "agentos.run.") && !strings.HasPrefix(typ, "agentos.run.step.")
		switch {
		case runLevel && has:
			t.Errorf("%s: run-level event %s carries step_id %v", src, typ, ev["step_id"])
		case !runLevel && (!has || ev["step_id"] == nil):
			t.Errorf("%s: step event %s lacks step_id", src, typ)
		}
	}
	evs := do(t, "GET", a+"/v1/runs/"+id+"/events", key, nil, "Accept", "application/json").JSON(t)["events"].([]any)
	if len(evs) < 4 {
		t.Fatalf("only %d events", len(evs))
	}
	for _, e := range evs {
		check("json", e.(map[string]any))
	}
	seen := 0
	testkit.Stream(t, nil, a+"/v1/runs/"+id+"/events", key, 10*time.Second, func(m testkit.SSE) {
		var env struct {
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal([]byte(m.Data), &env); err != nil {
			t.Fatal(err)
		}
		check("sse", env.Event)
		seen++
	})
	if seen != len(evs) {
		t.Errorf("stream carried %d events, store %d", seen, len(evs))
	}
}

// TestHardening_RunReplayAnswers201: issue 14 item 12. A replay of run
// create answers with the original status, 201, the original run and
// Idempotent-Replayed: true; the first create carries no such header.
func TestHardening_RunReplayAnswers201(t *testing.T) {
	n := MustStartNode(t)
	a, key := n.URL(app.StackA), n.creds.TenantAdmin.APIKey
	body := map[string]any{"input": map[string]any{"type": "text", "text": "once"}, "idempotency_key": "idem_replay"}
	first := do(t, "POST", a+"/v1/agents/"+app.SampleAgentID+"/runs", key, body)
	expectStatus(t, first, http.StatusCreated, "create")
	if h := first.Header.Get("Idempotent-Replayed"); h != "" {
		t.Fatalf("first create says Idempotent-Replayed: %q", h)
	}
	again := do(t, "POST", a+"/v1/agents/"+app.SampleAgentID+"/runs", key, body)
	expectStatus(t, again, http.StatusCreated, "replay")
	if again.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay lacks Idempotent-Replayed: %v", again.Header)
	}
	id1 := first.JSON(t)["run"].(map[string]any)["run_id"]
	if id2 := again.JSON(t)["run"].(map[string]any)["run_id"]; id1 != id2 {
		t.Fatalf("replay made another run: %v %v", id1, id2)
	}
	if loc := again.Header.Get("Location"); loc != "/v1/runs/"+id1.(string) {
		t.Errorf("Location %q", loc)
	}
}

// TestHardening_IngestAcceptsUpstreamShapes: issue 14 item 13. A peer that
// follows upstream's documents sends its peer object without public_key
// and events whose payload is any object (and step_id null or absent);
// the node accepts them.
func TestHardening_IngestAcceptsUpstreamShapes(t *testing.T) {
	n := MustStartNode(t)
	peer := registerFakePeer(t, n, "stk_upstream_peer")
	now := time.Now().UTC().Format(time.RFC3339)
	body := map[string]any{
		"peer": map[string]any{"stack_id": peer.stackID, "environment": "prod", "region": "eu-west-1", "api_versions": []string{"v1"},
			"endpoints": map[string]any{"stack_a_base_url": "https://a.example", "stack_b_base_url": "https://b.example"},
			"build":     map[string]any{"version": "1.0.2", "git_sha": "abc", "timestamp": now}},
		"events": []any{
			map[string]any{"event": map[string]any{"event_id": "evt_up_1", "sequence": 1, "time": now, "type": "agentos.run.created",
				"tenant_id": app.DemoTenantID, "agent_id": "agt_remote", "run_id": "run_remote_1", "trace": map[string]any{},
				"payload": map[string]any{"status": "queued", "upstream_extra": map[string]any{"queue": "eu"}}}},
			map[string]any{"event_id": "evt_up_2", "sequence": 2, "time": now, "type": "agentos.run.step.started",
				"tenant_id": app.DemoTenantID, "agent_id": "agt_remote", "run_id": "run_remote_1", "step_id": nil,
				"trace": map[string]any{}, "payload": map[string]any{"phase": "plan", "attempt": 1}},
		},
	}
	r := do(t, "POST", n.URL(app.StackFed)+"/v1/federation/events:ingest", "", body,
		"X-AgentOS-Peer-Assertion", peer.assertion(t, n, "usr_remote", core.ScopeEventsIngest))
	expectStatus(t, r, http.StatusOK, "ingest upstream-shaped body")
	if m := r.JSON(t); m["accepted"] != 2.0 || m["rejected"] != 0.0 {
		t.Fatalf("ingest counts: %s", r.Body)
	}
	// A peer object naming another stack is still refused.
	body["peer"].(map[string]any)["stack_id"] = "stk_someone_else"
	r = do(t, "POST", n.URL(app.StackFed)+"/v1/federation/events:ingest", "", body,
		"X-AgentOS-Peer-Assertion", peer.assertion(t, n, "usr_remote", core.ScopeEventsIngest))
	expectStatus(t, r, http.StatusForbidden, "peer.stack_id of another stack")
}

// forwardBody is an upstream-shaped forward to stackID: auth with scopes
// ["runs:forward"] only.
func forwardBody(stackID, principal, idem string) map[string]any {
	return map[string]any{"forward": map[string]any{
		"target_selector": map[string]any{"stack_id": stackID},
		"auth": map[string]any{"tenant_id": app.DemoTenantID, "principal": map[string]any{"principal_id": principal, "principal_type": "user"},
			"scopes": []string{core.ScopeRunsForward}, "policy_context": map[string]any{"data_classification": "internal", "region": "local", "purpose": "product_inference"}},
		"run_request": map[string]any{"agent_id": app.SampleAgentID, "input": map[string]any{"type": "text", "text": "forwarded"},
			"idempotency_key": idem}}}
}

// TestHardening_ForwardWithRunsForwardScopeOnly: issue 14 item 14. A key
// with scopes ["runs:forward"] alone, sending an upstream-shaped auth,
// creates the run (forwarding is run creation on the caller's behalf), and
// the seeded tenant admin key carries runs:forward.
func TestHardening_ForwardWithRunsForwardScopeOnly(t *testing.T) {
	n := MustStartNode(t)
	a, f := n.URL(app.StackA), n.URL(app.StackFed)
	r := do(t, "POST", a+"/v1/admin/tenants/tnt_demo/tokens", n.creds.PlatformAdmin.APIKey, map[string]any{"token_create": map[string]any{
		"principal_id": "svc_forwarder", "principal_type": "service", "roles": []string{}, "scopes": []string{core.ScopeRunsForward}}})
	expectStatus(t, r, http.StatusCreated, "issue runs:forward key")
	fwdKey := r.JSON(t)["secret"].(string)

	r = do(t, "POST", f+"/v1/federation/runs:forward", fwdKey, forwardBody(n.StackID(), "svc_forwarder", "idem_fwd_scope"))
	expectStatus(t, r, http.StatusOK, "forward with runs:forward only")
	fw := r.JSON(t)["forwarded"].(map[string]any)
	runID := fw["remote_run_id"].(string)
	if fw["remote_stack_id"] != n.StackID() || runID == "" {
		t.Fatalf("forwarded: %v", fw)
	}
	run := testkit.WaitRun(t, a, n.creds.TenantAdmin.APIKey, runID, 10*time.Second)
	if run["status"] != core.RunCompleted {
		t.Fatalf("forwarded run: %v", run)
	}
	// The key still cannot create runs directly: the implied runs:create
	// is for forwarding only.
	r = do(t, "POST", a+"/v1/agents/"+app.SampleAgentID+"/runs", fwdKey, map[string]any{
		"input": map[string]any{"type": "text", "text": "direct"}, "idempotency_key": "idem_direct"})
	expectStatus(t, r, http.StatusForbidden, "direct create with runs:forward only")

	// The seeded tenant admin key carries runs:forward.
	toks, err := n.Store().ListTokens(t.Context(), app.DemoTenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range toks {
		if k.PrincipalID == app.TenantAdminID && !strings.Contains(strings.Join(k.Scopes, " "), core.ScopeRunsForward) {
			t.Fatalf("seeded tenant admin key lacks runs:forward: %v", k.Scopes)
		}
	}
	r = do(t, "POST", f+"/v1/federation/runs:forward", n.creds.TenantAdmin.APIKey, forwardBody(n.StackID(), app.TenantAdminID, "idem_fwd_admin"))
	expectStatus(t, r, http.StatusOK, "forward with the seeded tenant admin key")
}

// TestHardening_ForwardedRunRecordsOrigin: issue 14 item 15 (and 14 on the
// receiving side). A run a peer forwards here, under an assertion that
// carries runs:forward alone, is created and records the peer's stack_id
// as its origin; a local run has none.
func TestHardening_ForwardedRunRecordsOrigin(t *testing.T) {
	n := MustStartNode(t)
	peer := registerFakePeer(t, n, "stk_origin_peer")
	r := do(t, "POST", n.URL(app.StackFed)+"/v1/federation/runs:forward", "", forwardBody(n.StackID(), "usr_remote", "idem_origin"),
		"X-AgentOS-Peer-Assertion", peer.assertion(t, n, "usr_remote", core.ScopeRunsForward))
	expectStatus(t, r, http.StatusOK, "peer forward")
	runID := r.JSON(t)["forwarded"].(map[string]any)["remote_run_id"].(string)
	run := do(t, "GET", n.URL(app.StackA)+"/v1/runs/"+runID, n.creds.TenantAdmin.APIKey, nil).JSON(t)["run"].(map[string]any)
	if run["origin"] != peer.stackID {
		t.Fatalf("forwarded run origin %v, want %s", run["origin"], peer.stackID)
	}
	local := do(t, "POST", n.URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", n.creds.TenantAdmin.APIKey, map[string]any{
		"input": map[string]any{"type": "text", "text": "local"}, "idempotency_key": "idem_local"})
	expectStatus(t, local, http.StatusCreated, "local run")
	if o, ok := local.JSON(t)["run"].(map[string]any)["origin"]; ok {
		t.Fatalf("a local run has origin %v", o)
	}
}

// TestHardening_PeerBuildTimestampIsDateTime: issue 14 item 16 on a live
// node started without linker flags (as `go test` builds it): peer info's
// build.timestamp is a date-time and git_sha is never empty.
func TestHardening_PeerBuildTimestampIsDateTime(t *testing.T) {
	n := MustStartNode(t)
	r := do(t, "GET", n.URL(app.StackFed)+"/v1/federation/peer", n.creds.TenantAdmin.APIKey, nil)
	expectStatus(t, r, http.StatusOK, "peer info")
	build := r.JSON(t)["peer"].(map[string]any)["build"].(map[string]any)
	ts, _ := build["timestamp"].(string)
	if _, err := time.Parse(time.RFC3339, ts); err != nil {
		t.Fatalf("build.timestamp %q is not a date-time: %v", ts, err)
	}
	if sha, _ := build["git_sha"].(string); sha == "" {
		t.Fatalf("build: %v", build)
	}
}

// TestHardening_EdgeErrorsAreJSON: issue 14, "also". Headers over the
// limit answer 431 with the contract's error object (not net/http's plain
// text), and a console file that does not exist is the JSON 404.
func TestHardening_EdgeErrorsAreJSON(t *testing.T) {
	n := MustStartNode(t)
	for _, name := range []string{app.StackA, app.StackB, app.StackFed} {
		r := do(t, "GET", n.URL(name)+"/healthz", "", nil, "X-Padding", strings.Repeat("x", 100<<10))
		expectStatus(t, r, http.StatusRequestHeaderFieldsTooLarge, name+" oversized headers")
		if r.ErrorCode(t) != "invalid_request" || r.JSON(t)["correlation_id"] == "" || r.Header.Get("X-Correlation-Id") == "" {
			t.Fatalf("%s 431: %v %s", name, r.Header, r.Body)
		}
		expectStatus(t, do(t, "GET", n.URL(name)+"/healthz", "", nil, "X-Padding", strings.Repeat("x", 16<<10)), http.StatusOK, name+" large headers under the limit")
	}
	for _, p := range []string{"/console/nope.js", "/console/../../etc/passwd", "/console/static/"} {
		r := do(t, "GET", n.URL(app.StackA)+p, "", nil)
		expectStatus(t, r, http.StatusNotFound, p)
		if r.ErrorCode(t) != "not_found" || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("%s: %v %s", p, r.Header, r.Body)
		}
	}
	r := do(t, "GET", n.URL(app.StackA)+"/console/", "", nil)
	expectStatus(t, r, http.StatusOK, "console page")
	if !strings.Contains(string(r.Body), "<html") {
		t.Fatalf("console page: %.200s", r.Body)
	}
}
