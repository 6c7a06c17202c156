package stackb_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stackb"
	"github.com/agentos/agentos/store"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// env is one gateway over a real store with tenant tnt_demo.
type env struct {
	gw    *stackb.Gateway
	st    *store.Store
	reg   *prometheus.Registry
	auth  core.Auth
	url   string // set by serve
	dir   string
	clock func() time.Time
}

type envOpt struct {
	providers string // JSON of the providers file ("" = builtin only)
	tenant    *core.Tenant
	deps      func(*stackb.Deps)
}

func demoTenant(id string) core.Tenant {
	return core.Tenant{TenantID: id, Name: id, Status: core.TenantActive, PlanTier: "enterprise",
		DefaultPolicyID: "pol_default"}
}

func userAuth(tenantID string) core.Auth {
	return core.Auth{TenantID: tenantID, Principal: core.Principal{PrincipalID: "usr_test", PrincipalType: "user"},
		Scopes:        []string{core.ScopeModelsInvoke, core.ScopeModelsList, core.ScopePolicyCheck},
		PolicyContext: core.DefaultPolicyContext("local")}
}

func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "agentos.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	tn := demoTenant("tnt_demo")
	if o.tenant != nil {
		tn = *o.tenant
	}
	if err := st.CreateTenant(context.Background(), tn, nil); err != nil {
		t.Fatalf("create tenant: %v", err)
	}
	deps := stackb.Deps{Tenants: st, Audit: st, Usage: st, StackID: "stk_test", Log: zerolog.Nop(),
		FlushInterval: 10 * time.Millisecond}
	if o.providers != "" {
		deps.ProvidersFile = testkit.WriteFile(t, filepath.Join(dir, "providers.json"), o.providers, 0o600)
	}
	reg := prometheus.NewRegistry()
	deps.Metrics = reg
	if o.deps != nil {
		o.deps(&deps)
	}
	gw, err := stackb.New(deps)
	if err != nil {
		t.Fatalf("stackb.New: %v", err)
	}
	t.Cleanup(func() { gw.Close() })
	return &env{gw: gw, st: st, reg: reg, auth: userAuth(tn.TenantID), dir: dir}
}

// addLimitedTenant creates tnt_limited, allowed one model request a
// minute.
func (e *env) addLimitedTenant(t testing.TB) {
	t.Helper()
	limited := demoTenant("tnt_limited")
	limited.Quotas.Models = &core.ModelQuotas{MaxRequestsPerMinute: core.Ptr(1)}
	if err := e.st.CreateTenant(context.Background(), limited, nil); err != nil {
		t.Fatal(err)
	}
}

// serve starts the gateway's routes on a real listener at 127.0.0.1:0
// behind a minimal stand-in for app's middleware: correlation id, an Auth
// (a service credential that may act as the tenant in X-Tenant-Id, or the
// user of tnt_demo with the bearer "user"), and the error mapper.
func (e *env) serve(t testing.TB) string {
	t.Helper()
	auth := func(c echo.Context) (core.Auth, bool, error) {
		r := c.Request()
		cred := r.Header.Get("Authorization")
		if k := r.Header.Get("X-Api-Key"); k != "" && cred == "" {
			cred = "Bearer " + k
		}
		switch cred {
		case "Bearer user":
			return e.auth, true, nil
		case "Bearer service":
			tenant := r.Header.Get("X-Tenant-Id")
			if tenant == "" {
				tenant = e.auth.TenantID
			}
			return core.Auth{TenantID: tenant, Principal: core.Principal{PrincipalID: "svc_stacka", PrincipalType: "service"},
				Scopes: []string{core.ScopeModelsInvoke, core.ScopeModelsList, core.ScopePolicyCheck, core.ScopeTenantsActAs}}, true, nil
		}
		return core.Auth{}, false, core.Errorf(core.CodeUnauthorized, "no credential")
	}
	srv := testkit.Serve(t, testkit.EdgeHandler(&edge.Edge{CompatError: stackb.CompatError}, auth, e.gw.Register), nil)
	e.url = srv.URL
	return e.url
}
