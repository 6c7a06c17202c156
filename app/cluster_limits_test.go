package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
)

// Issue 11: the same Idempotency-Key sent to two nodes at the same instant
// makes one run; both answers are 201 and name it, exactly one is marked
// as a replay (Idempotent-Replayed: true).
func TestCluster_IdempotencyKeyRaceAcrossNodes(t *testing.T) {
	ns := startClusterNodes(t, 2, 3*time.Second)
	key := ns[0].creds.TenantAdmin.APIKey
	// Run create QPS is per node; room for every round.
	patchTenantOn(t, ns[0], ns[0].creds.PlatformAdmin.APIKey, map[string]any{"quotas": map[string]any{
		"runs": map[string]any{"run_create_qps": 1000, "run_create_burst": 1000, "max_concurrent_runs": 1000}}})
	const rounds = 25
	for round := 0; round < rounds; round++ {
		idem := fmt.Sprintf("race-%d-%d", round, time.Now().UnixNano())
		body := map[string]any{"input": map[string]any{"type": "text", "text": "same"}}
		answers := make([]response, len(ns))
		testkit.AtOnce(len(ns), func(i int) {
			answers[i] = do(t, "POST", ns[i].URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", key, body, "Idempotency-Key", idem)
		})
		ids, replays := map[string]bool{}, 0
		for i, r := range answers {
			expectStatus(t, r, 201, fmt.Sprintf("round %d, node %d", round, i))
			ids[r.JSON(t)["run"].(map[string]any)["run_id"].(string)] = true
			if r.Header.Get("Idempotent-Replayed") == "true" {
				replays++
			}
		}
		if len(ids) != 1 || replays != 1 {
			t.Fatalf("round %d: the two nodes answered runs %v with %d replays; want one run, one replay", round, ids, replays)
		}
	}
	// One run per key in the store, whichever node is asked.
	list := do(t, "GET", ns[1].URL(app.StackA)+"/v1/runs?limit=200", key, nil).JSON(t)["runs"].([]any)
	if len(list) != rounds {
		t.Fatalf("%d runs stored for %d keys", len(list), rounds)
	}
}

// Issue 11: 32 model calls at once, spread over three nodes, against one
// tenant budget: the budget is never overshot by more than one request's
// reservation, in the answers or in the ledger. (Each node's own
// reservations would let every node spend the whole budget.)
func TestCluster_BudgetHoldsAcrossThreeNodes(t *testing.T) {
	ns := startClusterNodes(t, 3, 3*time.Second)
	admin, key := ns[0].creds.PlatformAdmin.APIKey, ns[0].creds.TenantAdmin.APIKey
	const budget = 200
	patchTenantOn(t, ns[0], admin, map[string]any{"quotas": map[string]any{"models": map[string]any{
		"token_budget": map[string]any{"window": "day", "max_tokens": budget}, "max_requests_per_minute": 100000}}})
	// 40 characters: 10 input tokens; max_tokens 1: each call reserves and
	// is billed 11 tokens.
	const perCall = 11
	text := strings.Repeat("abcd", 10)
	var used, oks, refused atomic.Int64
	testkit.AtOnce(32, func(i int) {
		r := do(t, "POST", ns[i%3].URL(app.StackB)+"/v1/chat/completions", key, map[string]any{"model": "tier:fast", "max_tokens": 1,
			"messages": []any{map[string]any{"role": "user", "content": text}}})
		switch {
		case r.Status == 200:
			var out struct {
				Usage struct {
					TotalTokens int64 `json:"total_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(r.Body, &out); err != nil {
				t.Errorf("answer: %v", err)
			}
			oks.Add(1)
			used.Add(out.Usage.TotalTokens)
		case strings.Contains(string(r.Body), "quota_exceeded"):
			refused.Add(1)
		default:
			t.Errorf("unexpected answer %d %s", r.Status, r.Body)
		}
	})
	t.Logf("32 calls over 3 nodes: %d answered (%d tokens), %d refused, budget %d", oks.Load(), used.Load(), refused.Load(), budget)
	if oks.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("answered %d, refused %d: want both (32 calls of %d tokens against %d)", oks.Load(), refused.Load(), perCall, budget)
	}
	if used.Load() > budget+perCall {
		t.Fatalf("answers report %d tokens used over a budget of %d (one reservation is %d)", used.Load(), budget, perCall)
	}
	// The ledger (each node flushes its settled usage) agrees.
	ctx := context.Background()
	period := core.UsagePeriod(core.WindowDay, time.Now())
	var total int64
	testkit.WaitFor(t, "the ledger to hold every answered call", 10*time.Second, func() bool {
		rec, err := ns[0].Store().GetUsage(ctx, app.DemoTenantID, core.WindowDay, period)
		total = rec.TotalTokens
		return err == nil && total == used.Load()
	}, func() string { return fmt.Sprintf("ledger %d, answers %d", total, used.Load()) })
	if total > budget+perCall {
		t.Fatalf("ledger holds %d tokens against a budget of %d", total, budget)
	}
}

// Issue 11: a tenant's max_concurrent_runs holds across the cluster: runs
// created on two nodes never execute more than the cap at once (observed
// at the tool every run calls), and every run still completes.
func TestCluster_MaxConcurrentRunsAcrossTwoNodes(t *testing.T) {
	const capRuns = 2
	var inFlight, peak, calls atomic.Int64
	slow := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		calls.Add(1)
		// Long enough that runs on both nodes overlap if the cap leaks.
		time.Sleep(150 * time.Millisecond)
		inFlight.Add(-1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"output":{"ok":true}}`)
	}), nil)
	ns := startClusterNodes(t, 2, 3*time.Second)
	a, b := ns[0], ns[1]
	key, admin := a.creds.TenantAdmin.APIKey, a.creds.PlatformAdmin.APIKey
	patchTenantOn(t, a, admin, map[string]any{
		"entitlements": map[string]any{"tool_ids_allowed": []string{"tool.echo", "tool.hold"}},
		"quotas":       map[string]any{"runs": map[string]any{"max_concurrent_runs": capRuns, "run_create_qps": 1000, "run_create_burst": 1000}}})
	testkit.PutWebhookAgent(t, a.URL(app.StackA), key, "tool.hold", "agt_hold", slow.URL)
	const runs = 10
	var ids []string
	for i := 0; i < runs; i++ {
		// A 429 says the tenant's cap of active runs is held: try again
		// until one ends.
		testkit.WaitEvery(t, fmt.Sprintf("room for run %d", i), 30*time.Second, 20*time.Millisecond, func() bool {
			r := do(t, "POST", ns[i%2].URL(app.StackA)+"/v1/agents/agt_hold/runs", key, map[string]any{
				"input": map[string]any{"type": "text", "text": "go"}, "idempotency_key": fmt.Sprintf("cap-%d", i)})
			if r.Expect(t, "create run", 201, 429).Status == 429 {
				return false
			}
			ids = append(ids, r.JSON(t)["run"].(map[string]any)["run_id"].(string))
			return true
		})
	}
	for _, id := range ids {
		if run := testkit.WaitRun(t, b.URL(app.StackA), key, id, 60*time.Second); run["status"] != "completed" {
			t.Fatalf("run %s ended %s", id, run["status"])
		}
	}
	t.Logf("%d runs over 2 nodes, %d tool calls, at most %d at once (cap %d)", runs, calls.Load(), peak.Load(), capRuns)
	if peak.Load() > capRuns {
		t.Fatalf("%d runs of the tenant executed at once across the nodes; max_concurrent_runs is %d", peak.Load(), capRuns)
	}
	if calls.Load() < runs {
		t.Fatalf("%d tool calls for %d runs", calls.Load(), runs)
	}
}

// Issue 11: tool calls per minute hold across the cluster: runs on two
// nodes, each calling one tool, get no more tool calls in a minute than
// the tenant's limit together (the rest fail with rate_limited).
func TestCluster_ToolCallsPerMinuteAcrossNodes(t *testing.T) {
	const perMinute = 3
	ns := startClusterNodes(t, 2, 3*time.Second)
	key, admin := ns[0].creds.TenantAdmin.APIKey, ns[0].creds.PlatformAdmin.APIKey
	patchTenantOn(t, ns[0], admin, map[string]any{"quotas": map[string]any{
		"tools": map[string]any{"tool_calls_per_minute": perMinute},
		"runs":  map[string]any{"run_create_qps": 1000, "run_create_burst": 1000, "max_concurrent_runs": 100}}})
	// The limit counts in UTC minute windows: start with room for the
	// runs in one, and tell afterwards whether they still crossed into the
	// next.
	minute := minuteWithRoom(10 * time.Second)
	var ids []string
	for i := 0; i < 8; i++ {
		r := do(t, "POST", ns[i%2].URL(app.StackA)+"/v1/agents/"+app.SampleAgentID+"/runs", key, map[string]any{
			"input": map[string]any{"type": "text", "text": "hi"}, "idempotency_key": fmt.Sprintf("tools-%d", i)})
		expectStatus(t, r, 201, "create run")
		ids = append(ids, r.JSON(t)["run"].(map[string]any)["run_id"].(string))
	}
	called, limited := 0, 0
	for _, id := range ids {
		testkit.WaitRun(t, ns[0].URL(app.StackA), key, id, 30*time.Second, "completed", "failed")
		evs := do(t, "GET", ns[0].URL(app.StackA)+"/v1/runs/"+id+"/events", key, nil, "Accept", "application/json").JSON(t)["events"].([]any)
		for _, e := range evs {
			ev := e.(map[string]any)
			if ev["type"] != "agentos.tool.call.completed" {
				continue
			}
			// A refused call completes with the error it met.
			if raw, _ := json.Marshal(ev["payload"]); strings.Contains(string(raw), `"code":"rate_limited"`) {
				limited++
			} else {
				called++
			}
		}
	}
	t.Logf("8 runs over 2 nodes at %d tool calls/min: %d calls made, %d refused", perMinute, called, limited)
	if crossed := time.Now().UTC().Truncate(time.Minute) != minute; crossed {
		// Two windows: each allowed at most perMinute, and one of them saw
		// more than perMinute attempts (8 > 2*3).
		if called < perMinute || called > 2*perMinute || called+limited != len(ids) {
			t.Fatalf("runs crossed a minute: %d tool calls made and %d refused; want %d..%d made, the rest refused",
				called, limited, perMinute, 2*perMinute)
		}
		return
	}
	if called != perMinute || limited != len(ids)-perMinute {
		t.Fatalf("%d tool calls made and %d refused across the nodes; want exactly %d made (the tenant's per-minute limit) and %d refused",
			called, limited, perMinute, len(ids)-perMinute)
	}
}

// minuteWithRoom returns the UTC minute a test of a per-minute limit starts
// in, first waiting for the next minute to begin when less than need is
// left of this one (a wait for a known instant, not for something to
// happen).
func minuteWithRoom(need time.Duration) time.Time {
	now := time.Now().UTC()
	if next := now.Truncate(time.Minute).Add(time.Minute); next.Sub(now) < need {
		<-time.After(time.Until(next))
	}
	return time.Now().UTC().Truncate(time.Minute)
}
