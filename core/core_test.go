package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/agentos/agentos/core"
)

func TestError_StatusAndRetryability(t *testing.T) {
	cases := []struct {
		err       error
		code      string
		status    int
		retryable bool
	}{
		{core.Invalid("input.text", "bad"), core.CodeInvalidRequest, 400, false},
		{core.NotFound("run", "run_x"), core.CodeNotFound, 404, false},
		{core.RateLimited("qps", 0, "slow down"), core.CodeRateLimited, 429, true},
		{core.Errorf(core.CodeQuotaExceeded, "budget"), core.CodeQuotaExceeded, 429, false},
		{core.Errorf(core.CodePolicyBlocked, "no"), core.CodePolicyBlocked, 403, false},
		{core.Errorf(core.CodeDependencyUnavailable, "down"), core.CodeDependencyUnavailable, 503, true},
		{fmt.Errorf("wrapped: %w", core.Errorf(core.CodeConflict, "dup")), core.CodeConflict, 409, false},
		{context.DeadlineExceeded, core.CodeTimeout, 504, true},
		{errors.New("disk on fire at /var/lib/x"), core.CodeInternal, 500, true},
	}
	for _, c := range cases {
		e := core.AsError(c.err)
		if e.Code != c.code || e.HTTPStatus() != c.status || e.Retryable != c.retryable {
			t.Errorf("%v: got %s/%d/%v, want %s/%d/%v", c.err, e.Code, e.HTTPStatus(), e.Retryable, c.code, c.status, c.retryable)
		}
		if c.code == core.CodeInternal && strings.Contains(e.Message, "disk") {
			t.Errorf("internal error leaks its cause: %q", e.Message)
		}
	}
	if rl := core.RateLimited("qps", 0, "x"); rl.RetryAfter < 1 {
		t.Error("rate_limited without Retry-After")
	}
	if f := core.Invalid("a.b", "x").Details["field"]; f != "a.b" {
		t.Errorf("details.field = %v", f)
	}
}

func TestAuth_ScopesRolesAndActAs(t *testing.T) {
	user := core.Auth{TenantID: "tnt_a", Roles: []string{core.RoleTenantUser}}
	if !user.Can(core.ScopeRunsCreate) || user.Can(core.ScopeTenantsAdmin) || user.Can(core.ScopeAgentsWrite) || user.CanActAs() {
		t.Error("tenant_user grants")
	}
	if err := user.Require(core.ScopeAuditRead); core.ErrorCode(err) != core.CodeForbidden {
		t.Errorf("require: %v", err)
	}
	admin := core.Auth{Roles: []string{core.RolePlatformAdmin}}
	for _, s := range core.AllScopes {
		if !admin.Can(s) {
			t.Errorf("platform_admin lacks %s", s)
		}
	}
	svc := core.Auth{Scopes: []string{core.ScopeTenantsActAs}}
	if !svc.CanActAs() {
		t.Error("tenants:act_as must allow X-Tenant-Id")
	}
}

func TestTenant_EffectiveLimitsFillFromPlan(t *testing.T) {
	tn := core.Tenant{PlanTier: "demo", Quotas: core.Quotas{Runs: &core.RunQuotas{MaxConcurrentRuns: core.Ptr(3)},
		Models: &core.ModelQuotas{TokenBudget: &core.TokenBudget{Window: "hour"}}}}
	l := tn.EffectiveLimits()
	demo := core.PlanDefaults("demo")
	if l.MaxConcurrentRuns != 3 || l.BudgetWindow != "hour" || l.RunCreateQPS != demo.RunCreateQPS || l.MaxTokens != demo.MaxTokens {
		t.Errorf("limits %+v", l)
	}
	if core.PlanDefaults("unknown-tier").MaxConcurrentRuns <= 0 {
		t.Error("an unknown plan must still be limited, never unlimited")
	}
}

func TestModelOutput_ClosedShapes(t *testing.T) {
	chat, _ := json.Marshal(core.ModelOutput{Type: "chat", Message: &core.ChatMessage{Role: "assistant", Content: "hi", ToolCallID: "x"}})
	if string(chat) != `{"type":"chat","message":{"role":"assistant","content":"hi"},"tool_calls":[]}` {
		t.Errorf("chat output %s", chat)
	}
	emb, _ := json.Marshal(core.ModelOutput{Type: "embedding", Embeddings: []core.Embedding{{Index: 0, Vector: []float64{1}}}})
	if string(emb) != `{"type":"embedding","embeddings":[{"index":0,"vector":[1]}]}` {
		t.Errorf("embed output %s", emb)
	}
}

// Ids minted concurrently are distinct, and each goroutine's own ids rise.
func TestNewID_ConcurrentDistinctAndOrderedPerGoroutine(t *testing.T) {
	const workers, each = 8, 2000
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := make([]string, each)
			for i := range ids {
				ids[i] = core.NewID(core.PrefixToolCall)
				if i > 0 && ids[i] <= ids[i-1] {
					t.Errorf("ids of one goroutine not increasing: %s after %s", ids[i], ids[i-1])
					return
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range ids {
				if seen[id] {
					t.Errorf("duplicate id %s", id)
				}
				seen[id] = true
			}
		}()
	}
	wg.Wait()
	if long := core.NewID(strings.Repeat("x", 60)); len(long) != 60+1+26 {
		t.Fatalf("long prefix id %q", long)
	}
}

func BenchmarkNewID_Parallel(b *testing.B) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = core.NewID(core.PrefixRequest)
		}
	})
}

func TestNewID_PrefixedAndOrdered(t *testing.T) {
	prev := ""
	for i := 0; i < 1000; i++ {
		id := core.NewID(core.PrefixRun)
		if !core.HasPrefix(id, core.PrefixRun) || len(id) != len("run_")+26 {
			t.Fatalf("id %q", id)
		}
		if id <= prev {
			t.Fatalf("ids not increasing: %s after %s", id, prev)
		}
		prev = id
	}
}

// TestAuth_RoleCoverNests: a role that stands above another grants every
// scope the lower one does, so covering a role never hands out a scope the
// holder lacks (the credential rule relies on it).
func TestAuth_RoleCoverNests(t *testing.T) {
	for _, upper := range core.AllRoles {
		hi := core.Auth{Roles: []string{upper}}
		for _, lower := range core.AllRoles {
			if !hi.HoldsRole(lower) {
				continue
			}
			lo := core.Auth{Roles: []string{lower}}
			for _, s := range core.AllScopes {
				if lo.Can(s) && !hi.Can(s) {
					t.Errorf("%s covers %s but lacks its scope %s", upper, lower, s)
				}
			}
		}
	}
	ta := core.Auth{Roles: []string{core.RoleTenantAdmin}}
	if ta.HoldsRole(core.RolePlatformAdmin) || !ta.HoldsRole(core.RoleTenantUser) || !ta.HoldsRole(core.RoleTenantService) {
		t.Error("tenant_admin covers the wrong roles")
	}
	if (core.Auth{Roles: []string{core.RoleTenantUser}}).HoldsRole(core.RoleTenantService) {
		t.Error("tenant_user must not cover tenant_service")
	}
}

// TestAuth_MayManageCredential: the credential rule at unit depth.
func TestAuth_MayManageCredential(t *testing.T) {
	platform := core.Auth{Roles: []string{core.RolePlatformAdmin}}
	tenantsAdmin := core.Auth{Scopes: []string{core.ScopeTenantsAdmin, core.ScopeTenantsActAs, core.ScopeAuditRead}}
	tadmin := core.Auth{Roles: []string{core.RoleTenantAdmin}}
	cases := []struct {
		name   string
		caller core.Auth
		roles  []string
		scopes []string
		ok     bool
		detail string
	}{
		{"platform admin grants anything", platform, []string{core.RolePlatformAdmin}, core.AllScopes, true, ""},
		{"tenant admin grants platform_admin", tadmin, []string{core.RolePlatformAdmin}, nil, false, "role"},
		{"tenant admin grants tenant_user", tadmin, []string{core.RoleTenantUser}, []string{core.ScopeRunsCreate}, true, ""},
		{"tenant admin grants a scope it lacks", tadmin, nil, []string{core.ScopeEventsIngest}, false, "scope"},
		{"tenant admin grants runs:forward it lacks", tadmin, nil, []string{core.ScopeRunsForward}, false, "scope"},
		{"tenants:admin grants tenants:admin", tenantsAdmin, nil, []string{core.ScopeTenantsAdmin}, false, "scope"},
		{"tenants:admin grants tenants:act_as", tenantsAdmin, nil, []string{core.ScopeTenantsActAs}, false, "scope"},
		{"tenants:admin grants tenant_admin role", tenantsAdmin, []string{core.RoleTenantAdmin}, nil, false, "role"},
		{"tenants:admin grants a scope it holds", tenantsAdmin, nil, []string{core.ScopeAuditRead}, true, ""},
		{"unknown role on a stored key", tadmin, []string{"root"}, nil, false, "role"},
	}
	for _, c := range cases {
		err := c.caller.MayManageCredential(c.roles, c.scopes)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if err != nil {
			e := core.AsError(err)
			if e.Code != core.CodeForbidden || e.Details[c.detail] == nil {
				t.Errorf("%s: %+v, want forbidden naming the %s", c.name, e, c.detail)
			}
		}
	}
}
