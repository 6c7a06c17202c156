package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/jsonhttp"
)

// Bench fixture names: one tenant, one agent and a key per invocation, so
// a bench never spends another tenant's quota or budget.
const (
	TenantID    = "tnt_bench"
	AgentID     = "agt_bench_echo"
	principalID = "svc_bench"
)

// Fixture is the tenant and key a bench run uses.
type Fixture struct {
	APIKey  string
	TokenID string
	// Revoke deletes the key again (the tenant and agent stay for the next
	// run).
	Revoke func(ctx context.Context) error
}

// admin is a platform-admin client of Stack A.
type admin struct {
	hc   *http.Client
	base *url.URL
	key  string
}

func (a admin) do(ctx context.Context, method, path string, in, out any) (int, error) {
	h := jsonhttp.Bearer(a.key)
	if !strings.HasPrefix(path, "/v1/admin/") {
		// The agent lives in the bench tenant; the admin surface names
		// the tenant in its path (and it may not exist yet).
		h.Set("X-Tenant-Id", TenantID)
	}
	resp, err := jsonhttp.Send(ctx, a.hc, jsonhttp.Call{Method: method, URL: a.base.String() + path, Header: h, Body: in})
	if err != nil {
		return 0, err
	}
	if resp.Status >= 300 {
		return resp.Status, fmt.Errorf("%s %s: %s", method, path, outcomeOf(resp.Status, resp.Body))
	}
	if out != nil {
		return resp.Status, json.Unmarshal(resp.Body, out)
	}
	return resp.Status, nil
}

// benchQuotas sizes the bench tenant's quotas so the rate, not a quota, is
// what the node is measured at: headroom of several times the rate.
func benchQuotas(rate float64) map[string]any {
	perMin := int(rate*60*4) + 6000
	return map[string]any{
		"runs": map[string]any{"max_concurrent_runs": int(rate*10) + 200, "run_create_qps": rate*2 + 100,
			"run_create_burst": int(rate*2) + 200},
		"tools": map[string]any{"tool_calls_per_minute": perMin},
		"models": map[string]any{"token_budget": map[string]any{"window": "minute", "max_tokens": int64(rate*60*2000) + 1_000_000,
			"max_cost_usd": rate*60 + 1000}, "max_tokens_per_request": 4096, "max_requests_per_minute": perMin},
	}
}

// Setup makes (or updates) the bench tenant on Stack A with the platform
// admin key adminKey: quotas sized for rate, entitled to the builtin
// backend plus backend (when not ""), the echo agent, and a fresh key.
func Setup(ctx context.Context, hc *http.Client, stackA *url.URL, adminKey string, rate float64, backend string) (Fixture, error) {
	a := admin{hc: hc, base: stackA, key: adminKey}
	backends := []string{"builtin"}
	if backend != "" && backend != "builtin" {
		backends = append(backends, backend)
	}
	ent := map[string]any{"model_tiers_allowed": core.ModelTiers(),
		"model_backends_allowed": backends, "tool_ids_allowed": []string{"tool.echo"}}
	status, err := a.do(ctx, http.MethodPost, "/v1/admin/tenants", map[string]any{"tenant_create": map[string]any{
		"tenant_id": TenantID, "name": "agentos bench", "plan_tier": core.PlanEnterprise,
		"entitlements": ent, "quotas": benchQuotas(rate)}}, nil)
	if status == http.StatusConflict {
		_, err = a.do(ctx, http.MethodPatch, "/v1/admin/tenants/"+TenantID, map[string]any{"tenant_update": map[string]any{
			"status": "active", "entitlements": ent, "quotas": benchQuotas(rate)}}, nil)
	}
	if err != nil {
		return Fixture{}, fmt.Errorf("bench tenant: %w", err)
	}
	if _, err := a.do(ctx, http.MethodPut, "/v1/agents/"+AgentID, map[string]any{"agent": map[string]any{
		"agent_id": AgentID, "name": "agentos bench echo agent", "model_ref": "tier:fast",
		"instructions": "Echo the input through tool.echo once.", "tool_ids": []string{"tool.echo"}}}, nil); err != nil {
		return Fixture{}, fmt.Errorf("bench agent: %w", err)
	}
	var tok struct {
		Token struct {
			TokenID string `json:"token_id"`
		} `json:"token"`
		Secret string `json:"secret"`
	}
	if _, err := a.do(ctx, http.MethodPost, "/v1/admin/tenants/"+TenantID+"/tokens", map[string]any{"token_create": map[string]any{
		"principal_id": principalID, "principal_type": "service", "display_name": "agentos bench",
		"scopes": []string{"runs:create", "runs:read", "models:invoke", "models:list"}, "roles": []string{"tenant_service"}}}, &tok); err != nil {
		return Fixture{}, fmt.Errorf("bench key: %w", err)
	}
	if tok.Secret == "" || tok.Token.TokenID == "" {
		return Fixture{}, fmt.Errorf("bench key: the answer carried no secret")
	}
	f := Fixture{APIKey: tok.Secret, TokenID: tok.Token.TokenID}
	f.Revoke = func(ctx context.Context) error {
		_, err := a.do(ctx, http.MethodDelete, "/v1/admin/tenants/"+TenantID+"/tokens/"+url.PathEscape(f.TokenID), nil, nil)
		return err
	}
	return f, nil
}

// backendOf is the backend part of a "backend/model" reference.
func backendOf(model string) string {
	b, _, ok := strings.Cut(model, "/")
	if !ok || strings.HasPrefix(model, "tier:") {
		return ""
	}
	return b
}
