package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
)

// HashSecret is how API key secrets are stored and looked up
// (Token.SecretHash): hex SHA-256. Keys carry 256 bits of randomness, so a
// fast hash is enough and keeps authentication cheap.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Roles of CONTRACT.md §1.4.
const (
	RolePlatformAdmin = "platform_admin"
	RoleTenantAdmin   = "tenant_admin"
	RoleTenantUser    = "tenant_user"
	RoleTenantService = "tenant_service"
)

// Scopes of CONTRACT.md §1.4.
const (
	ScopeRunsCreate   = "runs:create"
	ScopeRunsRead     = "runs:read"
	ScopeRunsCancel   = "runs:cancel"
	ScopeAgentsRead   = "agents:read"
	ScopeAgentsWrite  = "agents:write"
	ScopeToolsInvoke  = "tools:invoke"
	ScopeToolsWrite   = "tools:write"
	ScopeMemoryRead   = "memory:read"
	ScopeMemoryWrite  = "memory:write"
	ScopeModelsList   = "models:list"
	ScopeModelsInvoke = "models:invoke"
	ScopePolicyCheck  = "policy:check"
	ScopeRunsForward  = "runs:forward"
	ScopeEventsIngest = "events:ingest"
	ScopeAuditRead    = "audit:read"
	ScopeTenantsAdmin = "tenants:admin"
	ScopeTenantsActAs = "tenants:act_as"
)

// AllScopes lists every scope of the contract, in its order.
var AllScopes = []string{
	ScopeRunsCreate, ScopeRunsRead, ScopeRunsCancel, ScopeAgentsRead, ScopeAgentsWrite,
	ScopeToolsInvoke, ScopeToolsWrite, ScopeMemoryRead, ScopeMemoryWrite, ScopeModelsList,
	ScopeModelsInvoke, ScopePolicyCheck, ScopeRunsForward, ScopeEventsIngest, ScopeAuditRead,
	ScopeTenantsAdmin, ScopeTenantsActAs,
}

// AllRoles lists the roles of the contract.
var AllRoles = []string{RolePlatformAdmin, RoleTenantAdmin, RoleTenantUser, RoleTenantService}

// roleScopes is what a role grants on top of the credential's own scopes.
// platform_admin is handled apart: it holds every scope.
var roleScopes = map[string][]string{
	RoleTenantAdmin: {ScopeRunsCreate, ScopeRunsRead, ScopeRunsCancel, ScopeAgentsRead, ScopeAgentsWrite,
		ScopeToolsInvoke, ScopeToolsWrite, ScopeMemoryRead, ScopeMemoryWrite, ScopeModelsList,
		ScopeModelsInvoke, ScopePolicyCheck, ScopeAuditRead},
	RoleTenantUser: {ScopeRunsCreate, ScopeRunsRead, ScopeRunsCancel, ScopeAgentsRead,
		ScopeMemoryRead, ScopeMemoryWrite, ScopeModelsList, ScopeModelsInvoke, ScopePolicyCheck},
	RoleTenantService: {ScopeRunsCreate, ScopeRunsRead, ScopeRunsCancel, ScopeAgentsRead,
		ScopeToolsInvoke, ScopeMemoryRead, ScopeMemoryWrite, ScopeModelsList, ScopeModelsInvoke, ScopePolicyCheck},
}

// Principal is who acts (§1.3). PrincipalType is "user" or "service".
type Principal struct {
	PrincipalID   string `json:"principal_id"`
	PrincipalType string `json:"principal_type"`
	DisplayName   string `json:"display_name,omitempty"`
}

// Session describes the caller's connection, when known.
type Session struct {
	SessionID string `json:"session_id,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// PolicyContext travels with every call so policy can see why data moves.
type PolicyContext struct {
	DataClassification string   `json:"data_classification"`
	Region             string   `json:"region"`
	Purpose            string   `json:"purpose"`
	ConsentTags        []string `json:"consent_tags,omitempty"`
}

// Auth is the auth context of CONTRACT.md §1.3, carried on every port call
// and in the bodies of Stack B and federation requests. It is an open object.
type Auth struct {
	TenantID      string        `json:"tenant_id"`
	Principal     Principal     `json:"principal"`
	Scopes        []string      `json:"scopes"`
	Roles         []string      `json:"roles,omitempty"`
	Session       *Session      `json:"session,omitempty"`
	PolicyContext PolicyContext `json:"policy_context"`
	// TokenID is the credential that authenticated the call (not sent on
	// the wire); audit records and logs use it.
	TokenID string `json:"-"`
}

// DefaultPolicyContext is used when a credential carries none.
func DefaultPolicyContext(region string) PolicyContext {
	if region == "" {
		region = "local"
	}
	return PolicyContext{DataClassification: "internal", Region: region, Purpose: "product_inference"}
}

// HasRole reports whether the principal holds role.
func (a Auth) HasRole(role string) bool { return slices.Contains(a.Roles, role) }

// IsPlatformAdmin reports whether the principal may act on every tenant.
func (a Auth) IsPlatformAdmin() bool { return a.HasRole(RolePlatformAdmin) }

// Can reports whether the principal holds scope, directly or through a role.
func (a Auth) Can(scope string) bool {
	if a.IsPlatformAdmin() || slices.Contains(a.Scopes, scope) {
		return true
	}
	for _, r := range a.Roles {
		if slices.Contains(roleScopes[r], scope) {
			return true
		}
	}
	return false
}

// Require returns 403 forbidden unless the principal holds scope.
func (a Auth) Require(scope string) error {
	if a.Can(scope) {
		return nil
	}
	return Errorf(CodeForbidden, "missing scope %s", scope).With("scope", scope)
}

// RequireAny returns nil when the principal holds at least one of scopes,
// otherwise 403 forbidden naming the first.
func (a Auth) RequireAny(scopes ...string) error {
	for _, sc := range scopes {
		if a.Can(sc) {
			return nil
		}
	}
	return a.Require(scopes[0])
}

// CanActAs reports whether X-Tenant-Id may name another tenant.
func (a Auth) CanActAs() bool {
	return a.IsPlatformAdmin() || slices.Contains(a.Scopes, ScopeTenantsActAs)
}

type ctxKey int

const (
	authKey ctxKey = iota
	correlationKey
	requestKey
	traceparentKey
)

// WithAuth returns ctx carrying a.
func WithAuth(ctx context.Context, a Auth) context.Context {
	return context.WithValue(ctx, authKey, a)
}

// AuthFrom returns the Auth of ctx and whether there is one.
func AuthFrom(ctx context.Context) (Auth, bool) {
	a, ok := ctx.Value(authKey).(Auth)
	return a, ok
}

// WithCorrelationID returns ctx carrying the request's correlation id.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey, id)
}

// CorrelationID returns the correlation id of ctx, or "".
func CorrelationID(ctx context.Context) string {
	s, _ := ctx.Value(correlationKey).(string)
	return s
}

// WithRequestID returns ctx carrying the request id (X-Request-Id).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestKey, id)
}

// RequestID returns the request id of ctx, or "".
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestKey).(string)
	return s
}

// WithTraceparent returns ctx carrying a W3C traceparent to propagate.
func WithTraceparent(ctx context.Context, tp string) context.Context {
	return context.WithValue(ctx, traceparentKey, tp)
}

// Traceparent returns the traceparent of ctx, or "".
func Traceparent(ctx context.Context) string {
	s, _ := ctx.Value(traceparentKey).(string)
	return s
}

// roleCovers says which roles a role stands above: a holder of the key
// role holds every listed role too. The scopes of each covered role are a
// subset of the covering role's (TestAuth_RoleCoverNests keeps that true),
// so covering a role never hands out a scope the holder lacks.
var roleCovers = map[string][]string{
	RolePlatformAdmin: {RolePlatformAdmin, RoleTenantAdmin, RoleTenantUser, RoleTenantService},
	RoleTenantAdmin:   {RoleTenantAdmin, RoleTenantUser, RoleTenantService},
	RoleTenantUser:    {RoleTenantUser},
	RoleTenantService: {RoleTenantService},
}

// HoldsRole reports whether the principal holds role, itself or through a
// role above it (platform_admin above all, tenant_admin above tenant_user
// and tenant_service).
func (a Auth) HoldsRole(role string) bool {
	for _, r := range a.Roles {
		if slices.Contains(roleCovers[r], role) {
			return true
		}
	}
	return false
}

// PlatformReserved reports whether a role or scope is one only a platform
// admin may grant, or act on a credential that carries it: the role
// platform_admin and the tenants:* scopes (tenants:admin, tenants:act_as).
func PlatformReserved(roleOrScope string) bool {
	return roleOrScope == RolePlatformAdmin || roleOrScope == ScopeTenantsAdmin || roleOrScope == ScopeTenantsActAs
}

// MayManageCredential is the credential rule: a principal may create,
// rotate, revoke, update or read a credential only when it holds every role
// and every scope the credential carries, and a credential carrying a
// platform role or a tenants:* scope only a platform admin may touch at all
// (rotating hands out its secret, so it is a grant like issuing). It says
// nothing about which tenant: callers check that first. Returns forbidden
// naming the first role or scope the caller lacks.
func (a Auth) MayManageCredential(roles, scopes []string) error {
	for _, r := range roles {
		if PlatformReserved(r) && !a.IsPlatformAdmin() {
			return Errorf(CodeForbidden, "only a platform admin may grant or manage a credential with role %s", r).With("role", r)
		}
		if !slices.Contains(AllRoles, r) && !a.IsPlatformAdmin() {
			return Errorf(CodeForbidden, "credential carries unknown role %s", r).With("role", r)
		}
		if !a.HoldsRole(r) {
			return Errorf(CodeForbidden, "the caller lacks role %s, which the credential carries", r).With("role", r)
		}
	}
	for _, s := range scopes {
		if PlatformReserved(s) && !a.IsPlatformAdmin() {
			return Errorf(CodeForbidden, "only a platform admin may grant or manage a credential with scope %s", s).With("scope", s)
		}
		if !a.Can(s) {
			return Errorf(CodeForbidden, "the caller lacks scope %s, which the credential carries", s).With("scope", s)
		}
	}
	return nil
}
