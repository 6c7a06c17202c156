package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/store/postgres/pgtest"
)

// startClusterNodes starts n nodes on one fresh PostgreSQL schema.
func startClusterNodes(t *testing.T, n int, lease time.Duration) []*testNode {
	t.Helper()
	url := pgtest.URL(t)
	nodes := make([]*testNode, n)
	for i := range nodes {
		nodes[i] = MustStartNode(t, func(c *app.Config) { c.Store = url; c.RunLease = lease; c.Workers = 8 })
	}
	return nodes
}

// sseEvents reads a run's SSE stream until the terminal event and returns
// the events' sequences and types.
func sseEvents(t *testing.T, url, key string) ([]int64, []string) {
	t.Helper()
	return testkit.Sequences(testkit.Stream(t, nil, url, key, 30*time.Second, nil))
}

func checkGapless(t *testing.T, runID string, seqs []int64, types []string) {
	t.Helper()
	terminal := 0
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("run %s: event %d has sequence %d (gap or duplicate): %v", runID, i, s, seqs)
		}
		switch types[i] {
		case "agentos.run.completed", "agentos.run.failed", "agentos.run.canceled":
			terminal++
			if i != len(seqs)-1 {
				t.Fatalf("run %s: terminal event %s is not last: %v", runID, types[i], types)
			}
		}
	}
	if terminal != 1 {
		t.Fatalf("run %s: %d terminal events, want 1: %v", runID, terminal, types)
	}
}

func TestCluster_OneInstallationTwoNodeIDs(t *testing.T) {
	ns := startClusterNodes(t, 2, 2*time.Second)
	a, b := ns[0], ns[1]
	if a.StackID() != b.StackID() {
		t.Fatalf("stack ids differ: %s vs %s", a.StackID(), b.StackID())
	}
	if a.NodeID() == "" || a.NodeID() == b.NodeID() {
		t.Fatalf("node ids must be set and differ: %q vs %q", a.NodeID(), b.NodeID())
	}
	for _, n := range ns {
		h := do(t, "GET", n.URL(app.StackA)+"/v1/health", "", nil).JSON(t)
		if h["node_id"] != n.NodeID() {
			t.Fatalf("health node_id %v, want %s", h["node_id"], n.NodeID())
		}
		nf, err := app.ReadNodeFile(n.Config.DataDir)
		if err != nil || nf.NodeID != n.NodeID() || nf.StackID != n.StackID() || !nf.Cluster {
			t.Fatalf("node.json %+v (%v)", nf, err)
		}
	}
	// One federation identity: both nodes present the same public key.
	pa := do(t, "GET", a.URL(app.StackFed)+"/v1/federation/peer", a.creds.PlatformAdmin.APIKey, nil).JSON(t)["peer"].(map[string]any)
	pb := do(t, "GET", b.URL(app.StackFed)+"/v1/federation/peer", b.creds.PlatformAdmin.APIKey, nil).JSON(t)["peer"].(map[string]any)
	ka, _ := pa["public_key"].(string)
	if ka == "" || ka != pb["public_key"] || pa["stack_id"] != pb["stack_id"] {
		t.Fatalf("federation identities differ: %v vs %v", pa, pb)
	}
	if string(a.Secret()) != string(b.Secret()) {
		t.Fatal("the nodes sign JWTs with different secrets")
	}
	// A key made on one node works on the other (shared tenants and keys).
	r := do(t, "GET", b.URL(app.StackA)+"/v1/agents", a.creds.TenantAdmin.APIKey, nil)
	expectStatus(t, r, 200, "node A's key on node B")
	// Both nodes are live in the registry.
	live, err := a.LiveNodes(context.Background())
	if err != nil || len(live) != 2 {
		t.Fatalf("live nodes %+v (%v), want 2", live, err)
	}
}

// The console's health screen lists every live node of the installation,
// marking the one that answered.
func TestCluster_ConsoleListsEveryNode(t *testing.T) {
	ns := startClusterNodes(t, 2, 2*time.Second)
	for _, n := range ns {
		ov := do(t, "GET", n.URL(app.StackA)+"/v1/console/overview", n.creds.TenantAdmin.APIKey, nil).JSON(t)
		node := ov["node"].(map[string]any)
		if node["node_id"] != n.NodeID() {
			t.Fatalf("overview from %s names node %v", n.NodeID(), node["node_id"])
		}
		listed := map[string]bool{}
		for _, x := range node["nodes"].([]any) {
			m := x.(map[string]any)
			id := m["node_id"].(string)
			listed[id] = true
			if self := m["self"].(bool); self != (id == n.NodeID()) {
				t.Fatalf("node %s listed with self=%v by %s", id, self, n.NodeID())
			}
			if m["stack_a_url"] == "" || m["last_seen"] == "" {
				t.Fatalf("node entry without url or last_seen: %v", m)
			}
		}
		if len(listed) != 2 || !listed[ns[0].NodeID()] || !listed[ns[1].NodeID()] {
			t.Fatalf("overview from %s lists %v, want both nodes", n.NodeID(), listed)
		}
	}
}

func TestCluster_StreamOnOtherNodeAndCancelAcrossNodes(t *testing.T) {
	slow := testkit.StartHeldWebhook(t)
	ns := startClusterNodes(t, 3, 2*time.Second)
	a, b, c := ns[0], ns[1], ns[2]
	key, admin := a.creds.TenantAdmin.APIKey, a.creds.PlatformAdmin.APIKey

	// A webhook tool to a slow server, for the cancel below.
	testkit.PatchTenant(t, a.URL(app.StackA), admin, app.DemoTenantID, map[string]any{
		"entitlements": map[string]any{"tool_ids_allowed": []string{"tool.echo", "tool.slow"}}})
	testkit.PutWebhookAgent(t, a.URL(app.StackA), key, "tool.slow", "agt_slow", slow.URL)
	// A run created on A, streamed from B: every event, gapless, live.
	r := do(t, "POST", a.URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", key,
		map[string]any{"input": map[string]any{"type": "text", "text": "hello"}, "idempotency_key": "k-hello"})
	expectStatus(t, r, 201, "create on A")
	runID := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	seqs, types := sseEvents(t, b.URL(app.StackA)+"/v1/runs/"+runID+"/events", key)
	checkGapless(t, runID, seqs, types)
	if types[len(types)-1] != "agentos.run.completed" {
		t.Fatalf("run ended %s", types[len(types)-1])
	}

	// A slow webhook call, canceled through a node that does not run it.
	r = do(t, "POST", a.URL(app.StackA)+"/v1/agents/agt_slow/runs", key, map[string]any{"input": map[string]any{"type": "text", "text": "wait"}, "idempotency_key": "k-wait"})
	expectStatus(t, r, 201, "create slow run on A")
	slowID := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	select {
	case <-slow.Hit:
	case <-time.After(20 * time.Second):
		t.Fatalf("the slow tool was never called: %s", do(t, "GET", a.URL(app.StackA)+"/v1/runs/"+slowID+"/events", key, nil, "Accept", "application/json").Body)
	}
	// The stream is opened here and read off the test's goroutine, which
	// alone may fail the test.
	resp := testkit.OpenStream(t, context.Background(), nil, b.URL(app.StackA)+"/v1/runs/"+slowID+"/events", key)
	if resp.StatusCode != 200 {
		t.Fatalf("stream the slow run on B: %d", resp.StatusCode)
	}
	streamDone := make(chan []testkit.SSE, 1)
	go func() {
		msgs, _, _ := testkit.ReadSSE(resp.Body, func(m testkit.SSE) bool { return !core.EventTerminal(m.Event.Type) })
		streamDone <- msgs
	}()
	start := time.Now()
	expectStatus(t, do(t, "POST", c.URL(app.StackA)+"/v1/runs/"+slowID+":cancel", key, nil), 200, "cancel on C")
	// The executing node drops the webhook call: the slow server sees the
	// request's connection end.
	testkit.Await(t, "the slow call to stop after the cancel", 2*time.Second, slow.Gone)
	t.Logf("cancel on node C stopped the call on the executing node in %v", time.Since(start))
	s, ty := testkit.Sequences(testkit.Await(t, "the canceled run's stream on B to end", 30*time.Second, streamDone))
	checkGapless(t, slowID, s, ty)
	if len(ty) == 0 || ty[len(ty)-1] != "agentos.run.canceled" {
		t.Fatalf("slow run's stream: %v", ty)
	}
}

// Writers on three nodes append to one tenant's audit chain at the same
// time; the chain stays one verifiable sequence holding every record.
func TestCluster_AuditChainWithWritersOnThreeNodes(t *testing.T) {
	ns := startClusterNodes(t, 3, 2*time.Second)
	ctx := context.Background()
	tenant := ns[0].creds.DefaultTenantID
	before, err := ns[0].Store().VerifyAudit(ctx, tenant)
	if err != nil {
		t.Fatalf("chain before: %v", err)
	}
	// Room for every create at once (run-create QPS is per node).
	patchTenantOn(t, ns[0], ns[0].creds.PlatformAdmin.APIKey, map[string]any{"quotas": map[string]any{
		"runs": map[string]any{"run_create_qps": 1000, "run_create_burst": 1000, "max_concurrent_runs": 1000}}})
	const perNode = 15
	testkit.AtOnce(len(ns)*perNode, func(w int) {
		i, n := w%len(ns), ns[w%len(ns)]
		r := do(t, "POST", n.URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", n.creds.TenantAdmin.APIKey,
			map[string]any{"input": map[string]any{"type": "text", "text": "audit"}, "idempotency_key": fmt.Sprintf("audit-%d", w),
				// A dry run is created, audited and completed at once, so
				// the tenant's concurrent-run cap does not get in the way.
				"options": map[string]any{"dry_run": true}})
		if r.Status != 201 {
			t.Errorf("create on node %d: %d %s", i, r.Status, r.Body)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	// Every node reads and verifies the same chain.
	for _, n := range ns {
		after, err := n.Store().VerifyAudit(ctx, tenant)
		if err != nil {
			t.Fatalf("chain read through %s: %v", n.NodeID(), err)
		}
		if after < before+3*perNode {
			t.Fatalf("chain through %s holds %d records, want at least %d", n.NodeID(), after, before+3*perNode)
		}
	}
}
