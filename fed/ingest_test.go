package fed_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/fed"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store"
	"github.com/prometheus/client_golang/prometheus"
)

func ingestEvents(tenant, runID string, n int) []core.Event {
	out := make([]core.Event, n)
	for i := range out {
		typ := core.EventStepStarted
		if i == 0 {
			typ = core.EventRunCreated
		} else if i == n-1 {
			typ = core.EventRunCompleted
		}
		out[i] = core.Event{EventID: core.NewID(core.PrefixEvent), Sequence: int64(i + 1), Time: core.Now(), Type: typ,
			TenantID: tenant, AgentID: "agt_sample_echo_v1", RunID: runID, Payload: json.RawMessage(`{"status":"queued"}`)}
	}
	return out
}

func TestIngest_DedupeTrustAndBothForms(t *testing.T) {
	a, b := pair(t, nil)
	priv := readNodeKey(t, a.dir)
	assert := func(tenant string) string {
		return sign(t, priv, assertionClaims{iss: "stk_a", aud: "stk_b", sub: "svc_stk_a", tenant: tenant,
			scopes: []string{core.ScopeEventsIngest, core.ScopeRunsRead}, exp: time.Now().Add(time.Minute), jti: core.NewID("jti")})
	}
	runID := core.NewID(core.PrefixRun)
	evs := ingestEvents(tenantDemo, runID, 5)
	foreign := ingestEvents(tenantOther, core.NewID(core.PrefixRun), 2)

	// Form 1: peer info + envelopes, plus two events of an untrusted tenant
	// and one malformed event.
	items := []any{}
	for _, ev := range evs {
		items = append(items, core.EventEnvelope{Event: ev})
	}
	for _, ev := range foreign {
		items = append(items, ev)
	}
	items = append(items, map[string]any{"event": map[string]any{"event_id": "evt_x"}})
	body := map[string]any{"peer": map[string]any{"stack_id": "stk_a"}, "events": items, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	r := b.call(http.MethodPost, "/v1/federation/events:ingest", "", body, "X-AgentOS-Peer-Assertion", assert(tenantDemo))
	if r.status != 200 || r.body["accepted"].(float64) != 5 || r.body["rejected"].(float64) != 3 {
		t.Fatalf("first ingest: %d %s", r.status, r.raw)
	}

	// Form 2: bare events with ingest options; the same events again.
	bare := []any{}
	for _, ev := range evs {
		bare = append(bare, ev)
	}
	body = map[string]any{"events": bare, "ingest": map[string]any{"source_stack_id": "stk_a", "dedupe": map[string]any{"mode": "event_id"}}}
	r = b.call(http.MethodPost, "/v1/federation/events:ingest", "", body, "X-AgentOS-Peer-Assertion", assert(tenantDemo))
	if r.status != 200 || r.body["accepted"].(float64) != 5 || r.body["rejected"].(float64) != 0 {
		t.Fatalf("second ingest: %d %s", r.status, r.raw)
	}

	// Form 1 once more, as A's own client sends it: all duplicates.
	svc := core.Auth{TenantID: tenantDemo, Principal: core.Principal{PrincipalID: "svc_stk_a", PrincipalType: "service"},
		Scopes: []string{core.ScopeEventsIngest}}
	if acc, rej, err := a.node.PushEvents(context.Background(), svc, "stk_b", evs); err != nil || acc != 5 || rej != 0 {
		t.Fatalf("PushEvents: %d %d %v", acc, rej, err)
	}
	if _, _, err := a.node.PushEvents(context.Background(), svc, "stk_nope", evs); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("PushEvents to unknown peer: %v", err)
	}

	stored, err := b.store.ListIngestedEvents(context.Background(), tenantDemo, runID, 0)
	if err != nil || len(stored) != 5 {
		t.Fatalf("stored %d events (%v), want 5 once each", len(stored), err)
	}
	if got, _ := b.store.ListIngestedEvents(context.Background(), tenantOther, foreign[0].RunID, 0); len(got) != 0 {
		t.Fatalf("untrusted tenant's events stored: %d", len(got))
	}

	// A later reader on B replays them from the federation events endpoint.
	resp := b.streamWith(runID, "X-AgentOS-Peer-Assertion", assert(tenantDemo))
	got, _ := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	assertGapless(t, got, 0)

	recs, _ := b.store.ListAudit(context.Background(), tenantDemo, core.AuditFilter{Action: "federation.events.ingest"})
	if len(recs) != 3 {
		t.Fatalf("ingest audit records %d, want 3 (one per request)", len(recs))
	}

	tests := []struct {
		name   string
		key    string
		hdr    []string
		body   any
		status int
	}{
		{"API key instead of assertion", keyAdmin, nil, map[string]any{"events": bare}, 401},
		{"untrusted tenant assertion", "", []string{"X-AgentOS-Peer-Assertion", assert(tenantOther)}, map[string]any{"events": bare}, 403},
		{"peer claims another stack", "", []string{"X-AgentOS-Peer-Assertion", assert(tenantDemo)},
			map[string]any{"peer": map[string]any{"stack_id": "stk_zz"}, "events": bare}, 403},
		{"unknown dedupe mode", "", []string{"X-AgentOS-Peer-Assertion", assert(tenantDemo)},
			map[string]any{"events": bare, "ingest": map[string]any{"dedupe": map[string]any{"mode": "hash"}}}, 400},
		{"events missing", "", []string{"X-AgentOS-Peer-Assertion", assert(tenantDemo)}, map[string]any{}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := b.call(http.MethodPost, "/v1/federation/events:ingest", tc.key, tc.body, tc.hdr...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
		})
	}
}

// streamWith opens an events stream with arbitrary auth headers.
func (tn *testNode) streamWith(runID string, hdr ...string) *http.Response {
	tn.t.Helper()
	resp := testkit.OpenStream(tn.t, context.Background(), tn.client, tn.url+"/v1/federation/runs/"+runID+"/events", "", hdr...)
	if resp.StatusCode != 200 {
		tn.t.Fatalf("open stream: %d", resp.StatusCode)
	}
	return resp
}

func TestForward_WithMTLS(t *testing.T) {
	pki := t.TempDir()
	if err := fed.GenerateDevPKI(pki, []string{"localhost", "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	cert, key, ca := filepath.Join(pki, fed.DevNodeCertFile), filepath.Join(pki, fed.DevNodeKeyFile), filepath.Join(pki, fed.DevCACertFile)
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("node key mode %v", fi.Mode().Perm())
	}
	srvTLS := func() *tlsPair {
		s, err := fed.ServerTLSConfig(cert, key, ca)
		if err != nil {
			t.Fatal(err)
		}
		c, err := fed.ClientTLSConfig(cert, key, ca)
		if err != nil {
			t.Fatal(err)
		}
		return &tlsPair{s, c}
	}
	pa, pb := srvTLS(), srvTLS()
	bRuns := newMemRuns(2, 2*time.Millisecond)
	a := startNode(t, nodeOpts{stackID: "stk_a", serverTLS: pa.server, clientTLS: pa.client})
	b := startNode(t, nodeOpts{stackID: "stk_b", runs: bRuns, serverTLS: pb.server, clientTLS: pb.client})
	if !strings.HasPrefix(b.url, "https://") {
		t.Fatalf("B is not on TLS: %s", b.url)
	}
	a.trust(b, b.url, tenantDemo)
	b.trust(a, a.url, tenantDemo)

	f := forwarded(t, a.call(http.MethodPost, "/v1/federation/runs:forward", keyDemo,
		forwardBody(map[string]any{"stack_id": "stk_b"}, "agt_sample_echo_v1", "idem_mtls", "hello")))
	resp := a.stream(f["remote_run_id"].(string), keyDemo, 0)
	evs, _ := readSSE(t, resp.Body, nil)
	resp.Body.Close()
	assertGapless(t, evs, 0)

	// A client without a certificate does not get through B's listener.
	noCert, err := fed.ClientTLSConfig("", "", ca)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: noCert}}
	if resp, err := c.Get(b.url + "/v1/federation/health"); err == nil {
		resp.Body.Close()
		t.Fatal("B accepted a client without a certificate")
	}
}

type tlsPair struct{ server, client *tls.Config }

func TestTLSConfig_MissingFilesNamed(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope.pem")
	if _, err := fed.ServerTLSConfig(missing, missing, ""); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("server config: %v", err)
	}
	if _, err := fed.ServerTLSConfig("", "", ""); err == nil || !strings.Contains(err.Error(), "certificate file is required") {
		t.Fatalf("server config without files: %v", err)
	}
	if err := fed.GenerateDevPKI(dir, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := fed.ClientTLSConfig(filepath.Join(dir, fed.DevNodeCertFile), "", ""); err == nil || !strings.Contains(err.Error(), "key file is required") {
		t.Fatalf("client config with cert only: %v", err)
	}
	if _, err := fed.ClientTLSConfig("", "", missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("client config with missing CA: %v", err)
	}
	bad := testkit.WriteFile(t, filepath.Join(dir, "bad.pem"), "not pem", 0o600)
	if _, err := fed.ClientTLSConfig("", "", bad); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("client config with bad CA: %v", err)
	}
}

func TestPeersFile_LoadAndErrorsNameTheField(t *testing.T) {
	pub, _ := newKey(t)
	good := fed.EncodePublicKey(pub)
	tests := []struct {
		name, doc, wantErr string
	}{
		{"ok", `{"peers":[{"stack_id":"stk_b","federation_url":"http://127.0.0.1:9","stack_a_url":"http://127.0.0.1:8","public_key":"` + good + `","region":"eu","trusted_tenants":["tnt_demo"]}]}`, ""},
		{"not JSON", `{"peers": [`, "peers file"},
		{"unknown field", `{"peers":[{"stack_id":"stk_b","federation_url":"http://x","public_key":"` + good + `","trusted_tenant":["tnt_demo"]}]}`, "trusted_tenant"},
		{"no peers", `{}`, "field peers is required"},
		{"no stack_id", `{"peers":[{"federation_url":"http://x","public_key":"` + good + `"}]}`, "peers[0].stack_id"},
		{"bad url", `{"peers":[{"stack_id":"stk_b","federation_url":"ftp://x","public_key":"` + good + `"}]}`, "peers[0].federation_url"},
		{"bad key", `{"peers":[{"stack_id":"stk_b","federation_url":"http://x","public_key":"ed25519:AAAA"}]}`, "peers[0].public_key"},
		{"own stack", `{"peers":[{"stack_id":"stk_self","federation_url":"http://x","public_key":"` + good + `"}]}`, "own stack_id"},
		{"duplicate", `{"peers":[{"stack_id":"stk_b","federation_url":"http://x","public_key":"` + good + `"},{"stack_id":"stk_b","federation_url":"http://x","public_key":"` + good + `"}]}`, "peers[1].stack_id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := testkit.WriteFile(t, filepath.Join(dir, "peers.json"), tc.doc, 0o600)
			n := startNode(t, nodeOpts{stackID: "stk_self"})
			err := n.node.LoadPeersFile(context.Background(), path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				p, err := n.store.GetPeer(context.Background(), "stk_b")
				if err != nil || !p.Trusts(tenantDemo) || p.Trusts(tenantOther) || p.Region != "eu" {
					t.Fatalf("loaded peer %+v %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want it to name %q", err, tc.wantErr)
			}
		})
	}
}

func TestPeerRegistry_AdminAPI(t *testing.T) {
	a := startNode(t, nodeOpts{stackID: "stk_a"})
	pub, _ := newKey(t)
	peer := map[string]any{"peer": map[string]any{"stack_id": "stk_c", "federation_url": "http://127.0.0.1:9",
		"public_key": fed.EncodePublicKey(pub), "trusted_tenants": []string{tenantDemo}}}
	tests := []struct {
		name, method, path, key string
		body                    any
		status                  int
	}{
		{"tenant user may not list", http.MethodGet, "/v1/federation/peers", keyDemo, nil, 403},
		{"tenant user may not add", http.MethodPost, "/v1/federation/peers", keyDemo, peer, 403},
		{"admin adds", http.MethodPost, "/v1/federation/peers", keyAdmin, peer, 201},
		{"admin cannot silently replace", http.MethodPost, "/v1/federation/peers", keyAdmin, peer, 409},
		{"bad key is 400", http.MethodPost, "/v1/federation/peers", keyAdmin,
			map[string]any{"peer": map[string]any{"stack_id": "stk_d", "federation_url": "http://x", "public_key": "nope"}}, 400},
		{"admin lists", http.MethodGet, "/v1/federation/peers", keyAdmin, nil, 200},
		{"admin deletes", http.MethodDelete, "/v1/federation/peers/stk_c", keyAdmin, nil, 200},
		{"delete again is 404", http.MethodDelete, "/v1/federation/peers/stk_c", keyAdmin, nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := a.call(tc.method, tc.path, tc.key, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.name == "admin lists" {
				if peers := r.body["peers"].([]any); len(peers) != 1 {
					t.Fatalf("peers: %s", r.raw)
				}
			}
			if tc.name == "bad key is 400" {
				if f := r.body["error"].(map[string]any)["details"].(map[string]any)["field"]; f != "peer.public_key" {
					t.Fatalf("field %v", f)
				}
			}
		})
	}
}

func TestNew_RefusesBadDepsAndBadPeersFile(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "agentos.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bad := testkit.WriteFile(t, filepath.Join(dir, "peers.json"), `{"peers":[{"stack_id":"stk_b","federation_url":"http://x","public_key":"ed25519:AAAA"}]}`, 0o600)
	full := fed.Deps{DataDir: dir, StackID: "stk_a", Peers: st, Forward: st, JTIs: st, Events: st, Tenants: st, Audit: st,
		Runs: newMemRuns(1, 0), Metrics: prometheus.NewRegistry()}
	tests := []struct {
		name    string
		mutate  func(*fed.Deps)
		wantErr string
	}{
		{"no stack id", func(d *fed.Deps) { d.StackID = "" }, "StackID"},
		{"no data dir", func(d *fed.Deps) { d.DataDir = "" }, "DataDir"},
		{"no runs", func(d *fed.Deps) { d.Runs = nil }, "Runs"},
		{"no store ports", func(d *fed.Deps) { d.Forward = nil }, "ports are required"},
		{"bad peers file", func(d *fed.Deps) { d.PeersFile = bad }, "peers[0].public_key"},
		{"missing peers file", func(d *fed.Deps) { d.PeersFile = filepath.Join(dir, "none.json") }, "none.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := full
			d.Metrics = prometheus.NewRegistry()
			tc.mutate(&d)
			if _, err := fed.New(d); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
