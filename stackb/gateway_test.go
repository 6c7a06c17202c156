package stackb_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stackb"
)

func chatReq(ref, text string) core.ModelRequest {
	return core.ModelRequest{ModelRef: ref, Input: core.ModelInput{Messages: []core.ChatMessage{{Role: "user", Content: text}}}}
}

func TestGateway_Budget_ConcurrentCallersNeverOvershoot(t *testing.T) {
	tn := demoTenant("tnt_budget")
	// Each call: "0123456789abcdef" → 4 input tokens, max 8 output → reserves 12;
	// echo answers "echo: 0123456789abcdef" → 6 output tokens, 10 total.
	tn.Quotas.Models = &core.ModelQuotas{TokenBudget: &core.TokenBudget{Window: "hour", MaxTokens: core.Ptr[int64](505)},
		MaxRequestsPerMinute: core.Ptr(100000)}
	e := newEnv(t, envOpt{tenant: &tn})
	ctx := context.Background()
	var (
		mu             sync.Mutex
		okCalls, quota int
		used           int
	)
	testkit.AtOnce(32, func(int) {
		for i := 0; i < 10; i++ {
			req := chatReq("tier:fast", "0123456789abcdef")
			req.Generation = &core.Generation{MaxOutputTokens: core.Ptr(8)}
			resp, err := e.gw.Chat(ctx, e.auth, req)
			mu.Lock()
			switch {
			case err == nil:
				okCalls++
				used += resp.Usage.TotalTokens
			case core.IsCode(err, core.CodeQuotaExceeded):
				quota++
			default:
				t.Errorf("unexpected error %v", err)
			}
			mu.Unlock()
		}
	})
	if used > 505+10 {
		t.Fatalf("used %d tokens over a 505 budget: overshoot beyond one request", used)
	}
	if okCalls < 40 || quota == 0 {
		t.Fatalf("ok %d quota_exceeded %d: want the budget to be used then refused", okCalls, quota)
	}
	e.gw.Flush()
	cur, err := e.gw.CurrentUsage(ctx, e.auth)
	if err != nil {
		t.Fatal(err)
	}
	if cur.TotalTokens != int64(used) || cur.Requests != int64(okCalls) || cur.Window != "hour" {
		t.Fatalf("ledger %+v, want %d tokens in %d requests in the hour window", cur, used, okCalls)
	}
	_, err = e.gw.Chat(ctx, e.auth, chatReq("tier:fast", "more"))
	ce := core.AsError(err)
	if ce == nil || ce.Code != core.CodeQuotaExceeded || ce.Details["window"] != "hour" || ce.Details["limit"] != int64(505) {
		t.Fatalf("after the budget: err = %#v, want quota_exceeded naming limit and window", ce)
	}
}

func TestGateway_Limits(t *testing.T) {
	tn := demoTenant("tnt_limits")
	tn.Quotas.Models = &core.ModelQuotas{MaxTokensPerRequest: core.Ptr(50), MaxRequestsPerMinute: core.Ptr(3)}
	tn.Entitlements = core.Entitlements{ModelTiersAllowed: []string{"fast"}, ModelBackendsAllowed: []string{"builtin"}}
	e := newEnv(t, envOpt{tenant: &tn})
	ctx := context.Background()

	big := chatReq("tier:fast", "hi")
	big.Generation = &core.Generation{MaxOutputTokens: core.Ptr(100)}
	if _, err := e.gw.Chat(ctx, e.auth, big); !core.IsCode(err, core.CodeQuotaExceeded) {
		t.Fatalf("max_tokens_per_request: err = %v, want quota_exceeded", err)
	}
	if _, err := e.gw.Chat(ctx, e.auth, chatReq("tier:premium", "hi")); !core.IsCode(err, core.CodeForbidden) {
		t.Fatalf("tier not entitled: err = %v, want forbidden", err)
	}
	var rl *core.Error
	for i := 0; i < 5; i++ {
		_, err := e.gw.Chat(ctx, e.auth, chatReq("tier:fast", "hi"))
		if err != nil {
			rl = core.AsError(err)
			break
		}
	}
	if rl == nil || rl.Code != core.CodeRateLimited || rl.RetryAfter < 1 {
		t.Fatalf("requests per minute: err = %#v, want rate_limited with Retry-After", rl)
	}
}

func TestGateway_Replay_MeteredOnce(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := context.Background()
	req := chatReq("tier:fast", "hello world")
	req.RequestID = "req_replay_1"
	answers := make([]core.ModelResponse, 8)
	testkit.AtOnce(len(answers), func(i int) {
		r, err := e.gw.Chat(ctx, e.auth, req)
		if err != nil {
			t.Error(err)
		}
		answers[i] = r
	})
	e.gw.Flush()
	for _, a := range answers {
		if a.LatencyMS != answers[0].LatencyMS || a.RequestID != "req_replay_1" || a.Output.Message.Content != "echo: hello world" {
			t.Fatalf("answers differ: %+v vs %+v", a, answers[0])
		}
	}
	cur, _ := e.gw.CurrentUsage(ctx, e.auth)
	if cur.Requests != 1 {
		t.Fatalf("metered %d requests for one request_id, want 1", cur.Requests)
	}
	// Another tenant with the same request id gets its own answer.
	if err := e.st.CreateTenant(ctx, demoTenant("tnt_other"), nil); err != nil {
		t.Fatal(err)
	}
	other := req
	other.Input.Messages = []core.ChatMessage{{Role: "user", Content: "other tenant"}}
	r, err := e.gw.Chat(ctx, userAuth("tnt_other"), other)
	if err != nil || r.Output.Message.Content != "echo: other tenant" {
		t.Fatalf("other tenant got %+v, %v", r.Output, err)
	}
}

// TestGateway_Once_KeepsNoAnswerForReplay: a request marked Once (Stack
// A's calls, whose ids are never sent again) is answered, metered and
// audited under its request_id like any other, but leaves no stored answer;
// the same id without Once is kept and replays.
func TestGateway_Once_KeepsNoAnswerForReplay(t *testing.T) {
	e := newEnv(t, envOpt{})
	ctx := context.Background()
	once := chatReq("tier:fast", "first")
	once.RequestID, once.Once = "req_once_1", true
	r, err := e.gw.Chat(ctx, e.auth, once)
	if err != nil || r.RequestID != "req_once_1" || r.Output.Message.Content != "echo: first" {
		t.Fatalf("once: %+v, %v", r, err)
	}
	e.gw.Flush()
	if _, err := e.st.GetReplay(ctx, e.auth.TenantID, "req_once_1"); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("stored answer of a Once request: err = %v, want not_found", err)
	}
	cur, _ := e.gw.CurrentUsage(ctx, e.auth)
	if cur.Requests != 1 {
		t.Fatalf("metered %d requests, want 1", cur.Requests)
	}
	recs, err := e.st.ListAudit(ctx, e.auth.TenantID, core.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, a := range recs {
		audited = audited || a.Action == "model.invoke" && a.ObjectID == "req_once_1"
	}
	if !audited {
		t.Fatalf("no model.invoke audit record for req_once_1 in %d records", len(recs))
	}
	// Without Once the answer is kept, and the same id replays it (a new
	// text would be answered differently if it were computed again).
	kept := chatReq("tier:fast", "second")
	kept.RequestID = "req_kept_1"
	if _, err := e.gw.Chat(ctx, e.auth, kept); err != nil {
		t.Fatal(err)
	}
	e.gw.Flush()
	if _, err := e.st.GetReplay(ctx, e.auth.TenantID, "req_kept_1"); err != nil {
		t.Fatalf("stored answer of a request with an id: %v", err)
	}
	kept.Input.Messages = []core.ChatMessage{{Role: "user", Content: "changed"}}
	r, err = e.gw.Chat(ctx, e.auth, kept)
	if err != nil || r.Output.Message.Content != "echo: second" {
		t.Fatalf("replay: %+v, %v; want the stored answer", r.Output, err)
	}
}

func providersJSON(upstream string, extra string) string {
	return fmt.Sprintf(`{"providers":[{"name":"local-vllm","kind":"openai","base_url":%q,"api_key_env":"STACKB_TEST_KEY","timeout_ms":2000,
  "models":[{"model_id":"qwen2.5:7b","capabilities":["chat"],"tier":"balanced","context_window_tokens":32768,"max_output_tokens":2048,
             "usd_per_1k_input_tokens":0.2,"usd_per_1k_output_tokens":0.6},
            {"model_id":"emb","capabilities":["embed"],"tier":"balanced"}]}],
  "tiers":{"fast":["builtin/echo-1"],"balanced":["local-vllm/qwen2.5:7b","builtin/echo-1"],"premium":["local-vllm/qwen2.5:7b"]}%s}`, upstream, extra)
}

func TestGateway_Fallback_UpstreamStoppedMidTest(t *testing.T) {
	up := newFakeOpenAI(t)
	var now time.Time
	var clockMu sync.Mutex
	now = time.Now().UTC()
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	advance := func(d time.Duration) { clockMu.Lock(); now = now.Add(d); clockMu.Unlock() }
	e := newEnv(t, envOpt{providers: providersJSON(up.srv.URL+"/v1", ""), deps: func(d *stackb.Deps) {
		d.Now = clock
		d.HealthFailures = 1
		d.HealthCooldown = time.Minute
	}})
	ctx := context.Background()

	r, err := e.gw.Chat(ctx, e.auth, chatReq("tier:balanced", "hi"))
	if err != nil || r.Route.Backend != "local-vllm" || r.Route.FallbackUsed || r.Output.Message.Content != "upstream: hi" {
		t.Fatalf("healthy upstream: %+v, %v", r, err)
	}
	if want := 7*0.2/1000 + 3*0.6/1000; r.CostUSD < want-1e-12 || r.CostUSD > want+1e-12 {
		t.Fatalf("cost_usd %v, want %v from the price table", r.CostUSD, want)
	}
	url := up.srv.URL
	up.srv.Close() // the backend goes away mid-test

	r, err = e.gw.Chat(ctx, e.auth, chatReq("tier:balanced", "hi"))
	if err != nil || r.Route.Backend != "builtin" || !r.Route.FallbackUsed {
		t.Fatalf("after stop: %+v, %v; want builtin with fallback_used", r.Route, err)
	}
	if h := e.gw.BackendHealth(); h["local-vllm"] || !h["builtin"] {
		t.Fatalf("health = %v, want local-vllm down", h)
	}
	// Down backends are skipped: the next call goes straight to builtin.
	r, err = e.gw.Chat(ctx, e.auth, chatReq("tier:balanced", "again"))
	if err != nil || r.Route.Backend != "builtin" || r.Route.FallbackUsed {
		t.Fatalf("while down: %+v, %v; want builtin first", r.Route, err)
	}
	// A chain with nothing left answers dependency_unavailable.
	if _, err := e.gw.Chat(ctx, e.auth, chatReq("tier:premium", "x")); !core.IsCode(err, core.CodeDependencyUnavailable) {
		t.Fatalf("premium with its only backend down: err = %v, want dependency_unavailable", err)
	}

	// The backend comes back on the same address and rejoins after cooldown.
	up2 := newFakeOpenAIAt(t, url)
	advance(2 * time.Minute)
	r, err = e.gw.Chat(ctx, e.auth, chatReq("tier:balanced", "back"))
	if err != nil || r.Route.Backend != "local-vllm" || r.Output.Message.Content != "upstream: back" {
		t.Fatalf("after rejoin: %+v, %v", r.Route, err)
	}
	if !e.gw.BackendHealth()["local-vllm"] || up2.calls.Load() != 1 {
		t.Fatalf("health = %v, upstream calls %d", e.gw.BackendHealth(), up2.calls.Load())
	}
	if testkit.Gather(t, e.reg).Sum("agentos_backend_up", `backend="local-vllm"`) != 1 {
		t.Fatalf("metrics do not show local-vllm up")
	}
}

func TestGateway_Canary_SplitWithinFivePercent(t *testing.T) {
	up := newFakeOpenAI(t)
	canary := `,"canary":[{"tenant_id":"tnt_demo","agent_id":null,"tier":"balanced","route":"builtin/echo-1","percent":10}]`
	e := newEnv(t, envOpt{providers: providersJSON(up.srv.URL+"/v1", canary)})
	ctx := context.Background()
	const n = 2000
	toCanary := 0
	for i := 0; i < n; i++ {
		req := chatReq("tier:balanced", "x")
		req.RequestID = core.NewID(core.PrefixRequest)
		r, err := e.gw.Chat(ctx, e.auth, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Route.Backend == "builtin" {
			toCanary++
		}
	}
	share := float64(toCanary) / n * 100
	if share < 5 || share > 15 {
		t.Fatalf("canary got %.1f%% of traffic, want 10%% ± 5", share)
	}
	// An agent-scoped rule matches only that agent.
	agentRule := `,"canary":[{"tenant_id":null,"agent_id":"agt_x","tier":"balanced","route":"builtin/echo-1","percent":100}]`
	e2 := newEnv(t, envOpt{providers: providersJSON(up.srv.URL+"/v1", agentRule)})
	req := chatReq("tier:balanced", "x")
	req.AgentID = "agt_x"
	if r, _ := e2.gw.Chat(ctx, e2.auth, req); r.Route.Backend != "builtin" {
		t.Fatalf("agent canary: route %+v", r.Route)
	}
	req.AgentID = "agt_y"
	if r, _ := e2.gw.Chat(ctx, e2.auth, req); r.Route.Backend != "local-vllm" {
		t.Fatalf("other agent: route %+v", r.Route)
	}
}

func TestGateway_Entitlements_BackendFilter(t *testing.T) {
	up := newFakeOpenAI(t)
	tn := demoTenant("tnt_demo")
	tn.Entitlements.ModelBackendsAllowed = []string{"builtin"}
	e := newEnv(t, envOpt{tenant: &tn, providers: providersJSON(up.srv.URL+"/v1", "")})
	ctx := context.Background()
	r, err := e.gw.Chat(ctx, e.auth, chatReq("tier:balanced", "x"))
	if err != nil || r.Route.Backend != "builtin" || up.calls.Load() != 0 {
		t.Fatalf("route %+v err %v upstream calls %d; want builtin only", r.Route, err, up.calls.Load())
	}
	if _, err := e.gw.Chat(ctx, e.auth, chatReq("local-vllm/qwen2.5:7b", "x")); !core.IsCode(err, core.CodeForbidden) {
		t.Fatalf("backend not entitled: err = %v, want forbidden", err)
	}
	models, _ := e.gw.ListModels(ctx, e.auth)
	for _, m := range models {
		if m.Provider != "builtin" {
			t.Fatalf("ListModels shows %s/%s to a builtin-only tenant", m.Provider, m.ModelID)
		}
	}
	req := chatReq("tier:balanced", "x")
	req.Requirements = &core.Requirements{MinContextTokens: core.Ptr(1_000_000)}
	if _, err := e.gw.Chat(ctx, e.auth, req); !core.IsCode(err, core.CodeInvalidRequest) {
		t.Fatalf("unmeetable requirements: err = %v, want invalid_request", err)
	}
}

func TestNew_ProvidersFileErrorsNameTheField(t *testing.T) {
	tests := []struct{ file, want string }{
		{`{"providers":[`, "providers file"},
		{`{"providers":[{"name":"x","kind":"grpc","models":[{"model_id":"m","capabilities":["chat"]}]}]}`, "providers[0].kind"},
		{`{"providers":[{"name":"x","kind":"openai","models":[{"model_id":"m","capabilities":["chat"]}]}]}`, "providers[0].base_url"},
		{`{"providers":[],"tiers":{"fast":["nope/m"]}}`, "tiers.fast[0]"},
		{`{"providers":[],"tiers":{"ultra":["builtin/echo-1"]}}`, "tiers.ultra"},
		{`{"providers":[{"name":"x","kind":"openai","base_url":"http://h","models":[{"model_id":"m","capabilities":["see"]}]}]}`, "providers[0].models[0].capabilities[0]"},
		{`{"providers":[],"canary":[{"tier":"fast","route":"x/y","percent":5}]}`, "canary[0].route"},
		{`{"providers":[],"bogus":1}`, "bogus"},
		{`{"providers":[],"rulesets":[{"id":"p","pii":{"dna":"block"}}]}`, "rulesets[0].pii.dna"},
		{`{"providers":[{"name":"x","kind":"anthropic","api_key_file":"/nonexistent/key","models":[{"model_id":"m","capabilities":["chat"]}]}]}`, "providers[0].api_key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			p := testkit.WriteFile(t, filepath.Join(t.TempDir(), "providers.json"), tt.file, 0o600)
			_, err := stackb.New(stackb.Deps{Tenants: nopTenants{}, Usage: nopUsage{}, ProvidersFile: p})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error naming %s", err, tt.want)
			}
		})
	}
}

func TestGateway_Fallback_OnUpstreamTimeout(t *testing.T) {
	slow := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}), nil)
	file := strings.Replace(providersJSON(slow.URL+"/v1", ""), `"timeout_ms":2000`, `"timeout_ms":100`, 1)
	e := newEnv(t, envOpt{providers: file})
	start := time.Now()
	r, err := e.gw.Chat(context.Background(), e.auth, chatReq("tier:balanced", "slow"))
	if err != nil || r.Route.Backend != "builtin" || !r.Route.FallbackUsed {
		t.Fatalf("route %+v err %v; want builtin after the upstream timed out", r.Route, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v; the 100 ms backend timeout did not apply", d)
	}
	if _, err := e.gw.Chat(context.Background(), e.auth, chatReq("local-vllm/qwen2.5:7b", "slow")); !core.IsCode(err, core.CodeTimeout) {
		t.Fatalf("single-model chain: err = %v, want timeout", err)
	}
}

// Issue 14 item 9: a backend that answers with more output tokens than the
// request's maximum (the builtin echo model repeats the whole input however
// small max_output_tokens is) must not push recorded usage past the budget,
// even with many concurrent callers.
func TestHardening_BudgetHoldsWhenBackendOverproduces(t *testing.T) {
	const budget = 300
	tn := demoTenant("tnt_overproduce")
	tn.Quotas.Models = &core.ModelQuotas{TokenBudget: &core.TokenBudget{Window: "hour", MaxTokens: core.Ptr[int64](budget)},
		MaxRequestsPerMinute: core.Ptr(100000)}
	e := newEnv(t, envOpt{tenant: &tn})
	ctx := context.Background()
	// 40 characters: 10 input tokens; echo answers 12 output tokens, 1 allowed.
	text := strings.Repeat("abcd", 10)
	var (
		mu        sync.Mutex
		used, oks int
	)
	testkit.AtOnce(16, func(int) {
		for i := 0; i < 8; i++ {
			req := chatReq("tier:fast", text)
			req.Generation = &core.Generation{MaxOutputTokens: core.Ptr(1)}
			resp, err := e.gw.Chat(ctx, e.auth, req)
			mu.Lock()
			switch {
			case err == nil:
				oks++
				used += resp.Usage.TotalTokens
				if resp.Usage.OutputTokens > 1 {
					t.Errorf("billed %d output tokens, the request allowed 1", resp.Usage.OutputTokens)
				}
			case !core.IsCode(err, core.CodeQuotaExceeded):
				t.Errorf("unexpected error %v", err)
			}
			mu.Unlock()
		}
	})
	if oks == 0 {
		t.Fatal("no call succeeded")
	}
	if used > budget {
		t.Fatalf("answers report %d tokens used over a %d budget", used, budget)
	}
	e.gw.Flush()
	cur, err := e.gw.CurrentUsage(ctx, e.auth)
	if err != nil {
		t.Fatal(err)
	}
	if cur.TotalTokens > budget || cur.TotalTokens != int64(used) {
		t.Fatalf("ledger holds %d tokens (answers %d) against a budget of %d", cur.TotalTokens, used, budget)
	}
}
