package app_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/core"
)

// tokenIDOf finds the id of the seeded key of principal in tnt_demo.
func tokenIDOf(t *testing.T, n *testNode, principal string) string {
	t.Helper()
	toks, err := n.Store().ListTokens(context.Background(), app.DemoTenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range toks {
		if k.PrincipalID == principal && k.Active(core.Now()) {
			return k.TokenID
		}
	}
	t.Fatalf("no active key of %s", principal)
	return ""
}

// keyWorks reports whether secret still authenticates (looked up in the
// store, so it holds for keys of any scope).
func keyWorks(t *testing.T, n *testNode, secret string) bool {
	t.Helper()
	tok, err := n.Store().TokenBySecretHash(context.Background(), core.HashSecret(secret))
	return err == nil && tok.Active(core.Now())
}

// TestHardening_TenantAdminCannotRotatePlatformAdminToken: issue 14 item 1.
// The platform admin's key lives in tnt_demo; the tenant admin of tnt_demo
// may neither rotate it (and receive its new secret), nor revoke it, nor
// see it in the token list. Each refusal is audited; the key keeps working.
func TestHardening_TenantAdminCannotRotatePlatformAdminToken(t *testing.T) {
	n := MustStartNode(t)
	a := n.URL(app.StackA)
	padmin, tadmin := n.creds.PlatformAdmin.APIKey, n.creds.TenantAdmin.APIKey
	pid := tokenIDOf(t, n, app.PlatformAdminID)

	r := do(t, "POST", a+"/v1/admin/tenants/tnt_demo/tokens/"+pid+":rotate", tadmin, nil)
	expectStatus(t, r, http.StatusForbidden, "tenant admin rotates the platform admin's key")
	if r.ErrorCode(t) != "forbidden" || r.JSON(t)["secret"] != nil {
		t.Fatalf("rotate refusal: %s", r.Body)
	}
	r = do(t, "DELETE", a+"/v1/admin/tenants/tnt_demo/tokens/"+pid, tadmin, nil)
	expectStatus(t, r, http.StatusForbidden, "tenant admin revokes the platform admin's key")

	if !keyWorks(t, n, padmin) {
		t.Fatal("the platform admin's key stopped working")
	}
	expectStatus(t, do(t, "GET", a+"/v1/admin/tenants", padmin, nil), http.StatusOK, "platform admin still admin")

	r = do(t, "GET", a+"/v1/admin/tenants/tnt_demo/tokens", tadmin, nil)
	expectStatus(t, r, http.StatusOK, "tenant admin lists tokens")
	for _, k := range r.JSON(t)["tokens"].([]any) {
		if k.(map[string]any)["token_id"] == pid {
			t.Fatalf("tenant admin reads the platform admin's key: %s", r.Body)
		}
	}

	recs, err := n.Store().ListAudit(context.Background(), app.DemoTenantID, core.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	denied := map[string]bool{}
	for _, rec := range recs {
		if rec.Outcome == "denied" && rec.ObjectID == pid && rec.PrincipalID == app.TenantAdminID {
			denied[rec.Action] = true
		}
	}
	if !denied["token.rotate"] || !denied["token.revoke"] {
		t.Fatalf("refused attempts not audited: %v", denied)
	}

	// The platform admin itself still rotates its own key.
	r = do(t, "POST", a+"/v1/admin/tenants/tnt_demo/tokens/"+pid+":rotate", padmin, nil)
	expectStatus(t, r, http.StatusOK, "platform admin rotates its key")
	if fresh, _ := r.JSON(t)["secret"].(string); !keyWorks(t, n, fresh) || keyWorks(t, n, padmin) {
		t.Fatal("rotation by the platform admin did not swap the secret")
	}
}

// credShape is a credential by what it carries.
type credShape struct {
	name   string
	roles  []string
	scopes []string
}

// TestHardening_CredentialRuleTable: issue 14 item 2, every caller × every
// token action × every target. The oracle below is written out by hand from
// docs/security.md, not computed by the code under test.
func TestHardening_CredentialRuleTable(t *testing.T) {
	n := MustStartNode(t)
	a := n.URL(app.StackA)
	padmin := n.creds.PlatformAdmin.APIKey
	const tenant = "tnt_hard"
	expectStatus(t, do(t, "POST", a+"/v1/admin/tenants", padmin, map[string]any{"tenant_create": map[string]any{
		"tenant_id": tenant, "name": "Hardening"}}), http.StatusCreated, "create tenant")

	issue := func(key string, c credShape, principal string) response {
		return do(t, "POST", a+"/v1/admin/tenants/"+tenant+"/tokens", key, map[string]any{"token_create": map[string]any{
			"principal_id": principal, "principal_type": "user", "roles": c.roles, "scopes": c.scopes}})
	}
	mint := func(c credShape, principal string) (id, secret string) {
		t.Helper()
		r := issue(padmin, c, principal)
		expectStatus(t, r, http.StatusCreated, "platform admin issues "+c.name)
		m := r.JSON(t)
		return m["token"].(map[string]any)["token_id"].(string), m["secret"].(string)
	}

	callers := []credShape{
		{"platform_admin", []string{core.RolePlatformAdmin}, []string{}},
		{"tenants_admin_scope", []string{}, []string{core.ScopeTenantsAdmin, core.ScopeAuditRead}},
		{"tenant_admin", []string{core.RoleTenantAdmin}, []string{}},
		{"tenant_user", []string{core.RoleTenantUser}, []string{}},
		{"tenant_service", []string{core.RoleTenantService}, []string{}},
	}
	targets := []credShape{
		{"platform_admin", []string{core.RolePlatformAdmin}, core.AllScopes},
		{"tenant_admin", []string{core.RoleTenantAdmin}, []string{core.ScopeRunsCreate, core.ScopeAuditRead}},
		{"tenant_user", []string{core.RoleTenantUser}, []string{core.ScopeRunsCreate}},
		{"tenant_service", []string{core.RoleTenantService}, []string{core.ScopeToolsInvoke}},
		{"scope_tenants_admin", []string{}, []string{core.ScopeTenantsAdmin}},
		{"scope_tenants_act_as", []string{}, []string{core.ScopeTenantsActAs}},
		{"scope_runs_forward", []string{}, []string{core.ScopeRunsForward}},
		{"scope_events_ingest", []string{}, []string{core.ScopeEventsIngest}},
		{"scope_audit_read", []string{}, []string{core.ScopeAuditRead}},
	}
	// manages: may the caller touch tokens of this tenant at all?
	manages := map[string]bool{"platform_admin": true, "tenants_admin_scope": true, "tenant_admin": true}
	// allowed[caller] lists the targets it may issue, read, rotate and revoke.
	allowed := map[string][]string{
		"platform_admin":      {"platform_admin", "tenant_admin", "tenant_user", "tenant_service", "scope_tenants_admin", "scope_tenants_act_as", "scope_runs_forward", "scope_events_ingest", "scope_audit_read"},
		"tenants_admin_scope": {"scope_audit_read"},
		"tenant_admin":        {"tenant_admin", "tenant_user", "tenant_service", "scope_audit_read"},
	}

	for ci, caller := range callers {
		_, ckey := mint(caller, fmt.Sprintf("usr_caller_%d", ci))
		for ti, target := range targets {
			name := caller.name + "/" + target.name
			may := slices.Contains(allowed[caller.name], target.name)
			denied := http.StatusForbidden
			if !manages[caller.name] {
				may = false
			}

			// issue
			r := issue(ckey, target, fmt.Sprintf("usr_t_%d_%d", ci, ti))
			if may {
				expectStatus(t, r, http.StatusCreated, name+" issue")
			} else {
				expectStatus(t, r, denied, name+" issue")
				if r.JSON(t)["secret"] != nil {
					t.Fatalf("%s: refusal carries a secret", name)
				}
			}

			id, secret := mint(target, fmt.Sprintf("usr_v_%d_%d", ci, ti))

			// read (list)
			r = do(t, "GET", a+"/v1/admin/tenants/"+tenant+"/tokens", ckey, nil)
			if !manages[caller.name] {
				expectStatus(t, r, denied, name+" list")
			} else {
				expectStatus(t, r, http.StatusOK, name+" list")
				seen := false
				for _, k := range r.JSON(t)["tokens"].([]any) {
					seen = seen || k.(map[string]any)["token_id"] == id
				}
				if seen != may {
					t.Errorf("%s read: listed=%v, want %v", name, seen, may)
				}
			}

			// rotate
			r = do(t, "POST", a+"/v1/admin/tenants/"+tenant+"/tokens/"+id+":rotate", ckey, nil)
			if may {
				expectStatus(t, r, http.StatusOK, name+" rotate")
				fresh := r.JSON(t)["secret"].(string)
				if keyWorks(t, n, secret) || !keyWorks(t, n, fresh) {
					t.Fatalf("%s rotate did not swap the secret", name)
				}
				secret = fresh
			} else {
				expectStatus(t, r, denied, name+" rotate")
				if r.JSON(t)["secret"] != nil || !keyWorks(t, n, secret) {
					t.Fatalf("%s: refused rotate changed the key: %s", name, r.Body)
				}
			}

			// revoke
			r = do(t, "DELETE", a+"/v1/admin/tenants/"+tenant+"/tokens/"+id, ckey, nil)
			if may {
				expectStatus(t, r, http.StatusOK, name+" revoke")
				if keyWorks(t, n, secret) {
					t.Fatalf("%s: revoked key still works", name)
				}
			} else {
				expectStatus(t, r, denied, name+" revoke")
				if !keyWorks(t, n, secret) {
					t.Fatalf("%s: refused revoke revoked the key", name)
				}
			}
		}
	}
}
