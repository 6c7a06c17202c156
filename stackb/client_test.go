package stackb_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httputil"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stackb/client"
	"github.com/labstack/echo/v4"
)

func TestClient_PropagatesTraceAndCorrelation(t *testing.T) {
	e := newEnv(t, envOpt{})
	url := e.serve(t)
	var mu sync.Mutex
	var seen http.Header
	target, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	upstream := httputil.NewSingleHostReverseProxy(target)
	proxy := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = r.Header.Clone()
		mu.Unlock()
		upstream.ServeHTTP(w, r)
	}), nil)
	c := client.New(proxy.URL, "service", nil)
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ctx := core.WithTraceparent(core.WithCorrelationID(context.Background(), "corr_fixed"), tp)
	req := chatReq("tier:fast", "x")
	req.AgentID = "agt_sample_echo_v1"
	if _, err := c.Chat(ctx, e.auth, req); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen.Get("traceparent") != tp || seen.Get("X-Correlation-Id") != "corr_fixed" || seen.Get("X-AgentOS-Agent-Id") != "agt_sample_echo_v1" ||
		seen.Get("Authorization") != "Bearer service" || seen.Get("X-Tenant-Id") != "tnt_demo" {
		t.Fatalf("headers sent: %v", seen)
	}
}

func TestClient_ErrorMapping(t *testing.T) {
	ctx := context.Background()
	auth := userAuth("tnt_demo")
	t.Run("rate limited keeps Retry-After", func(t *testing.T) {
		tn := demoTenant("tnt_demo")
		tn.Quotas.Models = &core.ModelQuotas{MaxRequestsPerMinute: core.Ptr(1)}
		e := newEnv(t, envOpt{tenant: &tn})
		c := client.New(e.serve(t), "user", nil)
		var err error
		for i := 0; i < 3 && err == nil; i++ {
			_, err = c.Chat(ctx, auth, chatReq("tier:fast", "x"))
		}
		ce := core.AsError(err)
		if ce == nil || ce.Code != core.CodeRateLimited || ce.RetryAfter < 1 || !ce.Retryable {
			t.Fatalf("err = %#v, want rate_limited with Retry-After", ce)
		}
	})
	t.Run("policy blocked", func(t *testing.T) {
		e := newEnv(t, envOpt{})
		c := client.New(e.serve(t), "user", nil)
		_, err := c.Chat(ctx, auth, chatReq("tier:fast", "AKIAIOSFODNN7EXAMPLE"))
		if ce := core.AsError(err); ce.Code != core.CodePolicyBlocked || ce.HTTPStatus() != 403 {
			t.Fatalf("err = %#v", ce)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := testkit.Serve(t, http.NotFoundHandler(), nil)
		srv.Close()
		_, err := client.New(srv.URL, "x", nil).ListModels(ctx, auth)
		if !core.IsCode(err, core.CodeDependencyUnavailable) {
			t.Fatalf("err = %v, want dependency_unavailable", err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		// Answers only once the caller has given up.
		srv := testkit.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body) // the server notices a gone caller only once the body is read
			<-r.Context().Done()
		}), nil)
		dctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
		defer cancel()
		_, err := client.New(srv.URL, "x", nil).Chat(dctx, auth, chatReq("tier:fast", "x"))
		if !core.IsCode(err, core.CodeTimeout) {
			t.Fatalf("err = %v, want timeout", err)
		}
	})
	t.Run("bare status", func(t *testing.T) {
		ec := echo.New()
		ec.GET("/v1/models", func(c echo.Context) error { return c.String(502, "bad gateway") })
		srv := testkit.Serve(t, ec, nil)
		_, err := client.New(srv.URL, "x", nil).ListModels(ctx, auth)
		if !core.IsCode(err, core.CodeDependencyUnavailable) {
			t.Fatalf("err = %v, want dependency_unavailable", err)
		}
	})
}

func TestGateway_AuditAndMetrics(t *testing.T) {
	up := newFakeOpenAI(t)
	e := newEnv(t, envOpt{providers: providersJSON(up.srv.URL+"/v1", "")})
	ctx := context.Background()
	// Tools through the openai provider map back to the tool id.
	req := chatReq("tier:balanced", "find it a@b.io")
	req.Input.Tools = []core.ModelTool{{ToolID: "tool.kv.get", Name: "kv.get"}}
	r, err := e.gw.Chat(ctx, e.auth, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Output.ToolCalls) != 1 || r.Output.ToolCalls[0].ToolID != "tool.kv.get" || r.Output.ToolCalls[0].Arguments["q"] != "x" {
		t.Fatalf("tool calls %+v", r.Output.ToolCalls)
	}
	up.srv.Close()
	if _, err := e.gw.Chat(ctx, e.auth, chatReq("tier:balanced", "fallback")); err != nil {
		t.Fatal(err)
	}
	_, _ = e.gw.Chat(ctx, e.auth, chatReq("tier:fast", "-----BEGIN PRIVATE KEY-----"))
	e.gw.Flush()
	recs, err := e.st.ListAudit(ctx, "tnt_demo", core.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]int{}
	for _, rec := range recs {
		actions[rec.Action+"/"+rec.Outcome]++
	}
	for _, want := range []string{"model.invoke/ok", "policy.decision/redacted", "policy.decision/blocked", "model.route/fallback"} {
		if actions[want] == 0 {
			t.Errorf("no %s audit record; have %v", want, actions)
		}
	}
	if n, err := e.st.VerifyAudit(ctx, "tnt_demo"); err != nil || n != len(recs) {
		t.Fatalf("audit chain: %d, %v", n, err)
	}
	m := testkit.Gather(t, e.reg)
	for _, want := range []struct {
		name   string
		labels []string
		value  float64 // -1: any value, the series only has to be there
	}{
		{"agentos_model_requests_total", []string{`backend="local-vllm"`, `status="ok"`}, 1},
		{"agentos_model_requests_total", []string{`backend="local-vllm"`, `status="dependency_unavailable"`}, 1},
		{"agentos_model_requests_total", []string{`backend="builtin"`, `status="ok"`}, 1},
		{"agentos_policy_blocks_total", nil, 1},
		{"agentos_redactions_total", []string{`kind="email"`}, 1},
		{"agentos_tokens_total", []string{`direction="input"`}, -1},
		{"agentos_cost_usd_total", nil, -1},
		{"agentos_backend_up", []string{`backend="builtin"`}, 1},
		{"agentos_model_errors_total", []string{`code="policy_blocked"`}, 1},
	} {
		if !m.Has(want.name) {
			t.Errorf("metrics lack %s", want.name)
		} else if got := m.Sum(want.name, want.labels...); want.value >= 0 && got != want.value {
			t.Errorf("%s%v = %v, want %v", want.name, want.labels, got, want.value)
		}
	}
}
