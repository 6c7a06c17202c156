package app_test

import (
	"bufio"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/internal/testkit"
)

// scrape reads a router's /metrics into series → value.
func scrape(t *testing.T, n *testNode) map[string]float64 {
	t.Helper()
	r := do(t, "GET", n.URL(app.StackA)+"/metrics", "", nil)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, "agentos_") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// sum adds the series of name whose labels contain every given pair.
func sum(m map[string]float64, name string, labels ...string) float64 {
	total := 0.0
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(k, l) {
				ok = false
			}
		}
		if ok {
			total += v
		}
	}
	return total
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
	moved := func(after map[string]float64) bool {
		for _, c := range checks {
			if sum(after, c.name, c.labels...)-sum(before, c.name, c.labels...) < c.min {
				return false
			}
		}
		return true
	}
	// Metering is batched: scrape until every counter moved, or give up
	// after 10s and report which did not.
	after := scrape(t, n)
	for deadline := time.Now().Add(10 * time.Second); !moved(after) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		after = scrape(t, n)
	}
	for _, c := range checks {
		d := sum(after, c.name, c.labels...) - sum(before, c.name, c.labels...)
		if d < c.min {
			t.Errorf("%s%v moved by %v, want >= %v", c.name, c.labels, d, c.min)
		}
	}
	for _, name := range []string{"agentos_queue_depth", "agentos_active_runs", "agentos_backend_up", "agentos_cost_usd_total",
		"agentos_policy_blocks_total", "agentos_tool_errors_total", "agentos_auth_failures_total"} {
		found := false
		for k := range after {
			if k == name || strings.HasPrefix(k, name+"{") {
				found = true
			}
		}
		if !found {
			t.Errorf("metric %s is not exported", name)
		}
	}
}
