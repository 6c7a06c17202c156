package app_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store/postgres/pgtest"
	"github.com/jackc/pgx/v5"
)

// startStaleProneCluster starts n nodes on one PostgreSQL schema whose
// caches would keep an object for a minute: whatever a node sees of
// another node's write within the test came through the change feed.
func startStaleProneCluster(t *testing.T, n int) ([]*testNode, string) {
	t.Helper()
	url := pgtest.URL(t)
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = MustStartNode(t, func(c *app.Config) {
			c.Store, c.RunLease, c.Workers, c.CacheTTL = url, 3*time.Second, 8, time.Minute
		})
	}
	return nodes, url
}

func patchTenantOn(t *testing.T, n *testNode, key string, update map[string]any) {
	t.Helper()
	testkit.PatchTenant(t, n.URL(app.StackA), key, app.DemoTenantID, update)
}

func chatOn(t *testing.T, n *testNode, key string) response {
	t.Helper()
	return do(t, "POST", n.URL(app.StackB)+"/v1/chat/completions", key,
		map[string]any{"model": "tier:fast", "messages": []any{map[string]any{"role": "user", "content": "hi"}}})
}

// Issue 11: a write on node A is in force on node B for B's next request,
// although B's caches would keep the old object for a minute.
func TestCluster_WritesOnOneNodeSeenByTheNextRequestOnAnother(t *testing.T) {
	ns, _ := startStaleProneCluster(t, 2)
	a, b := ns[0], ns[1]
	admin := a.creds.PlatformAdmin.APIKey

	t.Run("key revoked", func(t *testing.T) {
		r := do(t, "POST", a.URL(app.StackA)+"/v1/admin/tenants/"+app.DemoTenantID+"/tokens", admin, map[string]any{
			"token_create": map[string]any{"principal_id": "usr_cluster", "principal_type": "user", "scopes": []string{"agents:read"}, "roles": []string{"tenant_user"}}})
		expectStatus(t, r, 201, "issue token on A")
		body := r.JSON(t)
		secret, _ := body["secret"].(string)
		tok, _ := body["token"].(map[string]any)
		expectStatus(t, do(t, "GET", b.URL(app.StackA)+"/v1/agents", secret, nil), 200, "A's new key on B")
		expectStatus(t, do(t, "DELETE", a.URL(app.StackA)+"/v1/admin/tenants/"+app.DemoTenantID+"/tokens/"+tok["token_id"].(string), admin, nil), 200, "revoke on A")
		expectStatus(t, do(t, "GET", b.URL(app.StackA)+"/v1/agents", secret, nil), 401, "revoked key, next request on B")
	})

	t.Run("entitlement withdrawn and granted", func(t *testing.T) {
		all := append([]string{}, app.BuiltinToolIDs...)
		var without []string
		for _, id := range all {
			if id != app.SampleToolID {
				without = append(without, id)
			}
		}
		if !runCallsTool(t, b) { // fills B's tenant cache
			t.Fatal("the sample agent did not call tool.echo on B while entitled")
		}
		for i := 0; i < 3; i++ {
			patchTenantOn(t, a, admin, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": without}})
			if runCallsTool(t, b) {
				t.Fatalf("round %d: a run on B right after the withdrawal on A still called tool.echo", i)
			}
			patchTenantOn(t, a, admin, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": all}})
			if !runCallsTool(t, b) {
				t.Fatalf("round %d: a run on B right after the grant on A lacked tool.echo", i)
			}
		}
	})

	t.Run("model quota cut and raised", func(t *testing.T) {
		key := a.creds.TenantAdmin.APIKey
		patchTenantOn(t, a, admin, map[string]any{"quotas": map[string]any{"models": map[string]any{"max_requests_per_minute": 1}}})
		expectStatus(t, chatOn(t, b, key), 200, "first call on B at 1/min")
		if r := chatOn(t, b, key); r.Status != 429 {
			t.Fatalf("second call on B at 1/min: %d %s", r.Status, r.Body)
		}
		patchTenantOn(t, a, admin, map[string]any{"quotas": map[string]any{"models": map[string]any{"max_requests_per_minute": 100000}}})
		expectStatus(t, chatOn(t, b, key), 200, "call on B right after the raise on A")
	})

	t.Run("agent disabled", func(t *testing.T) {
		key := a.creds.TenantAdmin.APIKey
		create := func(n *testNode) response {
			return do(t, "POST", n.URL(app.StackA)+"/v1/agents/agt_flip/runs", key, map[string]any{
				"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": fmt.Sprintf("k-%d", time.Now().UnixNano())})
		}
		put := func(status string) {
			r := do(t, "PUT", a.URL(app.StackA)+"/v1/agents/agt_flip", key, map[string]any{"agent": map[string]any{
				"name": "flip", "model_ref": "tier:fast", "instructions": "x", "status": status}})
			if r.Status != 200 && r.Status != 201 {
				t.Fatalf("put agent %s on A: %d %s", status, r.Status, r.Body)
			}
		}
		put("active")
		expectStatus(t, create(b), 201, "run of the active agent on B")
		put("disabled")
		expectStatus(t, create(b), 409, "run on B right after the agent was disabled on A")
		put("active")
		expectStatus(t, create(b), 201, "run on B right after the agent was enabled again on A")
	})

	t.Run("tenant disabled", func(t *testing.T) {
		key := a.creds.TenantAdmin.APIKey
		expectStatus(t, chatOn(t, b, key), 200, "model call on B")
		patchTenantOn(t, a, admin, map[string]any{"status": "disabled"})
		if r := chatOn(t, b, key); r.Status != 403 {
			t.Fatalf("model call on B right after the tenant was disabled on A: %d %s", r.Status, r.Body)
		}
		r := do(t, "POST", b.URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", key, map[string]any{
			"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": "disabled-1"})
		if r.Status != 403 {
			t.Fatalf("run create on B right after the tenant was disabled on A: %d %s", r.Status, r.Body)
		}
		patchTenantOn(t, a, admin, map[string]any{"status": "active"})
		expectStatus(t, chatOn(t, b, key), 200, "model call on B right after the tenant was enabled again")
	})
}

// Issue 11, adversarial: the LISTEN connection of the change feed is cut
// (its backend terminated) and a change is made while it is away; the
// notice is lost, yet once the listener is back the change is in force,
// because a reconnected node drops every cached object.
func TestCluster_ChangeMissedWhileListenerCutIsHonouredAfterReconnect(t *testing.T) {
	ns, storeURL := startStaleProneCluster(t, 2)
	a, b := ns[0], ns[1]
	admin := a.creds.PlatformAdmin.APIKey
	all := append([]string{}, app.BuiltinToolIDs...)
	var without []string
	for _, id := range all {
		if id != app.SampleToolID {
			without = append(without, id)
		}
	}
	if !runCallsTool(t, b) { // B caches the tenant, entitled
		t.Fatal("the sample agent did not call tool.echo on B while entitled")
	}
	u, err := url.Parse(storeURL)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgtest.ServerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var cut int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		`LISTEN "agentos_changes.`+schema+`"`).Scan(&cut); err != nil {
		t.Fatal(err)
	}
	if cut != 2 {
		t.Fatalf("terminated %d change listeners, want the 2 nodes'", cut)
	}
	testkit.WaitFor(t, "B to notice its listener is gone", 10*time.Second, func() bool { return !b.ChangesListening() })
	patchTenantOn(t, a, admin, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": without}})
	testkit.WaitFor(t, "B's listener to be back", 10*time.Second, b.ChangesListening)
	if runCallsTool(t, b) {
		t.Fatal("after the reconnect, a run on B still called tool.echo withdrawn while its listener was cut")
	}
	// And the feed works again after the reconnect.
	patchTenantOn(t, a, admin, map[string]any{"entitlements": map[string]any{"tool_ids_allowed": all}})
	if !runCallsTool(t, b) {
		t.Fatal("a grant on A after the reconnect was not seen by B's next run")
	}
}
