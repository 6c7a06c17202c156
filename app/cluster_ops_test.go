package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
)

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
	var wg sync.WaitGroup
	errs := make(chan error, 3*perNode)
	start := make(chan struct{})
	for i, n := range ns {
		for j := range perNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := do(t, "POST", n.URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", n.creds.TenantAdmin.APIKey,
					map[string]any{"input": map[string]any{"type": "text", "text": "audit"}, "idempotency_key": fmt.Sprintf("audit-%d-%d", i, j),
						// A dry run is created, audited and completed at once, so
						// the tenant's concurrent-run cap does not get in the way.
						"options": map[string]any{"dry_run": true}})
				if r.Status != 201 {
					errs <- fmt.Errorf("create on node %d: %d %s", i, r.Status, r.Body)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
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
