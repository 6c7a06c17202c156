// Package console is the operator web console of Stack A: an embedded,
// offline HTML/CSS/JS page served at /console, and the few JSON aggregate
// endpoints under /v1/console/ that the page needs and Stack A does not
// otherwise answer (node health with backend health, usage against budgets,
// firing alerts). The page itself is public; every data call it makes is
// authenticated with the API key the operator signed in with.
//
// The package knows no other stack: app/ wires the data sources in as
// small interfaces and functions (Deps).
package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"github.com/agentos/agentos/core"
	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"
)

//go:embed static
var staticFiles embed.FS

// TenantLister is the part of core.TenantPort the console reads.
type TenantLister interface {
	// GetTenant returns not_found for an unknown id.
	GetTenant(ctx context.Context, tenantID string) (core.Tenant, error)
	// ListTenants returns every tenant ordered by id.
	ListTenants(ctx context.Context) ([]core.Tenant, error)
}

// RouterHealth is one router's readiness, as its /readyz reports it.
type RouterHealth struct {
	Router string            `json:"router"`
	URL    string            `json:"url,omitempty"`
	Status string            `json:"status"` // ok | unavailable
	Checks map[string]string `json:"checks"`
}

// BackendHealth is one model backend's routing state.
type BackendHealth struct {
	Backend string `json:"backend"`
	Up      bool   `json:"up"`
}

// RunStats are the executor's live counts.
type RunStats struct {
	QueueDepth int `json:"queue_depth"`
	ActiveRuns int `json:"active_runs"`
	Workers    int `json:"workers"`
	Streams    int `json:"streams"`
}

// NodeHealth is what the health screen shows.
type NodeHealth struct {
	StackID  string          `json:"stack_id"`
	Version  string          `json:"version"`
	Mode     string          `json:"mode"`
	Status   string          `json:"status"` // ok when every router is ready and every backend up
	Routers  []RouterHealth  `json:"routers"`
	Backends []BackendHealth `json:"backends"`
	Runs     RunStats        `json:"runs"`
	// NodeID is the node that answered; Nodes lists every live node of the
	// installation (one on bbolt, each node of a cluster on PostgreSQL).
	NodeID string        `json:"node_id,omitempty"`
	Nodes  []ClusterNode `json:"nodes"`
}

// ClusterNode is one live node of the installation as the console lists
// it: where its Stack A listens, when it started and was last seen, and
// how many runs it holds (queued locally or executing).
type ClusterNode struct {
	core.NodeInfo
	// Self marks the node that answered this request.
	Self bool `json:"self"`
}

// TenantUsage is a tenant's model usage in its current budget window
// against the limits in force.
type TenantUsage struct {
	TenantID    string  `json:"tenant_id"`
	Name        string  `json:"name"`
	Status      string  `json:"status"`
	PlanTier    string  `json:"plan_tier"`
	Window      string  `json:"window"`
	Period      string  `json:"period"`
	Requests    int64   `json:"requests"`
	TotalTokens int64   `json:"total_tokens"`
	MaxTokens   int64   `json:"max_tokens"`
	CostUSD     float64 `json:"cost_usd"`
	MaxCostUSD  float64 `json:"max_cost_usd"`
	// TokensRatio and CostRatio are used/limit (0 when the limit is 0).
	TokensRatio float64 `json:"tokens_ratio"`
	CostRatio   float64 `json:"cost_ratio"`
	// OverBudget is true when either ratio reached 1.
	OverBudget bool `json:"over_budget"`
}

// Alert is one pending or firing alert of the node's rules engine.
type Alert = core.Alert

// Deps is what app/ wires into the console.
type Deps struct {
	// Health reports the node's routers, backends and executor counts.
	Health func(ctx context.Context) (NodeHealth, error)
	// Tenants lists tenants for the usage screen.
	Tenants TenantLister
	// Usage returns one tenant's usage against its budget; not_found for
	// an unknown tenant.
	Usage func(ctx context.Context, tenantID string) (TenantUsage, error)
	// Alerts returns the pending and firing alerts; nil means no engine.
	Alerts func() []Alert
	Log    zerolog.Logger
}

// Console serves the page and its aggregate endpoints.
type Console struct {
	deps   Deps
	log    zerolog.Logger
	static fs.FS
}

// New checks deps and builds the console.
func New(d Deps) (*Console, error) {
	if d.Health == nil || d.Tenants == nil || d.Usage == nil {
		return nil, errors.New("console: Deps.Health, Deps.Tenants and Deps.Usage are required")
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("console static files: %w", err)
	}
	return &Console{deps: d, log: d.Log.With().Str("component", "console").Logger(), static: sub}, nil
}

// Register mounts /console (the page, public) and /v1/console/...
// (authenticated JSON) on Stack A's router.
func (c *Console) Register(e *echo.Echo) {
	e.GET("/console", func(ec echo.Context) error {
		return ec.Redirect(http.StatusFound, "/console/")
	})
	files := http.StripPrefix("/console/", http.FileServer(http.FS(c.static)))
	e.GET("/console/*", func(ec echo.Context) error {
		// A file the page does not have is the contract's JSON 404, not
		// the file server's plain text.
		name := strings.TrimPrefix(ec.Request().URL.Path, "/console/")
		if name == "" {
			name = "index.html"
		}
		if st, err := fs.Stat(c.static, name); err != nil || st.IsDir() {
			return core.Errorf(core.CodeNotFound, "the console has no file /console/%s", name).With("path", "/console/"+name)
		}
		h := ec.Response().Header()
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		files.ServeHTTP(ec.Response(), ec.Request())
		return nil
	})
	e.GET("/v1/console/overview", c.handleOverview)
	e.GET("/v1/console/usage", c.handleUsage)
	e.GET("/v1/console/alerts", c.handleAlerts)
}

func authOf(ec echo.Context) core.Auth {
	a, _ := core.AuthFrom(ec.Request().Context())
	return a
}

// Whoami is the signed-in principal, so the page can shape itself.
type Whoami struct {
	TenantID      string   `json:"tenant_id"`
	PrincipalID   string   `json:"principal_id"`
	Roles         []string `json:"roles"`
	Scopes        []string `json:"scopes"`
	PlatformAdmin bool     `json:"platform_admin"`
}

// Overview is the body of GET /v1/console/overview.
type Overview struct {
	Whoami Whoami     `json:"whoami"`
	Node   NodeHealth `json:"node"`
	Alerts []Alert    `json:"alerts"`
}

// Overview answers who the caller is, the node's health and the alerts the
// caller may see. Any authenticated principal may read it.
func (c *Console) Overview(ctx context.Context, a core.Auth) (Overview, error) {
	h, err := c.deps.Health(ctx)
	if err != nil {
		return Overview{}, fmt.Errorf("node health: %w", err)
	}
	scopes := []string{}
	for _, s := range core.AllScopes {
		if a.Can(s) {
			scopes = append(scopes, s)
		}
	}
	roles := a.Roles
	if roles == nil {
		roles = []string{}
	}
	return Overview{Whoami: Whoami{TenantID: a.TenantID, PrincipalID: a.Principal.PrincipalID, Roles: roles,
		Scopes: scopes, PlatformAdmin: a.IsPlatformAdmin()}, Node: h, Alerts: c.Alerts(a)}, nil
}

func (c *Console) handleOverview(ec echo.Context) error {
	ctx := ec.Request().Context()
	ov, err := c.Overview(ctx, authOf(ec))
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, map[string]any{"whoami": ov.Whoami, "node": ov.Node, "alerts": ov.Alerts,
		"correlation_id": core.CorrelationID(ctx)})
}

// Alerts returns what a may see of the pending and firing alerts: a
// platform admin sees all; anyone else sees node-level alerts and the
// tenant alerts of its own tenant.
func (c *Console) Alerts(a core.Auth) []Alert {
	out := []Alert{}
	if c.deps.Alerts == nil {
		return out
	}
	for _, al := range c.deps.Alerts() {
		if al.TenantID == "" || al.TenantID == a.TenantID || a.IsPlatformAdmin() {
			out = append(out, al)
		}
	}
	return out
}

func (c *Console) handleAlerts(ec echo.Context) error {
	ctx := ec.Request().Context()
	return ec.JSON(http.StatusOK, map[string]any{"alerts": c.Alerts(authOf(ec)), "correlation_id": core.CorrelationID(ctx)})
}

// Usage returns usage against budgets: the caller's own tenant, the one
// named by tenantID, or (platform admin, tenantID "") every tenant. It
// needs scope models:list, like Stack B's GET /v1/usage. Another tenant's
// id answers not_found unless the caller is a platform admin.
func (c *Console) Usage(ctx context.Context, a core.Auth, tenantID string) ([]TenantUsage, error) {
	if err := a.Require(core.ScopeModelsList); err != nil {
		return nil, err
	}
	var ids []string
	switch {
	case tenantID != "" && tenantID != a.TenantID && !a.IsPlatformAdmin():
		return nil, core.NotFound("tenant", tenantID)
	case tenantID != "":
		ids = []string{tenantID}
	case a.IsPlatformAdmin():
		ts, err := c.deps.Tenants.ListTenants(ctx)
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		for _, t := range ts {
			ids = append(ids, t.TenantID)
		}
	default:
		ids = []string{a.TenantID}
	}
	out := make([]TenantUsage, 0, len(ids))
	for _, id := range ids {
		u, err := c.deps.Usage(ctx, id)
		if err != nil {
			if core.IsCode(err, core.CodeNotFound) && len(ids) > 1 {
				continue // deleted between list and read
			}
			return nil, err
		}
		out = append(out, withRatios(u))
	}
	slices.SortFunc(out, func(x, y TenantUsage) int { return strings.Compare(x.TenantID, y.TenantID) })
	return out, nil
}

func withRatios(u TenantUsage) TenantUsage {
	if u.MaxTokens > 0 {
		u.TokensRatio = float64(u.TotalTokens) / float64(u.MaxTokens)
	}
	if u.MaxCostUSD > 0 {
		u.CostRatio = u.CostUSD / u.MaxCostUSD
	}
	u.OverBudget = u.TokensRatio >= 1 || u.CostRatio >= 1
	return u
}

func (c *Console) handleUsage(ec echo.Context) error {
	ctx := ec.Request().Context()
	out, err := c.Usage(ctx, authOf(ec), ec.QueryParam("tenant_id"))
	if err != nil {
		return err
	}
	return ec.JSON(http.StatusOK, map[string]any{"usage": out, "correlation_id": core.CorrelationID(ctx)})
}
