package console_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/internal/testkit"
	"github.com/agentos/agentos/stacka/console"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
)

// memTenants is a two-tenant TenantLister.
type memTenants map[string]core.Tenant

func (m memTenants) GetTenant(_ context.Context, id string) (core.Tenant, error) {
	t, ok := m[id]
	if !ok {
		return t, core.NotFound("tenant", id)
	}
	return t, nil
}

func (m memTenants) ListTenants(context.Context) ([]core.Tenant, error) {
	out := []core.Tenant{}
	for _, t := range m {
		out = append(out, t)
	}
	return out, nil
}

var (
	platformAdmin = core.Auth{TenantID: "tnt_system", Principal: core.Principal{PrincipalID: "usr_root", PrincipalType: "user"},
		Roles: []string{core.RolePlatformAdmin}}
	demoAdmin = core.Auth{TenantID: "tnt_demo", Principal: core.Principal{PrincipalID: "usr_demo_admin", PrincipalType: "user"},
		Roles: []string{core.RoleTenantAdmin}}
	noScopes = core.Auth{TenantID: "tnt_demo", Principal: core.Principal{PrincipalID: "svc_x", PrincipalType: "service"},
		Scopes: []string{core.ScopeRunsRead}}
)

// newServer mounts the console on an echo router whose stand-in edge puts
// the Auth named by the X-Test-Auth header into the context and renders
// errors as the node's mapper does (status + code).
func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	tenants := memTenants{
		"tnt_demo":  {TenantID: "tnt_demo", Name: "Demo", Status: core.TenantActive, PlanTier: "demo"},
		"tnt_other": {TenantID: "tnt_other", Name: "Other", Status: core.TenantActive, PlanTier: "free"},
	}
	since := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	c, err := console.New(console.Deps{
		Health: func(context.Context) (console.NodeHealth, error) {
			return console.NodeHealth{StackID: "stk_1", Status: "degraded",
				Routers:  []console.RouterHealth{{Router: "stack-a", Status: "ok", Checks: map[string]string{"store": "ok"}}},
				Backends: []console.BackendHealth{{Backend: "builtin", Up: true}, {Backend: "edge", Up: false}}}, nil
		},
		Tenants: tenants,
		Usage: func(_ context.Context, id string) (console.TenantUsage, error) {
			t, err := tenants.GetTenant(context.Background(), id)
			if err != nil {
				return console.TenantUsage{}, err
			}
			u := console.TenantUsage{TenantID: id, Name: t.Name, Window: "day", Period: "2026-11-25", MaxTokens: 1000, MaxCostUSD: 2}
			if id == "tnt_other" {
				u.TotalTokens, u.CostUSD = 1500, 0.5
			} else {
				u.TotalTokens, u.CostUSD = 250, 0.5
			}
			return u, nil
		},
		Alerts: func() []console.Alert {
			return []console.Alert{
				{Name: "AgentOSModelBackendUnreachable", State: "firing", Labels: map[string]string{"backend": "edge"}, Since: since},
				{Name: "AgentOSTenantBudgetExceeded", State: "firing", Labels: map[string]string{"tenant": "tnt_other"}, TenantID: "tnt_other", Since: since},
			}
		},
		Log: zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(c echo.Context) (core.Auth, bool, error) {
		var a core.Auth
		switch c.Request().Header.Get("X-Test-Auth") {
		case "platform":
			a = platformAdmin
		case "demo":
			a = demoAdmin
		case "noscopes":
			a = noScopes
		default:
			if strings.HasPrefix(c.Request().URL.Path, "/v1/") {
				return a, false, core.Errorf(core.CodeUnauthorized, "no credential")
			}
		}
		return a, true, nil
	}
	return testkit.Serve(t, testkit.EdgeHandler(nil, auth, c.Register), nil)
}

// noRedirect shows a redirect as the answer it is.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get sends GET url as who (X-Test-Auth) with the correlation id corr_test.
func get(t *testing.T, url, who string) (int, http.Header, []byte) {
	t.Helper()
	r := testkit.DoWith(t, noRedirect, http.MethodGet, url, "", nil, "X-Test-Auth", who, "X-Correlation-Id", "corr_test")
	return r.Status, r.Header, r.Body
}

func TestConsole_StaticPage(t *testing.T) {
	srv := newServer(t)
	cases := []struct {
		path, wantType, wantBody string
		wantStatus               int
	}{
		{"/console/", "text/html", `<script src="app.js">`, 200},
		{"/console/app.js", "javascript", "Last-Event-ID", 200},
		{"/console/style.css", "text/css", ".timeline", 200},
		{"/console/nope.js", "", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			status, h, body := get(t, srv.URL+tc.path, "")
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d", status, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				return
			}
			if !strings.Contains(h.Get("Content-Type"), tc.wantType) || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("content-type %q, body lacks %q", h.Get("Content-Type"), tc.wantBody)
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Fatalf("missing CSP: %v", h)
			}
		})
	}
	status, h, _ := get(t, srv.URL+"/console", "")
	if status != http.StatusFound || h.Get("Location") != "/console/" {
		t.Fatalf("/console: %d %v", status, h.Get("Location"))
	}
}

func TestConsole_NoExternalReferences(t *testing.T) {
	srv := newServer(t)
	for _, p := range []string{"/console/", "/console/app.js", "/console/style.css"} {
		_, _, body := get(t, srv.URL+p, "")
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", "EventSource("} {
			if strings.Contains(string(body), bad) {
				t.Fatalf("%s contains %q: the console must work offline and build the DOM from text", p, bad)
			}
		}
	}
}

func TestConsole_Endpoints(t *testing.T) {
	srv := newServer(t)
	type usageBody struct {
		Usage []console.TenantUsage `json:"usage"`
	}
	cases := []struct {
		name       string
		path, who  string
		wantStatus int
		check      func(t *testing.T, body []byte)
	}{
		{name: "usage needs a credential", path: "/v1/console/usage", wantStatus: 401},
		{name: "usage needs models:list", path: "/v1/console/usage", who: "noscopes", wantStatus: 403},
		{name: "tenant admin sees its own tenant", path: "/v1/console/usage", who: "demo", wantStatus: 200, check: func(t *testing.T, b []byte) {
			var u usageBody
			json.Unmarshal(b, &u)
			if len(u.Usage) != 1 || u.Usage[0].TenantID != "tnt_demo" || u.Usage[0].TokensRatio != 0.25 || u.Usage[0].OverBudget {
				t.Fatalf("usage %+v", u.Usage)
			}
		}},
		{name: "another tenant is not found", path: "/v1/console/usage?tenant_id=tnt_other", who: "demo", wantStatus: 404},
		{name: "platform admin sees every tenant", path: "/v1/console/usage", who: "platform", wantStatus: 200, check: func(t *testing.T, b []byte) {
			var u usageBody
			json.Unmarshal(b, &u)
			if len(u.Usage) != 2 || u.Usage[0].TenantID != "tnt_demo" || u.Usage[1].TenantID != "tnt_other" || !u.Usage[1].OverBudget || u.Usage[1].TokensRatio != 1.5 {
				t.Fatalf("usage %+v", u.Usage)
			}
		}},
		{name: "platform admin picks one tenant", path: "/v1/console/usage?tenant_id=tnt_other", who: "platform", wantStatus: 200, check: func(t *testing.T, b []byte) {
			var u usageBody
			json.Unmarshal(b, &u)
			if len(u.Usage) != 1 || u.Usage[0].TenantID != "tnt_other" {
				t.Fatalf("usage %+v", u.Usage)
			}
		}},
		{name: "platform admin, unknown tenant", path: "/v1/console/usage?tenant_id=tnt_nope", who: "platform", wantStatus: 404},
		{name: "overview for a tenant admin hides other tenants' alerts", path: "/v1/console/overview", who: "demo", wantStatus: 200, check: func(t *testing.T, b []byte) {
			var ov console.Overview
			json.Unmarshal(b, &ov)
			if ov.Whoami.TenantID != "tnt_demo" || ov.Whoami.PlatformAdmin || len(ov.Node.Backends) != 2 || ov.Node.Status != "degraded" {
				t.Fatalf("overview %+v", ov)
			}
			if len(ov.Alerts) != 1 || ov.Alerts[0].Name != "AgentOSModelBackendUnreachable" {
				t.Fatalf("alerts %+v", ov.Alerts)
			}
			if !strings.Contains(string(b), `"correlation_id":"corr_test"`) {
				t.Fatalf("no correlation_id in %s", b)
			}
		}},
		{name: "platform admin sees every alert", path: "/v1/console/alerts", who: "platform", wantStatus: 200, check: func(t *testing.T, b []byte) {
			var body struct{ Alerts []console.Alert }
			json.Unmarshal(b, &body)
			if len(body.Alerts) != 2 {
				t.Fatalf("alerts %+v", body.Alerts)
			}
		}},
		{name: "alerts need a credential", path: "/v1/console/alerts", wantStatus: 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := get(t, srv.URL+tc.path, tc.who)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

func TestConsole_NewRequiresDeps(t *testing.T) {
	if _, err := console.New(console.Deps{}); err == nil {
		t.Fatal("New with no deps must fail")
	}
}
