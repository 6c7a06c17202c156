package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// TenancyPorts are the storage ports every engine must provide for the
// node foundation: tenants, tokens and the audit chain.
type TenancyPorts struct {
	Tenants core.TenantPort
	Tokens  core.TokenPort
	Audit   core.AuditPort
	// Secrets is the per-tenant secret store; engines without one leave it
	// nil and the secrets cases are skipped.
	Secrets core.SecretPort
	// Tamper, when set, overwrites the stored audit record with id in a way
	// that bypasses the port, so the suite can prove verification catches
	// it. Engines that cannot be tampered with from a test leave it nil.
	Tamper func(tenantID, auditID string) error
}

func sampleTenant(id string) core.Tenant {
	now := core.Now()
	return core.Tenant{TenantID: id, Name: "Tenant " + id, Status: core.TenantActive, PlanTier: core.PlanPro,
		CreatedAt: now, UpdatedAt: now, DefaultPolicyID: "pol_default",
		Entitlements: core.Entitlements{ModelTiersAllowed: []string{core.TierFast}, ModelBackendsAllowed: []string{"builtin"}, ToolIDsAllowed: []string{"tool.echo"}},
		Quotas:       core.Quotas{Runs: &core.RunQuotas{MaxConcurrentRuns: core.Ptr(3)}}, Metadata: map[string]any{}}
}

func sysAuth(tenantID string) core.Auth {
	return core.Auth{TenantID: tenantID, Principal: core.Principal{PrincipalID: "svc_conformance", PrincipalType: "service"}}
}

// RunTenancySuite checks an adapter of the tenant, token and audit ports
// against the behaviour the node relies on.
func RunTenancySuite(t *testing.T, newPorts func(t *testing.T) TenancyPorts) {
	t.Helper()
	ctx := context.Background()

	t.Run("TenantCreateGetListConflict", func(t *testing.T) {
		p := newPorts(t)
		for _, id := range []string{"tnt_b", "tnt_a", "tnt_c"} {
			if err := p.Tenants.CreateTenant(ctx, sampleTenant(id), nil); err != nil {
				t.Fatalf("create %s: %v", id, err)
			}
		}
		if err := p.Tenants.CreateTenant(ctx, sampleTenant("tnt_a"), nil); !core.IsCode(err, core.CodeConflict) {
			t.Fatalf("duplicate create: want conflict, got %v", err)
		}
		got, err := p.Tenants.GetTenant(ctx, "tnt_a")
		if err != nil || got.Name != "Tenant tnt_a" || *got.Quotas.Runs.MaxConcurrentRuns != 3 {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := p.Tenants.GetTenant(ctx, "tnt_missing"); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("get missing: want not_found, got %v", err)
		}
		list, err := p.Tenants.ListTenants(ctx)
		if err != nil || len(list) != 3 || list[0].TenantID != "tnt_a" || list[2].TenantID != "tnt_c" {
			t.Fatalf("list: want 3 ordered by id, got %v %v", ids(list), err)
		}
	})

	t.Run("TenantUpdateIsAtomicWithAudit", func(t *testing.T) {
		p := newPorts(t)
		if err := p.Tenants.CreateTenant(ctx, sampleTenant("tnt_u"), nil); err != nil {
			t.Fatal(err)
		}
		rec := core.NewAudit(sysAuth("tnt_u"), "tenant.update", "tenant", "tnt_u", "success", nil)
		// A failing update changes nothing and writes no audit record.
		_, err := p.Tenants.UpdateTenant(ctx, "tnt_u", func(tn *core.Tenant) error {
			tn.Name = "changed"
			return core.Invalid("name", "refused")
		}, &rec)
		if !core.IsCode(err, core.CodeInvalidRequest) {
			t.Fatalf("failing update: got %v", err)
		}
		if got, _ := p.Tenants.GetTenant(ctx, "tnt_u"); got.Name != "Tenant tnt_u" {
			t.Fatalf("failed update leaked: %q", got.Name)
		}
		if recs, _ := p.Audit.ListAudit(ctx, "tnt_u", core.AuditFilter{}); len(recs) != 0 {
			t.Fatalf("failed update wrote %d audit records", len(recs))
		}
		got, err := p.Tenants.UpdateTenant(ctx, "tnt_u", func(tn *core.Tenant) error { tn.Status = core.TenantDisabled; return nil }, &rec)
		if err != nil || got.Status != core.TenantDisabled {
			t.Fatalf("update: %+v %v", got, err)
		}
		if recs, _ := p.Audit.ListAudit(ctx, "tnt_u", core.AuditFilter{}); len(recs) != 1 || recs[0].Action != "tenant.update" {
			t.Fatalf("update audit: %+v", recs)
		}
		if _, err := p.Tenants.UpdateTenant(ctx, "tnt_none", func(*core.Tenant) error { return nil }, nil); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("update missing: %v", err)
		}
	})

	t.Run("TokensByHashRotateRevokeAndTenantScope", func(t *testing.T) {
		p := newPorts(t)
		for _, id := range []string{"tnt_1", "tnt_2"} {
			if err := p.Tenants.CreateTenant(ctx, sampleTenant(id), nil); err != nil {
				t.Fatal(err)
			}
		}
		tok := core.Token{TokenID: core.NewID(core.PrefixToken), TenantID: "tnt_1", PrincipalID: "usr_x", PrincipalType: "user",
			Scopes: []string{"runs:read"}, Roles: []string{}, CreatedAt: core.Now(), SecretHash: "hash-1"}
		if err := p.Tokens.CreateToken(ctx, tok, nil); err != nil {
			t.Fatal(err)
		}
		missing := tok
		missing.TokenID, missing.TenantID, missing.SecretHash = core.NewID(core.PrefixToken), "tnt_none", "hash-x"
		if err := p.Tokens.CreateToken(ctx, missing, nil); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("token of missing tenant: %v", err)
		}
		got, err := p.Tokens.TokenBySecretHash(ctx, "hash-1")
		if err != nil || got.TokenID != tok.TokenID || got.TenantID != "tnt_1" {
			t.Fatalf("by hash: %+v %v", got, err)
		}
		if _, err := p.Tokens.GetToken(ctx, "tnt_2", tok.TokenID); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("token read through another tenant: %v", err)
		}
		if _, err := p.Tokens.RotateToken(ctx, "tnt_2", tok.TokenID, "hash-evil", nil); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("rotate through another tenant: %v", err)
		}
		if _, err := p.Tokens.RotateToken(ctx, "tnt_1", tok.TokenID, "hash-2", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Tokens.TokenBySecretHash(ctx, "hash-1"); !core.IsCode(err, core.CodeUnauthorized) {
			t.Fatalf("old hash after rotate: %v", err)
		}
		if _, err := p.Tokens.TokenBySecretHash(ctx, "hash-2"); err != nil {
			t.Fatalf("new hash after rotate: %v", err)
		}
		used := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
		if err := p.Tokens.TouchToken(ctx, "tnt_1", tok.TokenID, used); err != nil {
			t.Fatalf("touch: %v", err)
		}
		if err := p.Tokens.TouchToken(ctx, "tnt_1", tok.TokenID, used.Add(-time.Hour)); err != nil {
			t.Fatalf("touch older: %v", err)
		}
		if got, _ := p.Tokens.GetToken(ctx, "tnt_1", tok.TokenID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
			t.Fatalf("last_used_at = %v, want %v (never backwards)", got.LastUsedAt, used)
		}
		if err := p.Tokens.TouchToken(ctx, "tnt_2", tok.TokenID, used); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("touch through another tenant: %v", err)
		}
		revoked, err := p.Tokens.RevokeToken(ctx, "tnt_1", tok.TokenID, nil)
		if err != nil || revoked.RevokedAt == nil || revoked.Active(time.Now()) {
			t.Fatalf("revoke: %+v %v", revoked, err)
		}
		if got, err := p.Tokens.TokenBySecretHash(ctx, "hash-2"); err == nil && got.Active(time.Now()) {
			t.Fatal("revoked token still authenticates")
		}
		if _, err := p.Tokens.RotateToken(ctx, "tnt_1", tok.TokenID, "hash-3", nil); !core.IsCode(err, core.CodeConflict) {
			t.Fatalf("rotate revoked: %v", err)
		}
		list, err := p.Tokens.ListTokens(ctx, "tnt_1")
		if err != nil || len(list) != 1 {
			t.Fatalf("list: %v %v", list, err)
		}
		if list2, _ := p.Tokens.ListTokens(ctx, "tnt_2"); len(list2) != 0 {
			t.Fatalf("tnt_2 sees tokens: %v", list2)
		}
	})

	t.Run("AuditChainAppendListVerify", func(t *testing.T) {
		p := newPorts(t)
		var wg sync.WaitGroup
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				tenant := []string{"tnt_x", "tnt_y"}[i%2]
				rec := core.NewAudit(sysAuth(tenant), fmt.Sprintf("act.%d", i%4), "thing", fmt.Sprint(i), "success", map[string]any{"i": i})
				if _, err := p.Audit.AppendAudit(ctx, rec); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		for _, tenant := range []string{"tnt_x", "tnt_y"} {
			n, err := p.Audit.VerifyAudit(ctx, tenant)
			if err != nil || n != 20 {
				t.Fatalf("verify %s: %d %v", tenant, n, err)
			}
			recs, err := p.Audit.ListAudit(ctx, tenant, core.AuditFilter{Limit: 100})
			if err != nil || len(recs) != 20 {
				t.Fatalf("list %s: %d %v", tenant, len(recs), err)
			}
			for i := 1; i < len(recs); i++ {
				if recs[i].Time.After(recs[i-1].Time) || recs[i-1].PrevHash != recs[i].Hash {
					t.Fatalf("list %s not newest-first along the chain at %d", tenant, i)
				}
				if recs[i].TenantID != tenant {
					t.Fatalf("record of %s listed under %s", recs[i].TenantID, tenant)
				}
			}
		}
		only, _ := p.Audit.ListAudit(ctx, "tnt_x", core.AuditFilter{Action: "act.0", Limit: 100})
		for _, r := range only {
			if r.Action != "act.0" {
				t.Fatalf("action filter let %s through", r.Action)
			}
		}
		if len(only) != 10 {
			t.Fatalf("action filter: %d records, want 10", len(only))
		}
		if few, _ := p.Audit.ListAudit(ctx, "tnt_x", core.AuditFilter{Limit: 3}); len(few) != 3 {
			t.Fatalf("limit: %d", len(few))
		}
		future, _ := p.Audit.ListAudit(ctx, "tnt_x", core.AuditFilter{Since: time.Now().Add(time.Hour)})
		if len(future) != 0 {
			t.Fatalf("since filter: %d", len(future))
		}
		if p.Tamper != nil {
			recs, _ := p.Audit.ListAudit(ctx, "tnt_y", core.AuditFilter{Limit: 100})
			if err := p.Tamper("tnt_y", recs[5].AuditID); err != nil {
				t.Fatal(err)
			}
			if _, err := p.Audit.VerifyAudit(ctx, "tnt_y"); err == nil {
				t.Fatal("verification missed a tampered record")
			}
		}
	})

	t.Run("AuditBatchChainsInOrderAllOrNone", func(t *testing.T) {
		p := newPorts(t)
		// Batches of interleaved tenants race single appends; every
		// chain must still verify, and each batch's records of a tenant
		// keep the order they were given in.
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(2)
			go func(g int) {
				defer wg.Done()
				var batch []core.AuditRecord
				for i := 0; i < 10; i++ {
					tenant := []string{"tnt_b1", "tnt_b2"}[i%2]
					batch = append(batch, core.NewAudit(sysAuth(tenant), "batch", "thing", fmt.Sprintf("%d-%d", g, i), "success", map[string]any{"i": i}))
				}
				out, err := p.Audit.AppendAudits(ctx, batch)
				if err != nil {
					t.Error(err)
					return
				}
				if len(out) != len(batch) {
					t.Errorf("batch %d: %d sealed records for %d", g, len(out), len(batch))
					return
				}
				for i, rec := range out {
					if rec.ObjectID != batch[i].ObjectID || rec.AuditID == "" || rec.Hash == "" {
						t.Errorf("batch %d record %d: %+v", g, i, rec)
					}
					if i >= 2 && out[i-2].TenantID == rec.TenantID && rec.PrevHash != out[i-2].Hash {
						t.Errorf("batch %d: record %d does not chain to the tenant's record before it in the batch", g, i)
					}
				}
			}(g)
			go func(g int) {
				defer wg.Done()
				if _, err := p.Audit.AppendAudit(ctx, core.NewAudit(sysAuth("tnt_b1"), "single", "thing", fmt.Sprint(g), "success", nil)); err != nil {
					t.Error(err)
				}
			}(g)
		}
		wg.Wait()
		for tenant, want := range map[string]int{"tnt_b1": 24, "tnt_b2": 20} {
			if n, err := p.Audit.VerifyAudit(ctx, tenant); err != nil || n != want {
				t.Fatalf("verify %s: %d %v, want %d", tenant, n, err, want)
			}
		}
		// All or none: a batch holding one bad record stores nothing.
		bad := []core.AuditRecord{core.NewAudit(sysAuth("tnt_b2"), "batch", "thing", "good", "success", nil), {Action: "no tenant"}}
		if _, err := p.Audit.AppendAudits(ctx, bad); err == nil {
			t.Fatal("a batch with a record without tenant_id was accepted")
		}
		if n, err := p.Audit.VerifyAudit(ctx, "tnt_b2"); err != nil || n != 20 {
			t.Fatalf("after the refused batch: %d %v, want 20 records", n, err)
		}
		if out, err := p.Audit.AppendAudits(ctx, nil); err != nil || len(out) != 0 {
			t.Fatalf("empty batch: %v %v", out, err)
		}
	})

	t.Run("SecretsAreTenantScoped", func(t *testing.T) {
		p := newPorts(t)
		if p.Secrets == nil {
			t.Skip("engine has no secret store")
		}
		for _, id := range []string{"tnt_s1", "tnt_s2"} {
			if err := p.Tenants.CreateTenant(ctx, sampleTenant(id), nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := p.Secrets.PutSecret(ctx, "tnt_missing", "hook", []byte("v"), nil); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("put into a missing tenant: want not_found, got %v", err)
		}
		rec := core.NewAudit(sysAuth("tnt_s1"), "secret.put", "secret", "hook", "success", nil)
		s1, created, err := p.Secrets.PutSecret(ctx, "tnt_s1", "hook", []byte("one"), &rec)
		if err != nil || !created || s1.Name != "hook" || s1.TenantID != "tnt_s1" {
			t.Fatalf("put: %+v %v %v", s1, created, err)
		}
		if _, created, err := p.Secrets.PutSecret(ctx, "tnt_s1", "hook", []byte("two"), nil); err != nil || created {
			t.Fatalf("replace: created=%v %v", created, err)
		}
		if v, err := p.Secrets.SecretValue(ctx, "tnt_s1", "hook"); err != nil || string(v) != "two" {
			t.Fatalf("value: %q %v", v, err)
		}
		if _, err := p.Secrets.SecretValue(ctx, "tnt_s2", "hook"); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("another tenant's secret: want not_found, got %v", err)
		}
		if list, _ := p.Secrets.ListSecrets(ctx, "tnt_s2"); len(list) != 0 {
			t.Fatalf("tnt_s2 lists %v", list)
		}
		if list, _ := p.Secrets.ListSecrets(ctx, "tnt_s1"); len(list) != 1 || list[0].Name != "hook" {
			t.Fatalf("tnt_s1 lists %v", list)
		}
		if _, err := p.Secrets.DeleteSecret(ctx, "tnt_s2", "hook", nil); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("delete across tenants: want not_found, got %v", err)
		}
		if _, err := p.Secrets.DeleteSecret(ctx, "tnt_s1", "hook", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Secrets.SecretValue(ctx, "tnt_s1", "hook"); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("deleted secret: want not_found, got %v", err)
		}
		recs, _ := p.Audit.ListAudit(ctx, "tnt_s1", core.AuditFilter{Action: "secret.put"})
		if len(recs) != 1 {
			t.Fatalf("audit of the put: %d records", len(recs))
		}
	})
}

func ids(ts []core.Tenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.TenantID
	}
	return out
}
