package app_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
)

// scrape reads Stack A's /metrics.
func scrape(t *testing.T, n *testNode) testkit.Metrics {
	t.Helper()
	return testkit.Scrape(t, nil, n.URL(app.StackA)+"/metrics")
}

// TestMetrics_RunAndModelCallMoveCounters runs the sample agent once and
// checks the counters a run (one tool call, two model calls) must move.
func TestMetrics_RunAndModelCallMoveCounters(t *testing.T) {
	n := MustStartNode(t)
	key := n.creds.TenantAdmin.APIKey
	before := scrape(t, n)
	r := do(t, "POST", n.URL(app.StackA)+"/v1/agents/agt_sample_echo_v1/runs", key,
		map[string]any{"input": map[string]any{"type": "text", "text": "count me"}, "idempotency_key": "idem_metrics"})
	expectStatus(t, r, 201, "create run")
	runID := r.JSON(t)["run"].(map[string]any)["run_id"].(string)
	testkit.WaitRun(t, n.URL(app.StackA), key, runID, 10*time.Second, "completed")
	// A policy block moves its counter too.
	pb := do(t, "POST", n.URL(app.StackB)+"/v1/policy:check", key, map[string]any{
		"auth": map[string]any{"tenant_id": "tnt_demo", "principal": map[string]any{"principal_id": "usr_tnt_demo_admin", "principal_type": "user"},
			"scopes": []string{}, "policy_context": map[string]any{"data_classification": "internal", "region": "local", "purpose": "test"}},
		"policy_check": map[string]any{"content": map[string]any{"type": "text", "text": "mail jane@example.com"}}})
	expectStatus(t, pb, 200, "policy check")
	checks := []struct {
		name   string
		labels []string
		min    float64
	}{
		{"agentos_runs_total", []string{`status="completed"`}, 1},
		{"agentos_run_latency_ms_count", nil, 1},
		{"agentos_step_latency_ms_count", nil, 3},
		{"agentos_tool_latency_ms_count", nil, 1},
		{"agentos_model_requests_total", []string{`backend="builtin"`, `status="ok"`}, 2},
		{"agentos_tokens_total", []string{`direction="input"`}, 1},
		{"agentos_tokens_total", []string{`direction="output"`}, 1},
		{"agentos_redactions_total", []string{`kind="email"`}, 1},
		{"agentos_http_requests_total", []string{`stack="stack-a"`, `tenant="tnt_demo"`}, 2},
	}
	var after testkit.Metrics
	unmoved := func() (out []string) {
		for _, c := range checks {
			if d := after.Sum(c.name, c.labels...) - before.Sum(c.name, c.labels...); d < c.min {
				out = append(out, fmt.Sprintf("%s%v moved by %v, want >= %v", c.name, c.labels, d, c.min))
			}
		}
		return out
	}
	// Metering is batched: scrape until every counter moved.
	testkit.WaitFor(t, "every counter to move", 10*time.Second, func() bool {
		after = scrape(t, n)
		return len(unmoved()) == 0
	}, func() string { return strings.Join(unmoved(), "; ") })
	for _, name := range []string{"agentos_queue_depth", "agentos_active_runs", "agentos_backend_up", "agentos_cost_usd_total",
		"agentos_policy_blocks_total", "agentos_tool_errors_total", "agentos_auth_failures_total"} {
		if !after.Has(name) {
			t.Errorf("metric %s is not exported", name)
		}
	}
}
