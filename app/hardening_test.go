package app_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/rs/zerolog"
)

// Issue 14 item 6: a second node on a data dir in use is refused by the
// store's lock and must leave the running node's node.json alone.
func TestHardening_SecondServeKeepsNodeJSON(t *testing.T) {
	first := MustStartNode(t)
	path := filepath.Join(first.Config.DataDir, "node.json")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("first node's node.json: %v", err)
	}
	cfg := first.Config
	second := app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	err = second.Open(context.Background())
	if err == nil {
		second.Close()
		t.Fatal("a second node opened a data dir in use")
	}
	if !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second open: %v, want the lock refusal", err)
	}
	second.Close()
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the refused second node removed node.json: %v", err)
	}
	if string(after) != string(before) {
		t.Fatalf("node.json changed:\n%s\nwas\n%s", after, before)
	}
	expectStatus(t, do(t, "GET", first.URL(app.StackA)+"/readyz", "", nil), 200, "first node still serves")
	// The owner removes it on its way out.
	first.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the owner left node.json behind: %v", err)
	}
}

// Issue 14 item 7 at the node: an empty agentos.db is refused with one
// line naming the file; --reset moves it aside and starts a new node.
func TestHardening_EmptyDatabaseRefusedByNode(t *testing.T) {
	cfg := testConfig(t)
	db := testkit.WriteFile(t, filepath.Join(cfg.DataDir, "agentos.db"), "", 0o600)
	n := app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	err := n.Open(context.Background())
	n.Close()
	if err == nil || !strings.Contains(err.Error(), db) || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), "--reset") {
		t.Fatalf("open on an empty database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "node.json")); !os.IsNotExist(err) {
		t.Fatalf("a refused node wrote node.json: %v", err)
	}
	cfg.ResetBrokenStore = true
	n = app.NewNode(cfg, app.BuildInfo{Version: "test"}, zerolog.Nop())
	if err := n.Open(context.Background()); err != nil {
		t.Fatalf("open with --reset: %v", err)
	}
	defer n.Close()
	aside, _ := filepath.Glob(db + ".broken-*")
	if len(aside) != 1 {
		t.Fatalf("--reset should keep the refused file aside, found %v", aside)
	}
	expectStatus(t, do(t, "GET", n.URL(app.StackA)+"/readyz", "", nil), 200, "reset node ready")
}

// rawConn opens a TCP connection to a router's host:port.
func rawConn(t *testing.T, base string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readStatus reads the status line of the answer on c within d; 0 when
// the connection was closed without an answer.
func readStatus(t *testing.T, c net.Conn, d time.Duration) (int, error) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// holdAtCap opens n raw connections to base, sends on each what send
// writes (nothing when send is nil), and waits until counted reports it,
// so the caller holds the cap's worth. what names the count in failures.
func holdAtCap(t *testing.T, base string, n int, limit time.Duration, what string, counted func() int64, send func(net.Conn)) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := 1; i <= n; i++ {
		c := rawConn(t, base)
		if send != nil {
			send(c)
		}
		held = append(held, c)
		testkit.WaitFor(t, fmt.Sprintf("%s %d counted", what, i), limit, func() bool { return counted() == int64(i) },
			func() string { return fmt.Sprintf("(%d counted)", counted()) })
	}
	return held
}

// Issue 14 item 4: a body is read only after the credential checks out.
// Clients that announce 1 MiB bodies without a valid key are answered at
// once, having sent a few bytes, and the node's heap does not grow with
// them.
func TestHardening_UnauthenticatedBodyRefusedUnread(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) { c.AuthFailuresPerMinute = 100000 })
	base := n.URL(app.StackA)
	const conns = 200
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	cs := make([]net.Conn, conns)
	for i := range cs {
		cs[i] = rawConn(t, base)
		key := ""
		if i%2 == 1 {
			key = "Authorization: Bearer aos_not_a_real_key\r\n"
		}
		fmt.Fprintf(cs[i], "PUT /v1/memory/ns/k%d HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n{\"value\":\"%s",
			i, key, 1<<20, strings.Repeat("a", 32<<10))
	}
	for i, c := range cs {
		st, err := readStatus(t, c, 5*time.Second)
		if st != 401 {
			t.Fatalf("conn %d: status %d (%v), want 401 before the body is sent", i, st, err)
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Buffering would hold at least conns × 32 KiB = 6.4 MiB (and the
	// announced 200 MiB once sent); refused unread, the heap barely moves.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("heap grew %d bytes for %d refused connections", grew, conns)
	}
}

// Issue 14 item 4: an authenticated client that trickles its body is cut
// at the body read timeout (408, connection closed), and a client that
// trickles its headers at the header timeout.
func TestHardening_SlowBodyIsCutByReadTimeout(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) {
		c.BodyReadTimeout = 500 * time.Millisecond
		c.ReadHeaderTimeout = 500 * time.Millisecond
	})
	base := n.URL(app.StackA)
	key := n.creds.TenantAdmin.APIKey

	c := rawConn(t, base)
	fmt.Fprintf(c, "PUT /v1/memory/ns/slow HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", key)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte every 100 ms: 10 s for the body
		for i := 0; i < 99; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := c.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	st, err := readStatus(t, c, 5*time.Second)
	if st != 408 {
		t.Fatalf("trickled body: status %d (%v), want 408", st, err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("cut after %v, want about the 500 ms body timeout", took)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection left open after the body timeout")
	}

	h := rawConn(t, base)
	fmt.Fprintf(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // headers never finish
	h.SetReadDeadline(time.Now().Add(5 * time.Second))
	start = time.Now()
	_, err = io.ReadAll(h)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("slow headers not cut within 5 s")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("slow headers cut after %v, want about 500 ms", took)
	}

	// A request whose body arrives in time is answered normally, even
	// when its handling outlasts the body timeout's start.
	r := do(t, "PUT", base+"/v1/memory/ns/fast", key, map[string]any{"value": "v"})
	expectStatus(t, r, 200, "prompt body")
}

// Issue 14 item 4: the node-wide body budget refuses a body that does not
// fit, unread, with 429 — so many slow authenticated uploads cannot hold
// more than the budget either.
func TestHardening_BodyBudgetBoundsBufferedBodies(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) {
		c.BodyLimit = 64 << 10
		c.BodyMemory = 4 * (64 << 10)
		c.BodyReadTimeout = 10 * time.Second
	})
	base := n.URL(app.StackA)
	key := n.creds.TenantAdmin.APIKey
	upload := func(c net.Conn) {
		fmt.Fprintf(c, "PUT /v1/memory/ns/k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", key, 64<<10)
	}
	// Each held upload counts once the server reserved its body and is
	// reading it.
	held := holdAtCap(t, base, 4, 20*time.Second, "64 KiB body reserved", func() int64 { return n.BodyBytesBuffered() / (64 << 10) }, upload)
	start := time.Now()
	fifth := rawConn(t, base)
	upload(fifth)
	if st, err := readStatus(t, fifth, 10*time.Second); st != 429 {
		t.Fatalf("a fifth 64 KiB body over a 256 KiB budget: status %d (%v), want 429", st, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the refusal took %v: it must not wait for the body", took)
	}
	for _, c := range held {
		c.Close()
	}
	// Released again: a normal write goes through.
	testkit.WaitFor(t, "the body budget released", 10*time.Second, func() bool {
		return do(t, "PUT", base+"/v1/memory/ns/ok", key, map[string]any{"value": "v"}).Status == 200
	})
}

// patchTenant applies a tenant_update as the platform admin.
func patchTenant(t *testing.T, n *testNode, update map[string]any) {
	t.Helper()
	testkit.PatchTenant(t, n.URL(app.StackA), n.creds.PlatformAdmin.APIKey, app.DemoTenantID, update)
}

// runCallsTool runs the sample agent (whose one tool is tool.echo) and
// reports whether the run called it.
func runCallsTool(t *testing.T, n *testNode) bool {
	t.Helper()
	a := n.URL(app.StackA)
	key := n.creds.TenantAdmin.APIKey
	r := do(t, "POST", a+"/v1/agents/"+app.SampleAgentID+"/runs", key, map[string]any{
		"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": fmt.Sprintf("k-%d", time.Now().UnixNano())})
	if r.Status != 201 && r.Status != 200 {
		t.Fatalf("create run: %d %s", r.Status, r.Body)
	}
	id := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	testkit.WaitRun(t, a, key, id, 10*time.Second, "completed", "failed")
	evs := do(t, "GET", a+"/v1/runs/"+id+"/events", key, nil, "Accept", "application/json").JSON(t)["events"].([]any)
	for _, e := range evs {
		if e.(map[string]any)["type"] == "agentos.tool.call.requested" {
			return true
		}
	}
	return false
}

// Issue 14 item 10: a run created right after an entitlement change sees
// it — the grant's tool is there, the withdrawn one is gone — although
// Stack A caches tenants.
func TestHardening_EntitlementGrantSeenByNextRun(t *testing.T) {
	n := MustStartNode(t)
	all := append([]string{}, app.BuiltinToolIDs...)
	var without []string
	for _, id := range all {
		if id != app.SampleToolID {
			without = append(without, id)
		}
	}
	if !runCallsTool(t, n) { // also fills the tenant cache
		t.Fatal("the sample agent did not call tool.echo while entitled")
	}
	for i := 0; i < 3; i++ {
		patchTenant(t, n, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": without}})
		if runCallsTool(t, n) {
			t.Fatalf("round %d: a run right after the withdrawal still called tool.echo", i)
		}
		patchTenant(t, n, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": all}})
		if !runCallsTool(t, n) {
			t.Fatalf("round %d: a run right after the grant lacked tool.echo", i)
		}
	}
}

func chat(t *testing.T, n *testNode) response {
	t.Helper()
	return do(t, "POST", n.URL(app.StackB)+"/v1/chat/completions", n.creds.TenantAdmin.APIKey,
		map[string]any{"model": "tier:fast", "messages": []any{map[string]any{"role": "user", "content": "hi"}}})
}

// Issue 14 item 10: a model call right after a quota raise is allowed,
// and right after a cut is refused, although Stack B caches tenants.
func TestHardening_QuotaRaiseSeenByNextCall(t *testing.T) {
	n := MustStartNode(t)
	patchTenant(t, n, map[string]any{"quotas": map[string]any{"models": map[string]any{"max_requests_per_minute": 1}}})
	expectStatus(t, chat(t, n), 200, "first call")
	if r := chat(t, n); r.Status != 429 {
		t.Fatalf("second call at 1/min: %d %s", r.Status, r.Body)
	}
	patchTenant(t, n, map[string]any{"quotas": map[string]any{"models": map[string]any{"max_requests_per_minute": 1000}}})
	expectStatus(t, chat(t, n), 200, "call right after the raise")
	patchTenant(t, n, map[string]any{"status": "disabled"})
	if r := chat(t, n); r.Status != 403 {
		t.Fatalf("call right after disabling the tenant: %d %s", r.Status, r.Body)
	}
}

// Issue 14 item 10: a revoked key fails on the very next request.
func TestHardening_RevokedTokenRefusedAtOnce(t *testing.T) {
	n := MustStartNode(t)
	a := n.URL(app.StackA)
	r := do(t, "POST", a+"/v1/admin/tenants/"+app.DemoTenantID+"/tokens", n.creds.PlatformAdmin.APIKey, map[string]any{
		"token_create": map[string]any{"principal_id": "usr_short", "principal_type": "user", "scopes": []string{"agents:read"}, "roles": []string{"tenant_user"}}})
	expectStatus(t, r, 201, "issue token")
	body := r.JSON(t)
	secret, _ := body["secret"].(string)
	tok, _ := body["token"].(map[string]any)
	if secret == "" || tok == nil {
		t.Fatalf("issue answer: %s", r.Body)
	}
	expectStatus(t, do(t, "GET", a+"/v1/agents", secret, nil), 200, "new key works")
	expectStatus(t, do(t, "DELETE", a+"/v1/admin/tenants/"+app.DemoTenantID+"/tokens/"+tok["token_id"].(string), n.creds.PlatformAdmin.APIKey, nil), 200, "revoke")
	expectStatus(t, do(t, "GET", a+"/v1/agents", secret, nil), 401, "revoked key, next request")
}

// Issue 14 item 5 at the node: with Stack A's event streams at the node's
// cap, the next stream answers 429 with Retry-After while /healthz and
// /readyz keep answering 200.
func TestHardening_StreamCapKeepsProbesAnswering(t *testing.T) {
	n := MustStartNode(t, func(c *app.Config) { c.MaxEventStreams, c.MaxEventStreamsPerTenant = 3, 3 })
	a := n.URL(app.StackA)
	key := n.creds.TenantAdmin.APIKey
	hook := testkit.StartHeldWebhook(t)
	if r := do(t, "PUT", a+"/v1/tools/tool.block", key, map[string]any{"tool": map[string]any{"name": "block", "kind": "http", "config": map[string]any{"url": hook.URL}}}); r.Status != 200 && r.Status != 201 {
		t.Fatalf("put tool: %d %s", r.Status, r.Body)
	}
	patchTenant(t, n, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": append([]string{"tool.block"}, app.BuiltinToolIDs...)}})
	r := do(t, "PUT", a+"/v1/agents/agt_block", key, map[string]any{"agent": map[string]any{"name": "block", "model_ref": "tier:fast",
		"instructions": "x", "tool_ids": []string{"tool.block"}}})
	if r.Status != 201 && r.Status != 200 {
		t.Fatalf("put agent: %d %s", r.Status, r.Body)
	}
	r = do(t, "POST", a+"/v1/agents/agt_block/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "x"}, "idempotency_key": "k1"})
	expectStatus(t, r, 201, "create run")
	runID := r.JSON(t)["run"].(map[string]any)["run_id"].(string)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := 0; i < 3; i++ {
		if resp := testkit.OpenStream(t, ctx, nil, a+"/v1/runs/"+runID+"/events", key); resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d", i, resp.StatusCode)
		}
	}
	resp := testkit.OpenStream(t, ctx, nil, a+"/v1/runs/"+runID+"/events", key)
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(raw), `"event_streams"`) {
		t.Fatalf("stream over the cap: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
	expectStatus(t, do(t, "GET", a+"/healthz", "", nil), 200, "healthz at the stream cap")
	expectStatus(t, do(t, "GET", a+"/readyz", "", nil), 200, "readyz at the stream cap")
}
