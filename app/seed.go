package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/stacka/admin"
)

// Seeded ids of the demo/dev seed (CONTRACT §7).
const (
	DemoTenantID         = "tnt_demo"
	PlatformAdminID      = "usr_platform_admin"
	TenantAdminID        = "usr_tnt_demo_admin"
	SampleAgentID        = "agt_sample_echo_v1"
	SampleToolID         = "tool.echo"
	CredentialsFileName  = "credentials.json"
	credentialsFileMode  = 0o600
	seedPrincipalDisplay = "Demo Tenant Admin"
)

// KeyRef is one principal's key in the credentials file.
type KeyRef struct {
	PrincipalID string `json:"principal_id"`
	APIKey      string `json:"api_key"`
}

// Credentials is <data-dir>/credentials.json.
type Credentials struct {
	DefaultTenantID string `json:"default_tenant_id"`
	PlatformAdmin   KeyRef `json:"platform_admin"`
	TenantAdmin     KeyRef `json:"tenant_admin"`
}

// Seeded is the report block of §7.
type Seeded struct {
	DefaultTenantID          string   `json:"default_tenant_id"`
	PlatformAdminPrincipalID string   `json:"platform_admin_principal_id"`
	TenantAdminPrincipalID   string   `json:"tenant_admin_principal_id"`
	SampleAgentIDs           []string `json:"sample_agent_ids"`
	SampleToolIDs            []string `json:"sample_tool_ids"`
	CredentialsFile          string   `json:"credentials_file"`
	Created                  []string `json:"created"`
}

// ReadCredentials reads the credentials file of a data dir.
func ReadCredentials(dataDir string) (Credentials, error) {
	var c Credentials
	raw, err := os.ReadFile(dataDir + "/" + CredentialsFileName)
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(raw, &c)
}

// demoTenant is tnt_demo: entitled to every tier, every configured backend
// and the builtin tools, with the quotas of the contract's example.
func demoTenant(backends []string) core.Tenant {
	now := core.Now()
	return core.Tenant{TenantID: DemoTenantID, Name: "Demo Tenant", Status: core.TenantActive, PlanTier: core.PlanDemo,
		CreatedAt: now, UpdatedAt: now, DefaultPolicyID: "pol_default",
		Entitlements: core.Entitlements{ModelTiersAllowed: core.ModelTiers(),
			ModelBackendsAllowed: backends, ToolIDsAllowed: append([]string{}, BuiltinToolIDs...)},
		Quotas: core.Quotas{
			Runs:    &core.RunQuotas{MaxConcurrentRuns: core.Ptr(10), RunCreateQPS: core.Ptr(5.0), RunCreateBurst: core.Ptr(10)},
			Tools:   &core.ToolQuotas{ToolCallsPerMinute: core.Ptr(120)},
			Models:  &core.ModelQuotas{TokenBudget: &core.TokenBudget{Window: "day", MaxTokens: core.Ptr[int64](100000), MaxCostUSD: core.Ptr(25.0)}, MaxTokensPerRequest: core.Ptr(4096), MaxRequestsPerMinute: core.Ptr(120)},
			Storage: &core.StorageQuotas{MaxMemoryBytes: core.Ptr[int64](1 << 30)},
		},
		Metadata: map[string]any{"tags": []string{"seeded", "demo"}, "billing_account": nil}}
}

// tenantAdminScopes are what the seeded tenant admin key carries,
// runs:forward included (§5.2). A key seeded before runs:forward was added
// is kept as it is (seeding again keeps working keys, §7.1); see
// docs/operator.md for getting a key that carries it.
var tenantAdminScopes = []string{core.ScopeRunsCreate, core.ScopeRunsRead, core.ScopeRunsCancel, core.ScopeAgentsRead,
	core.ScopeAgentsWrite, core.ScopeToolsInvoke, core.ScopeToolsWrite, core.ScopeMemoryRead, core.ScopeMemoryWrite,
	core.ScopeModelsList, core.ScopeModelsInvoke, core.ScopePolicyCheck, core.ScopeRunsForward, core.ScopeAuditRead}

// systemAuth is the identity the seed acts as in audit records.
func systemAuth(tenantID string) core.Auth {
	return core.Auth{TenantID: tenantID, Principal: core.Principal{PrincipalID: "svc_agentos_seed", PrincipalType: "service"},
		Scopes: core.AllScopes, Roles: []string{core.RolePlatformAdmin}, PolicyContext: core.DefaultPolicyContext("")}
}

// Seed creates, idempotently, the demo tenant, its two principals' keys
// (kept when the credentials file still authenticates), the sample agent
// and tool. prod mode seeds nothing.
func (n *Node) Seed(ctx context.Context) (Seeded, error) {
	out := Seeded{DefaultTenantID: DemoTenantID, PlatformAdminPrincipalID: PlatformAdminID, TenantAdminPrincipalID: TenantAdminID,
		SampleAgentIDs: []string{SampleAgentID}, SampleToolIDs: []string{SampleToolID},
		CredentialsFile: n.Config.Path(CredentialsFileName), Created: []string{}}
	if n.Config.Mode == ModeProd {
		return out, errors.New("prod mode seeds nothing: use `agentos bootstrap` to create the first platform admin key")
	}
	sys := systemAuth(DemoTenantID)
	api := n.stacks.admin
	if _, err := n.store.GetTenant(ctx, DemoTenantID); core.IsCode(err, core.CodeNotFound) {
		t := demoTenant(n.stacks.backends())
		rec := core.NewAudit(sys, "tenant.create", "tenant", DemoTenantID, "success", map[string]any{"seed": true})
		if err := n.store.CreateTenant(ctx, t, &rec); err != nil && !core.IsCode(err, core.CodeConflict) {
			return out, fmt.Errorf("seed tenant: %w", err)
		}
		out.Created = append(out.Created, "tenant "+DemoTenantID)
	} else if err != nil {
		return out, err
	}

	creds, err := ReadCredentials(n.Config.DataDir)
	valid := func(k KeyRef) bool {
		if k.APIKey == "" {
			return false
		}
		tok, err := n.store.TokenBySecretHash(ctx, core.HashSecret(k.APIKey))
		return err == nil && tok.Active(core.Now()) && tok.PrincipalID == k.PrincipalID
	}
	if err != nil || creds.DefaultTenantID != DemoTenantID {
		creds = Credentials{DefaultTenantID: DemoTenantID}
	}
	changed := false
	if !valid(creds.PlatformAdmin) {
		_, secret, err := api.IssueToken(ctx, sys, DemoTenantID, admin.TokenCreate{PrincipalID: PlatformAdminID, PrincipalType: "user",
			DisplayName: "Platform Admin", Scopes: core.AllScopes, Roles: []string{core.RolePlatformAdmin}})
		if err != nil {
			return out, fmt.Errorf("seed platform admin key: %w", err)
		}
		creds.PlatformAdmin = KeyRef{PrincipalID: PlatformAdminID, APIKey: secret}
		out.Created = append(out.Created, "key "+PlatformAdminID)
		changed = true
	}
	if !valid(creds.TenantAdmin) {
		_, secret, err := api.IssueToken(ctx, sys, DemoTenantID, admin.TokenCreate{PrincipalID: TenantAdminID, PrincipalType: "user",
			DisplayName: seedPrincipalDisplay, Scopes: tenantAdminScopes, Roles: []string{core.RoleTenantAdmin}})
		if err != nil {
			return out, fmt.Errorf("seed tenant admin key: %w", err)
		}
		creds.TenantAdmin = KeyRef{PrincipalID: TenantAdminID, APIKey: secret}
		out.Created = append(out.Created, "key "+TenantAdminID)
		changed = true
	}
	if changed {
		raw, _ := json.MarshalIndent(creds, "", "  ")
		tmp := n.Config.Path(CredentialsFileName + ".tmp")
		if err := os.WriteFile(tmp, append(raw, '\n'), credentialsFileMode); err != nil {
			return out, fmt.Errorf("write credentials: %w", err)
		}
		if err := os.Rename(tmp, n.Config.Path(CredentialsFileName)); err != nil {
			return out, fmt.Errorf("write credentials: %w", err)
		}
	}
	return out, n.stacks.seedSamples(ctx, DemoTenantID)
}
