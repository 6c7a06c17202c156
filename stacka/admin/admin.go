// Package admin is Stack A's tenant admin API (CONTRACT §2.2) and audit reader (§3.6).
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/edge"
	"github.com/labstack/echo/v4"
)

// AdminAPI is the tenant admin API of CONTRACT §2.2 and the audit reader of
// §3.6. Every change commits with its audit record in one transaction.
type AdminAPI struct {
	Tenants core.TenantPort
	Tokens  core.TokenPort
	Audit   core.AuditPort
	// Secrets is the per-tenant secret store that tools' secret_ref
	// (secret:<name>) reads; nil leaves the secrets routes unmounted.
	Secrets core.SecretPort
	// DefaultToolIDs are granted to a new tenant that names no tools.
	DefaultToolIDs []string
}

// Register mounts the admin and audit routes.
func (a *AdminAPI) Register(e *echo.Echo) {
	e.POST("/v1/admin/tenants", a.handleCreateTenant, edge.RequireScope(core.ScopeTenantsAdmin))
	e.GET("/v1/admin/tenants", a.handleListTenants)
	e.GET("/v1/admin/tenants/:tenant_id", a.handleGetTenant)
	e.PATCH("/v1/admin/tenants/:tenant_id", a.handleUpdateTenant)
	e.POST("/v1/admin/tenants/:tenant_id/tokens", a.handleIssueToken)
	e.GET("/v1/admin/tenants/:tenant_id/tokens", a.handleListTokens)
	// ":rotate" is a custom method on the token: echo's param takes the
	// whole segment, so the suffix is split off in the handler.
	e.POST("/v1/admin/tenants/:tenant_id/tokens/:token_ref", a.handleTokenAction)
	e.DELETE("/v1/admin/tenants/:tenant_id/tokens/:token_id", a.handleRevokeToken)
	e.GET("/v1/audit", a.handleListAudit)
	if a.Secrets != nil {
		e.GET("/v1/admin/tenants/:tenant_id/secrets", a.handleListSecrets)
		e.PUT("/v1/admin/tenants/:tenant_id/secrets/:name", a.handlePutSecret)
		e.DELETE("/v1/admin/tenants/:tenant_id/secrets/:name", a.handleDeleteSecret)
	}
}

// TenantCreate is the body of POST /v1/admin/tenants.
type TenantCreate struct {
	TenantID        string             `json:"tenant_id"`
	Name            string             `json:"name"`
	PlanTier        string             `json:"plan_tier"`
	DefaultPolicyID string             `json:"default_policy_id"`
	Entitlements    *core.Entitlements `json:"entitlements"`
	Quotas          *core.Quotas       `json:"quotas"`
	Metadata        map[string]any     `json:"metadata"`
}

// TokenCreate is the body of POST /v1/admin/tenants/{id}/tokens.
type TokenCreate struct {
	PrincipalID   string     `json:"principal_id"`
	PrincipalType string     `json:"principal_type"`
	DisplayName   string     `json:"display_name"`
	Scopes        []string   `json:"scopes"`
	Roles         []string   `json:"roles"`
	ExpiresAt     *time.Time `json:"expires_at"`
}

// validTenantID: tnt_ and 1-64 letters, digits, '_' or '-'.
func validTenantID(id string) bool {
	rest, ok := strings.CutPrefix(id, "tnt_")
	return ok && core.ValidChars(rest, 1, 64, "_-")
}

// validPrincipalID: usr_ or svc_ and 1-64 letters, digits, '_' or '-'.
func validPrincipalID(id string) bool {
	rest, ok := strings.CutPrefix(id, "usr_")
	if !ok {
		rest, ok = strings.CutPrefix(id, "svc_")
	}
	return ok && core.ValidChars(rest, 1, 64, "_-")
}

func auth(c echo.Context) core.Auth {
	a, _ := core.AuthFrom(c.Request().Context())
	return a
}

// isTenantsAdmin: scope tenants:admin, which role platform_admin holds.
func isTenantsAdmin(a core.Auth) bool { return a.Can(core.ScopeTenantsAdmin) }

func requireTenantsAdmin(a core.Auth) error {
	if isTenantsAdmin(a) {
		return nil
	}
	return core.Errorf(core.CodeForbidden, "requires role platform_admin or scope tenants:admin").With("scope", core.ScopeTenantsAdmin)
}

// canSeeTenant: admins see every tenant; a tenant admin only its own, and
// any other tenant is not_found so existence does not leak.
func canSeeTenant(a core.Auth, tenantID string) error {
	return adminOfTenant(a, tenantID, "requires role tenant_admin")
}

// adminOfTenant is canSeeTenant's and tokenAdmin's rule, tenantReach,
// refusing anyone else with refusal.
func adminOfTenant(a core.Auth, tenantID, refusal string) error {
	if ok, err := tenantReach(a, tenantID); ok || err != nil {
		return err
	}
	return core.Errorf(core.CodeForbidden, "%s", refusal).With("scope", core.ScopeTenantsAdmin)
}

// tenantReach is the one rule behind canSeeTenant, tokenAdmin and
// secretAdmin: platform admins and tenants:admin act on every tenant, a
// tenant admin on its own (ok); another tenant is not_found (err). Neither
// means a caller of the tenant who is not its admin, whom each check
// refuses in its own words.
func tenantReach(a core.Auth, tenantID string) (ok bool, err error) {
	if isTenantsAdmin(a) {
		return true, nil
	}
	if a.TenantID != tenantID {
		return false, core.NotFound("tenant", tenantID)
	}
	return a.HasRole(core.RoleTenantAdmin), nil
}

func reply(c echo.Context, status int, body map[string]any) error {
	body["correlation_id"] = core.CorrelationID(c.Request().Context())
	return c.JSON(status, body)
}

func (a *AdminAPI) handleCreateTenant(c echo.Context) error {
	au := auth(c)
	tc, err := edge.DecodeStrictEnvelope[TenantCreate](c, "tenant_create")
	if err != nil {
		return err
	}
	t, err := a.CreateTenant(c.Request().Context(), au, tc)
	if err != nil {
		return err
	}
	return reply(c, http.StatusCreated, map[string]any{"tenant": t})
}

// CreateTenant validates tc, fills defaults and stores the tenant with its
// audit record. Returns invalid_request or conflict.
func (a *AdminAPI) CreateTenant(ctx context.Context, au core.Auth, tc TenantCreate) (core.Tenant, error) {
	if tc.TenantID == "" {
		tc.TenantID = core.NewID(core.PrefixTenant)
	}
	if !validTenantID(tc.TenantID) {
		return core.Tenant{}, core.Invalid("tenant_create.tenant_id", "tenant_id must look like tnt_<letters, digits, _ or ->")
	}
	if strings.TrimSpace(tc.Name) == "" {
		return core.Tenant{}, core.Invalid("tenant_create.name", "name is required")
	}
	if tc.PlanTier == "" {
		tc.PlanTier = core.PlanFree
	}
	if tc.DefaultPolicyID == "" {
		tc.DefaultPolicyID = "pol_default"
	}
	ent := core.Entitlements{ModelTiersAllowed: []string{core.TierFast, core.TierBalanced}, ModelBackendsAllowed: []string{"builtin"}, ToolIDsAllowed: a.DefaultToolIDs}
	if tc.Entitlements != nil {
		ent = *tc.Entitlements
	}
	if err := validateEntitlements("tenant_create.entitlements", &ent); err != nil {
		return core.Tenant{}, err
	}
	var q core.Quotas
	if tc.Quotas != nil {
		q = *tc.Quotas
	}
	if err := validateQuotas("tenant_create.quotas", q); err != nil {
		return core.Tenant{}, err
	}
	md := tc.Metadata
	if md == nil {
		md = map[string]any{}
	}
	now := core.Now()
	t := core.Tenant{TenantID: tc.TenantID, Name: tc.Name, Status: core.TenantActive, PlanTier: tc.PlanTier,
		CreatedAt: now, UpdatedAt: now, DefaultPolicyID: tc.DefaultPolicyID, Entitlements: ent, Quotas: q, Metadata: md}
	rec := core.NewAudit(au, "tenant.create", "tenant", t.TenantID, "success", map[string]any{"plan_tier": t.PlanTier})
	rec.TenantID = t.TenantID
	if err := a.Tenants.CreateTenant(ctx, t, &rec); err != nil {
		return core.Tenant{}, err
	}
	return t, nil
}

func validateEntitlements(field string, e *core.Entitlements) error {
	if e.ModelTiersAllowed == nil {
		e.ModelTiersAllowed = []string{}
	}
	if e.ModelBackendsAllowed == nil {
		e.ModelBackendsAllowed = []string{}
	}
	if e.ToolIDsAllowed == nil {
		e.ToolIDsAllowed = []string{}
	}
	for i, t := range e.ModelTiersAllowed {
		if !core.KnownTier(t) {
			return core.Invalid(fmt.Sprintf("%s.model_tiers_allowed[%d]", field, i), "unknown tier %q (fast, balanced, premium)", t)
		}
	}
	return nil
}

func validateQuotas(field string, q core.Quotas) error {
	nonNeg := func(name string, v *int) error {
		if v != nil && *v < 0 {
			return core.Invalid(field+"."+name, "must be >= 0")
		}
		return nil
	}
	if r := q.Runs; r != nil {
		for name, v := range map[string]*int{"runs.max_concurrent_runs": r.MaxConcurrentRuns, "runs.run_create_burst": r.RunCreateBurst} {
			if err := nonNeg(name, v); err != nil {
				return err
			}
		}
		if r.RunCreateQPS != nil && *r.RunCreateQPS < 0 {
			return core.Invalid(field+".runs.run_create_qps", "must be >= 0")
		}
	}
	if t := q.Tools; t != nil {
		if err := nonNeg("tools.tool_calls_per_minute", t.ToolCallsPerMinute); err != nil {
			return err
		}
	}
	if m := q.Models; m != nil {
		if b := m.TokenBudget; b != nil {
			if b.Window != "" && b.Window != "minute" && b.Window != "hour" && b.Window != "day" {
				return core.Invalid(field+".models.token_budget.window", "window must be minute, hour or day")
			}
			if b.MaxTokens != nil && *b.MaxTokens < 0 {
				return core.Invalid(field+".models.token_budget.max_tokens", "must be >= 0")
			}
			if b.MaxCostUSD != nil && *b.MaxCostUSD < 0 {
				return core.Invalid(field+".models.token_budget.max_cost_usd", "must be >= 0")
			}
		}
		if err := nonNeg("models.max_tokens_per_request", m.MaxTokensPerRequest); err != nil {
			return err
		}
		if err := nonNeg("models.max_requests_per_minute", m.MaxRequestsPerMinute); err != nil {
			return err
		}
	}
	if s := q.Storage; s != nil && s.MaxMemoryBytes != nil && *s.MaxMemoryBytes < 0 {
		return core.Invalid(field+".storage.max_memory_bytes", "must be >= 0")
	}
	if r := q.Retention; r != nil {
		for name, v := range map[string]*int{"retention.audit_days": r.AuditDays, "retention.usage_detail_days": r.UsageDetailDays, "retention.runs_days": r.RunsDays} {
			if v != nil && (*v < 0 || *v > core.MaxRetentionDays) {
				return core.Invalid(field+"."+name, "must be 0 (keep) to %d days", core.MaxRetentionDays)
			}
		}
	}
	return nil
}

func (a *AdminAPI) handleListTenants(c echo.Context) error {
	au := auth(c)
	ctx := c.Request().Context()
	if !isTenantsAdmin(au) {
		if err := canSeeTenant(au, au.TenantID); err != nil {
			return err
		}
		t, err := a.Tenants.GetTenant(ctx, au.TenantID)
		if err != nil {
			return err
		}
		return reply(c, http.StatusOK, map[string]any{"tenants": []core.Tenant{t}})
	}
	ts, err := a.Tenants.ListTenants(ctx)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"tenants": ts})
}

func (a *AdminAPI) handleGetTenant(c echo.Context) error {
	id := c.Param("tenant_id")
	if err := canSeeTenant(auth(c), id); err != nil {
		return err
	}
	t, err := a.Tenants.GetTenant(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"tenant": t})
}

var patchableTenantFields = []string{"name", "status", "plan_tier", "entitlements", "quotas", "default_policy_id", "metadata"}

func (a *AdminAPI) handleUpdateTenant(c echo.Context) error {
	au := auth(c)
	id := c.Param("tenant_id")
	if err := canSeeTenant(au, id); err != nil {
		return err
	}
	if err := requireTenantsAdmin(au); err != nil {
		return err
	}
	patch, err := edge.DecodeStrictEnvelope[map[string]json.RawMessage](c, "tenant_update")
	if err != nil {
		return err
	}
	t, err := a.UpdateTenant(c.Request().Context(), au, id, patch)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"tenant": t})
}

// UpdateTenant merges patch (JSON merge patch semantics per field) into the
// stored tenant and audits the change in the same transaction.
func (a *AdminAPI) UpdateTenant(ctx context.Context, au core.Auth, tenantID string, patch map[string]json.RawMessage) (core.Tenant, error) {
	fields := make([]string, 0, len(patch))
	for k := range patch {
		if !slices.Contains(patchableTenantFields, k) {
			return core.Tenant{}, core.Invalid("tenant_update."+k, "field %s cannot be changed", k)
		}
		fields = append(fields, k)
	}
	slices.Sort(fields)
	action := "tenant.update"
	if raw, ok := patch["status"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil || (s != core.TenantActive && s != core.TenantDisabled) {
			return core.Tenant{}, core.Invalid("tenant_update.status", "status must be active or disabled")
		}
		action = "tenant." + map[string]string{core.TenantActive: "enable", core.TenantDisabled: "disable"}[s]
	}
	rec := core.NewAudit(au, action, "tenant", tenantID, "success", map[string]any{"fields": fields})
	rec.TenantID = tenantID
	return a.Tenants.UpdateTenant(ctx, tenantID, func(t *core.Tenant) error {
		cur, err := json.Marshal(t)
		if err != nil {
			return err
		}
		var doc map[string]any
		if err := json.Unmarshal(cur, &doc); err != nil {
			return err
		}
		for k, raw := range patch {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return core.Invalid("tenant_update."+k, "malformed value")
			}
			doc[k] = mergePatch(doc[k], v)
		}
		merged, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		var next core.Tenant
		dec := json.NewDecoder(bytes.NewReader(merged))
		if err := dec.Decode(&next); err != nil {
			return core.Invalid("tenant_update", "merged tenant is not valid: %v", err)
		}
		if strings.TrimSpace(next.Name) == "" {
			return core.Invalid("tenant_update.name", "name cannot be empty")
		}
		if err := validateEntitlements("tenant_update.entitlements", &next.Entitlements); err != nil {
			return err
		}
		if err := validateQuotas("tenant_update.quotas", next.Quotas); err != nil {
			return err
		}
		if next.Metadata == nil {
			next.Metadata = map[string]any{}
		}
		*t = next
		return nil
	}, &rec)
}

// mergePatch applies RFC 7386: objects merge recursively, null deletes,
// anything else replaces.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// tokenAdmin checks the caller may manage tokens of tenantID.
func tokenAdmin(au core.Auth, tenantID string) error {
	return adminOfTenant(au, tenantID, "managing tokens requires role tenant_admin")
}

// NewSecret mints an API key secret: "aos_" + 256 random bits.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return "aos_" + base64.RawURLEncoding.EncodeToString(b)
}

func (a *AdminAPI) handleIssueToken(c echo.Context) error {
	au := auth(c)
	tenantID := c.Param("tenant_id")
	if err := tokenAdmin(au, tenantID); err != nil {
		return err
	}
	tc, err := edge.DecodeStrictEnvelope[TokenCreate](c, "token_create")
	if err != nil {
		return err
	}
	tok, secret, err := a.IssueToken(c.Request().Context(), au, tenantID, tc)
	if err != nil {
		return err
	}
	return reply(c, http.StatusCreated, map[string]any{"token": tok, "secret": secret})
}

// IssueToken validates tc and stores a new key; the secret is returned
// once and only its hash is kept.
func (a *AdminAPI) IssueToken(ctx context.Context, au core.Auth, tenantID string, tc TokenCreate) (core.Token, string, error) {
	if !validPrincipalID(tc.PrincipalID) {
		return core.Token{}, "", core.Invalid("token_create.principal_id", "principal_id must look like usr_… or svc_…")
	}
	if tc.PrincipalType != "user" && tc.PrincipalType != "service" {
		return core.Token{}, "", core.Invalid("token_create.principal_type", "principal_type must be user or service")
	}
	if tc.Scopes == nil {
		tc.Scopes = []string{}
	}
	if tc.Roles == nil {
		tc.Roles = []string{}
	}
	for i, s := range tc.Scopes {
		if !slices.Contains(core.AllScopes, s) {
			return core.Token{}, "", core.Invalid(fmt.Sprintf("token_create.scopes[%d]", i), "unknown scope %q", s)
		}
	}
	for i, r := range tc.Roles {
		if !slices.Contains(core.AllRoles, r) {
			return core.Token{}, "", core.Invalid(fmt.Sprintf("token_create.roles[%d]", i), "unknown role %q", r)
		}
	}
	if err := au.MayManageCredential(tc.Roles, tc.Scopes); err != nil {
		a.auditDenied(ctx, au, "token.issue", tenantID, "", err)
		return core.Token{}, "", err
	}
	if tc.ExpiresAt != nil && !tc.ExpiresAt.After(time.Now()) {
		return core.Token{}, "", core.Invalid("token_create.expires_at", "expires_at must be in the future")
	}
	secret := NewSecret()
	tok := core.Token{TokenID: core.NewID(core.PrefixToken), TenantID: tenantID, PrincipalID: tc.PrincipalID,
		PrincipalType: tc.PrincipalType, DisplayName: tc.DisplayName, Scopes: tc.Scopes, Roles: tc.Roles,
		CreatedAt: core.Now(), ExpiresAt: tc.ExpiresAt, SecretHash: core.HashSecret(secret)}
	rec := core.NewAudit(au, "token.issue", "token", tok.TokenID, "success", map[string]any{"principal_id": tok.PrincipalID, "scopes": tok.Scopes, "roles": tok.Roles})
	rec.TenantID = tenantID
	if err := a.Tokens.CreateToken(ctx, tok, &rec); err != nil {
		if core.IsCode(err, core.CodeNotFound) {
			return core.Token{}, "", core.NotFound("tenant", tenantID)
		}
		return core.Token{}, "", err
	}
	return tok, secret, nil
}

func (a *AdminAPI) handleListTokens(c echo.Context) error {
	au := auth(c)
	tenantID := c.Param("tenant_id")
	if err := tokenAdmin(au, tenantID); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := a.Tenants.GetTenant(ctx, tenantID); err != nil {
		return err
	}
	toks, err := a.ListTokens(ctx, au, tenantID)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"tokens": toks})
}

// ListTokens lists the tenant's tokens the caller may read: those whose
// every role and scope it holds (core.Auth.MayManageCredential). A key the
// caller could not have issued is left out, not shown redacted.
func (a *AdminAPI) ListTokens(ctx context.Context, au core.Auth, tenantID string) ([]core.Token, error) {
	toks, err := a.Tokens.ListTokens(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	out := make([]core.Token, 0, len(toks))
	for _, t := range toks {
		if au.MayManageCredential(t.Roles, t.Scopes) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

func (a *AdminAPI) handleTokenAction(c echo.Context) error {
	au := auth(c)
	tenantID := c.Param("tenant_id")
	tokenID, action, ok := strings.Cut(c.Param("token_ref"), ":")
	if !ok || action != "rotate" {
		return core.Errorf(core.CodeNotFound, "no such route")
	}
	if err := tokenAdmin(au, tenantID); err != nil {
		return err
	}
	tok, secret, err := a.RotateToken(c.Request().Context(), au, tenantID, tokenID)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"token": tok, "secret": secret})
}

// RotateToken gives the token a new secret (returned once; the old one
// stops working) when the caller may manage it: forbidden when the token
// carries a role or scope the caller lacks, or a platform role or
// tenants:* scope and the caller is not a platform admin (the rotated
// secret would hand the caller that credential).
func (a *AdminAPI) RotateToken(ctx context.Context, au core.Auth, tenantID, tokenID string) (core.Token, string, error) {
	if err := a.mayManageToken(ctx, au, "token.rotate", tenantID, tokenID); err != nil {
		return core.Token{}, "", err
	}
	secret := NewSecret()
	rec := core.NewAudit(au, "token.rotate", "token", tokenID, "success", nil)
	rec.TenantID = tenantID
	tok, err := a.Tokens.RotateToken(ctx, tenantID, tokenID, core.HashSecret(secret), &rec)
	if err != nil {
		return core.Token{}, "", err
	}
	return tok, secret, nil
}

func (a *AdminAPI) handleRevokeToken(c echo.Context) error {
	au := auth(c)
	tenantID, tokenID := c.Param("tenant_id"), c.Param("token_id")
	if err := tokenAdmin(au, tenantID); err != nil {
		return err
	}
	tok, err := a.RevokeToken(c.Request().Context(), au, tenantID, tokenID)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"token": tok})
}

// RevokeToken revokes the token when the caller may manage it (the same
// rule as RotateToken: revoking a platform admin's key would lock the
// operator out).
func (a *AdminAPI) RevokeToken(ctx context.Context, au core.Auth, tenantID, tokenID string) (core.Token, error) {
	if err := a.mayManageToken(ctx, au, "token.revoke", tenantID, tokenID); err != nil {
		return core.Token{}, err
	}
	rec := core.NewAudit(au, "token.revoke", "token", tokenID, "success", nil)
	rec.TenantID = tenantID
	return a.Tokens.RevokeToken(ctx, tenantID, tokenID, &rec)
}

// mayManageToken loads the stored token and applies the credential rule.
// A token's roles and scopes never change after issue, so checking before
// the write cannot race with a change of what it carries.
func (a *AdminAPI) mayManageToken(ctx context.Context, au core.Auth, action, tenantID, tokenID string) error {
	tok, err := a.Tokens.GetToken(ctx, tenantID, tokenID)
	if err != nil {
		return err
	}
	if err := au.MayManageCredential(tok.Roles, tok.Scopes); err != nil {
		a.auditDenied(ctx, au, action, tenantID, tokenID, err)
		return err
	}
	return nil
}

// auditDenied records a refused credential action in the tenant's chain,
// so an attempt to take over a key leaves a trace. The refusal stands
// whether or not the record could be written.
func (a *AdminAPI) auditDenied(ctx context.Context, au core.Auth, action, tenantID, tokenID string, cause error) {
	if a.Audit == nil {
		return
	}
	if _, err := a.Tenants.GetTenant(ctx, tenantID); err != nil {
		return // no chain to write into: a made-up tenant id
	}
	details := map[string]any{"reason": core.AsError(cause).Message}
	maps.Copy(details, core.AsError(cause).Details)
	rec := core.NewAudit(au, action, "token", tokenID, "denied", details)
	rec.TenantID = tenantID
	_, _ = a.Audit.AppendAudit(ctx, rec)
}

func (a *AdminAPI) handleListAudit(c echo.Context) error {
	au := auth(c)
	if err := au.Require(core.ScopeAuditRead); err != nil {
		return err
	}
	tenantID := au.TenantID
	if q := c.QueryParam("tenant_id"); q != "" && q != tenantID {
		if !au.IsPlatformAdmin() {
			return core.Errorf(core.CodeForbidden, "only a platform admin may read another tenant's audit").With("tenant_id", q)
		}
		tenantID = q
	}
	f := core.AuditFilter{Action: c.QueryParam("action")}
	if s := c.QueryParam("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return core.Invalid("since", "since must be an RFC3339 time")
		}
		f.Since = t
	}
	if s := c.QueryParam("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return core.Invalid("limit", "limit must be 1..1000")
		}
		f.Limit = n
	}
	recs, err := a.Audit.ListAudit(c.Request().Context(), tenantID, f)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"records": recs})
}

// secretAdmin checks the caller may manage the secrets of tenantID: the
// same reach as for tokens (tenantReach).
func secretAdmin(au core.Auth, tenantID string) error {
	if ok, err := tenantReach(au, tenantID); ok || err != nil {
		return err
	}
	return core.Errorf(core.CodeForbidden, "managing secrets requires role tenant_admin").With("role", core.RoleTenantAdmin)
}

func (a *AdminAPI) handleListSecrets(c echo.Context) error {
	tenantID := c.Param("tenant_id")
	if err := secretAdmin(auth(c), tenantID); err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := a.Tenants.GetTenant(ctx, tenantID); err != nil {
		return err
	}
	list, err := a.Secrets.ListSecrets(ctx, tenantID)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"secrets": list})
}

func (a *AdminAPI) handlePutSecret(c echo.Context) error {
	au := auth(c)
	tenantID := c.Param("tenant_id")
	if err := secretAdmin(au, tenantID); err != nil {
		return err
	}
	var body struct {
		Secret *struct {
			Value *string `json:"value"`
		} `json:"secret"`
	}
	if err := edge.DecodeStrictJSON(c, &body); err != nil {
		return err
	}
	if body.Secret == nil || body.Secret.Value == nil {
		return core.Invalid("secret.value", "secret.value is required")
	}
	sec, created, err := a.PutSecret(c.Request().Context(), au, tenantID, c.Param("name"), *body.Secret.Value)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return reply(c, status, map[string]any{"secret": sec})
}

// PutSecret stores a tenant secret under name, audited by name (never by
// value). invalid_request for a bad name or an empty or oversized value;
// not_found for an unknown tenant.
func (a *AdminAPI) PutSecret(ctx context.Context, au core.Auth, tenantID, name, value string) (core.TenantSecret, bool, error) {
	if !core.ValidSecretName(name) {
		return core.TenantSecret{}, false, core.Invalid("name", "a secret name is 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit")
	}
	if value == "" {
		return core.TenantSecret{}, false, core.Invalid("secret.value", "secret.value must not be empty")
	}
	if len(value) > core.MaxSecretBytes {
		return core.TenantSecret{}, false, core.Invalid("secret.value", "secret.value is longer than %d bytes", core.MaxSecretBytes)
	}
	rec := core.NewAudit(au, "secret.put", "secret", name, "success", map[string]any{"bytes": len(value)})
	rec.TenantID = tenantID
	return a.Secrets.PutSecret(ctx, tenantID, name, []byte(value), &rec)
}

func (a *AdminAPI) handleDeleteSecret(c echo.Context) error {
	au := auth(c)
	tenantID, name := c.Param("tenant_id"), c.Param("name")
	if err := secretAdmin(au, tenantID); err != nil {
		return err
	}
	rec := core.NewAudit(au, "secret.delete", "secret", name, "success", nil)
	rec.TenantID = tenantID
	sec, err := a.Secrets.DeleteSecret(c.Request().Context(), tenantID, name, &rec)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, map[string]any{"secret": sec})
}
