// Package recovery_test proves crash recovery end to end: it builds the
// real binary, kills it with SIGKILL while runs are in flight, restarts
// it, and checks every run ends terminal with a gapless event sequence.
package recovery_test

import (
	"encoding/json"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/agentos/agentos/e2e/testbinary"
	"github.com/agentos/agentos/internal/testkit"
)

func TestMain(m *testing.M) { testbinary.Main(m, "") }

func startNode(t *testing.T, dataDir string, storeFlags []string) *testbinary.Node {
	t.Helper()
	return testbinary.Serve(t, dataDir, 15*time.Second, append([]string{"--log-level", "warn", "--workers", "8"}, storeFlags...)...)
}

// listedEvent is one event of the JSON listing (bare event objects).
type listedEvent struct {
	Sequence int64  `json:"sequence"`
	Type     string `json:"type"`
	EventID  string `json:"event_id"`
}

// TestRecovery_KillDashNineMidRun runs over every store: the durable queue
// and gapless events hold on bbolt and on PostgreSQL alike.
func TestRecovery_KillDashNineMidRun(t *testing.T) {
	for _, store := range testbinary.Stores() {
		t.Run(store, func(t *testing.T) { killDashNineMidRun(t, testbinary.StoreFlags(t, store)) })
	}
}

func killDashNineMidRun(t *testing.T, storeFlags []string) {
	// A webhook tool that takes a while, so the kill lands mid-run.
	slow := testkit.StartSlowWebhook(t, 1500*time.Millisecond)

	dataDir := t.TempDir()
	n := startNode(t, dataDir, storeFlags)
	creds := testbinary.ReadCredentials(t, dataDir)
	admin, key := creds.PlatformAdmin.APIKey, creds.TenantAdmin.APIKey

	testkit.PatchTenant(t, n.StackAURL, admin, "tnt_demo", map[string]any{
		"entitlements": map[string]any{"tool_ids_allowed": []string{"tool.echo", "tool.slow"}},
		"quotas":       map[string]any{"runs": map[string]any{"run_create_qps": 100, "run_create_burst": 100, "max_concurrent_runs": 50}},
	})
	testkit.PutWebhookAgent(t, n.StackAURL, key, "tool.slow", "agt_slow", slow.URL)

	const runs = 20
	ids := make([]string, 0, runs)
	for i := 0; i < runs; i++ {
		var out struct {
			Run struct {
				RunID string `json:"run_id"`
			} `json:"run"`
		}
		if s := testkit.Call(t, "POST", n.StackAURL+"/v1/agents/agt_slow/runs", key, map[string]any{
			"input": map[string]any{"type": "text", "text": fmt.Sprintf("job %d", i)}, "idempotency_key": fmt.Sprintf("idem_crash_%d", i)}, &out); s != 201 {
			t.Fatalf("create run %d: %d", i, s)
		}
		ids = append(ids, out.Run.RunID)
	}
	// Once the first wave (8 workers) is in the slow tool, kill without
	// warning.
	testkit.WaitFor(t, "runs calling the slow tool", 30*time.Second, func() bool { return slow.Calls.Load() >= 4 })
	var running, queued struct {
		Runs []json.RawMessage `json:"runs"`
	}
	testkit.Call(t, "GET", n.StackAURL+"/v1/runs?status=running&limit=100", key, nil, &running)
	testkit.Call(t, "GET", n.StackAURL+"/v1/runs?status=queued&limit=100", key, nil, &queued)
	if len(running.Runs) == 0 {
		t.Fatal("no run was running when the node was killed; the test would prove nothing")
	}
	t.Logf("killing the node with %d runs running and %d queued", len(running.Runs), len(queued.Runs))
	if err := n.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	n.Cmd.Wait()

	n2 := startNode(t, dataDir, storeFlags)
	for _, id := range ids {
		run := testkit.WaitRun(t, n2.StackAURL, key, id, 60*time.Second)
		var ev struct {
			Events []listedEvent `json:"events"`
		}
		if s := testkit.Call(t, "GET", n2.StackAURL+"/v1/runs/"+id+"/events", key, nil, &ev); s != 200 {
			t.Fatalf("events %s: %d", id, s)
		}
		terminal, seen := 0, map[string]bool{}
		for i, e := range ev.Events {
			if e.Sequence != int64(i+1) {
				t.Fatalf("run %s: event %d has sequence %d (gap or duplicate)", id, i, e.Sequence)
			}
			if seen[e.EventID] {
				t.Fatalf("run %s: duplicate event id %s", id, e.EventID)
			}
			seen[e.EventID] = true
			switch e.Type {
			case "agentos.run.completed", "agentos.run.failed", "agentos.run.canceled":
				terminal++
				if i != len(ev.Events)-1 {
					t.Fatalf("run %s: terminal event is not last", id)
				}
			}
		}
		if terminal != 1 {
			t.Fatalf("run %s: %d terminal events, want 1", id, terminal)
		}
		t.Logf("run %s: %s after restart, %d events", id, run["status"], len(ev.Events))
	}
}
