package app

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/alerts"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/rs/zerolog"
)

// fakeOpenAI answers /v1/chat/completions like an OpenAI-compatible server.
func fakeOpenAI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":"hi from upstream"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}`)
	})
}

func startAlertTestNode(t *testing.T, providersFile string, sink *testkit.MailSink) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.ProvidersFile = providersFile
	if sink != nil {
		cfg.SMTP = SMTPConfig{Host: sink.Host, Port: sink.Port, From: "agentos@test.local", To: []string{"ops@test.local"}, StartTLS: "off"}
	}
	n := NewNode(cfg, BuildInfo{Version: "test"}, zerolog.Nop())
	if err := n.Open(context.Background()); err != nil {
		t.Fatalf("open node: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func chatOnce(t *testing.T, n *Node, ref string) core.ModelResponse {
	t.Helper()
	resp, err := n.stacks.gateway.Chat(context.Background(), systemAuth(DemoTenantID), core.ModelRequest{
		RequestID: core.NewID(core.PrefixRequest), Operation: "chat", ModelRef: ref,
		Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "user", Content: "hello"}}}})
	if err != nil {
		t.Fatalf("chat %s: %v", ref, err)
	}
	return resp
}

func TestAlerts_ModelBackendUnreachable_MailsFiringThenResolved(t *testing.T) {
	upstream := testkit.Serve(t, fakeOpenAI(), nil)
	addr := upstream.Listener.Addr().String()
	providers := map[string]any{
		"providers": []any{map[string]any{"name": "edge-llm", "kind": "openai", "base_url": upstream.URL + "/v1", "timeout_ms": 2000,
			"models": []any{map[string]any{"model_id": "m1", "capabilities": []string{"chat"}, "tier": "balanced"}}}},
		"tiers": map[string]any{"fast": []string{"builtin/echo-1"}, "balanced": []string{"edge-llm/m1", "builtin/echo-1"}, "premium": []string{"builtin/echo-1"}},
	}
	raw, _ := json.Marshal(providers)
	pf := testkit.WriteFile(t, filepath.Join(t.TempDir(), "providers.json"), raw, 0o600)
	sink := testkit.StartMailSink(t)
	n := startAlertTestNode(t, pf, sink)

	stop := startAlertsWith(n, alerts.Config{Interval: 100 * time.Millisecond,
		For: map[string]time.Duration{alerts.AlertModelBackendUnreachable: 300 * time.Millisecond}})
	defer stop()

	start := time.Now()
	if r := chatOnce(t, n, "tier:balanced"); r.Route.Backend != "edge-llm" {
		t.Fatalf("balanced should route to edge-llm while it is up, got %+v", r.Route)
	}

	// The backend goes away: calls fall back to builtin, health takes it out.
	upstream.Close()
	for i := 0; i < 3; i++ {
		if r := chatOnce(t, n, "tier:balanced"); r.Route.Backend != "builtin" {
			t.Fatalf("call %d: want the builtin fallback, got %+v", i, r.Route)
		}
	}
	if n.stacks.gateway.BackendHealth()["edge-llm"] {
		t.Fatal("edge-llm still marked up after failed calls")
	}
	m, _ := sink.WaitMail(t, 10*time.Second, "[AgentOS FIRING]", alerts.AlertModelBackendUnreachable, "backend=edge-llm")
	if !strings.Contains(m.Body, "out of routing") || !slices.Contains(m.To, "ops@test.local") || m.From != "agentos@test.local" {
		t.Fatalf("firing mail: %+v", m)
	}
	t.Logf("%s: firing mail received", time.Since(start))
	// The SMTP session ends after DATA; the engine records the delivery then.
	// Only this alert is looked for: the machine's own state may hold others
	// (a test machine's disk under 10 % free lists AgentOSDiskNearlyFull as
	// pending), and they are not this test's subject.
	testkit.WaitFor(t, "firing alert recorded as notified", 5*time.Second, func() bool {
		for _, a := range n.Alerts() {
			if a.Name == alerts.AlertModelBackendUnreachable {
				return a.State == "firing" && a.Notified != nil
			}
		}
		return false
	})

	metrics := testkit.Scrape(t, nil, n.URL(StackA)+"/metrics")
	for _, want := range []struct {
		name   string
		labels []string
		value  float64
	}{
		{"agentos_alerts_firing", []string{`alert="AgentOSModelBackendUnreachable"`}, 1},
		{"agentos_router_ready", []string{`stack="stack-b"`}, 1},
		{"agentos_store_up", nil, 1},
		{"agentos_tenant_budget_usage", []string{`measure="tokens_limit"`, `tenant="tnt_demo"`}, 100000},
	} {
		if got := metrics.Sum(want.name, want.labels...); got != want.value {
			t.Fatalf("/metrics: %s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}

	// De-duplication: the alert keeps firing, no second mail. Three more
	// evaluations, driven here: each sends its mails before it returns, so
	// a second mail would be in the sink once they are done.
	n.alertsMu.Lock()
	engine := n.alerts
	n.alertsMu.Unlock()
	for i := 0; i < 3; i++ {
		engine.Evaluate(context.Background())
	}
	select {
	case extra := <-sink.Got:
		t.Fatalf("second mail in one firing episode: %+v", extra)
	default:
	}

	// The backend comes back on the same address; after the health
	// cooldown one probe call puts it back in routing.
	testkit.ServeAt(t, addr, fakeOpenAI())
	testkit.WaitEvery(t, "edge-llm back in routing", 25*time.Second, 250*time.Millisecond, func() bool {
		if n.stacks.gateway.BackendHealth()["edge-llm"] {
			return true
		}
		chatOnce(t, n, "tier:balanced") // the probe call that brings it back
		return false
	})
	t.Logf("%s: edge-llm back in routing", time.Since(start))
	m, _ = sink.WaitMail(t, 10*time.Second, "[AgentOS RESOLVED]", alerts.AlertModelBackendUnreachable, "backend=edge-llm")
	t.Logf("%s: resolved mail received", time.Since(start))
	if !strings.Contains(m.Body, "Resolved:") {
		t.Fatalf("resolved mail body: %q", m.Body)
	}
	for _, a := range n.Alerts() {
		if a.Name == alerts.AlertModelBackendUnreachable {
			t.Fatalf("alert still listed after resolving: %+v", a)
		}
	}

	// The demo tenant's budget shrinks to what it already used: the
	// budget alert fires at once, labelled with the tenant.
	used, err := n.stacks.gateway.CurrentUsage(context.Background(), systemAuth(DemoTenantID))
	if err != nil || used.TotalTokens == 0 {
		t.Fatalf("current usage: %+v %v", used, err)
	}
	_, err = n.store.UpdateTenant(context.Background(), DemoTenantID, func(tn *core.Tenant) error {
		tn.Quotas.Models.TokenBudget.MaxTokens = core.Ptr(used.TotalTokens)
		return nil
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ = sink.WaitMail(t, 10*time.Second, "[AgentOS FIRING]", alerts.AlertTenantBudgetExceeded, "tenant="+DemoTenantID)
	if !strings.Contains(m.Body, fmt.Sprintf("used %d of %d tokens", used.TotalTokens, used.TotalTokens)) {
		t.Fatalf("budget mail body: %q", m.Body)
	}
	testkit.WaitFor(t, "budget alert carries its tenant", 5*time.Second, func() bool {
		for _, a := range n.Alerts() {
			if a.Name == alerts.AlertTenantBudgetExceeded && a.TenantID == DemoTenantID && a.State == "firing" {
				return true
			}
		}
		return false
	})
}

// TestOpsDocs_MatchMetricsAndRules keeps docs/ops honest: the Prometheus
// rules name exactly the node's built-in alerts, and every metric the rules
// and the Grafana dashboard query is one the code registers.
func TestOpsDocs_MatchMetricsAndRules(t *testing.T) {
	root := filepath.Join("..")
	registered := map[string]bool{}
	nameRe := regexp.MustCompile(`Name:\s*"(agentos_[a-z0-9_]+)"`)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range nameRe.FindAllStringSubmatch(string(raw), -1) {
			registered[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	metricRe := regexp.MustCompile(`agentos_[a-z0-9_]+`)
	for _, doc := range []string{"docs/ops/agentos-rules.yml", "docs/ops/grafana-dashboard.json"} {
		raw, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range metricRe.FindAllString(string(raw), -1) {
			base := m
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if strings.HasSuffix(m, suffix) && registered[strings.TrimSuffix(m, suffix)] {
					base = strings.TrimSuffix(m, suffix)
				}
			}
			if !registered[base] {
				t.Errorf("%s queries %s, which no code registers", doc, m)
			}
		}
		if doc == "docs/ops/grafana-dashboard.json" {
			var dash struct {
				Templating struct {
					List []struct{ Name string } `json:"list"`
				} `json:"templating"`
			}
			if err := json.Unmarshal(raw, &dash); err != nil {
				t.Fatalf("%s: %v", doc, err)
			}
			hasTenant := false
			for _, v := range dash.Templating.List {
				hasTenant = hasTenant || v.Name == "tenant"
			}
			if !hasTenant {
				t.Errorf("%s has no $tenant variable", doc)
			}
		}
	}
	raw, err := os.ReadFile(filepath.Join(root, "docs/ops/agentos-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	inDoc := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert:\s*(\S+)`).FindAllStringSubmatch(string(raw), -1) {
		inDoc[m[1]] = true
	}
	for _, r := range alerts.BuiltinRules() {
		if !inDoc[r.Name] {
			t.Errorf("rules file lacks the built-in alert %s", r.Name)
		}
		delete(inDoc, r.Name)
	}
	for name := range inDoc {
		t.Errorf("rules file has %s, which the node does not evaluate", name)
	}
}

// BenchmarkAlerts_EvaluateBuiltinRules is one evaluation of every built-in
// rule on a live node (readiness of three routers, store ping, statfs,
// registry sample, one tenant's usage).
func BenchmarkAlerts_EvaluateBuiltinRules(b *testing.B) {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	cfg.StackAAddr, cfg.StackBAddr, cfg.FedAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	n := NewNode(cfg, BuildInfo{Version: "bench"}, zerolog.Nop())
	if err := n.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	e := alerts.New(alerts.DefaultConfig(), zerolog.Nop(), n.registry, alertSources(n), nil)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Evaluate(ctx)
	}
}
