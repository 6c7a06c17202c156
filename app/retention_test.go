package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agentos/agentos/app"
	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
)

// Issue 16, bounded storage: a tenant's quotas.retention shortens its own
// retention and nobody else's; queued and running runs stay whatever
// their age; the sweep is audited in the tenant's chain (which still
// verifies) and counted in metrics.
func TestRetention_TenantOverrideSweepsOnlyItsOwnFinishedRuns(t *testing.T) {
	n := MustStartNode(t)
	admin := n.creds.PlatformAdmin.APIKey
	base := n.URL(app.StackA)
	for _, id := range []string{"tnt_short", "tnt_long"} {
		body := map[string]any{"tenant_create": map[string]any{"tenant_id": id, "name": id}}
		if id == "tnt_short" {
			body["tenant_create"].(map[string]any)["quotas"] = map[string]any{"retention": map[string]any{"runs_days": 2, "audit_days": 2}}
		}
		expectStatus(t, do(t, "POST", base+"/v1/admin/tenants", admin, body), 201, "create "+id)
	}
	// Out of range is the caller's mistake, named.
	bad := do(t, "PATCH", base+"/v1/admin/tenants/tnt_long", admin, map[string]any{"tenant_update": map[string]any{"quotas": map[string]any{"retention": map[string]any{"runs_days": -1}}}})
	if bad.Status != 400 || !strings.Contains(string(bad.Body), "retention.runs_days") {
		t.Fatalf("negative retention: %d %s", bad.Status, bad.Body)
	}
	st := n.Store()
	ctx := context.Background()
	tenDays := time.Now().Add(-10 * 24 * time.Hour)
	shortDone := conformance.OldRun(t, st, "tnt_short", "k1", tenDays, core.RunCompleted)
	shortQueued := conformance.OldRun(t, st, "tnt_short", "k2", tenDays, core.RunQueued)
	shortRunning := conformance.OldRun(t, st, "tnt_short", "k3", tenDays, core.RunRunning)
	longDone := conformance.OldRun(t, st, "tnt_long", "k1", tenDays, core.RunCompleted)

	rep, err := n.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Removed.Runs != 1 || rep.Removed.Events != 2 || rep.Removed.Audit != 0 {
		t.Fatalf("sweep report %+v: want tnt_short's finished run with its 2 events", rep)
	}
	if _, err := st.GetRun(ctx, "tnt_short", shortDone.RunID); !core.IsCode(err, core.CodeNotFound) {
		t.Fatalf("tnt_short's 10-day-old finished run (2-day retention) kept: %v", err)
	}
	for _, r := range []core.RunRecord{shortQueued, shortRunning} {
		if got, err := st.GetRun(ctx, "tnt_short", r.RunID); err != nil || got.Status != r.Status {
			t.Fatalf("a %s run was swept: %v", r.Status, err)
		}
	}
	if _, err := st.GetRun(ctx, "tnt_long", longDone.RunID); err != nil {
		t.Fatalf("tnt_long's run (node default 30 days) went with tnt_short's sweep: %v", err)
	}
	// The sweep is in tnt_short's own chain, which verifies from its anchor.
	recs, _ := st.ListAudit(ctx, "tnt_short", core.AuditFilter{Action: "retention.sweep"})
	if len(recs) != 1 || recs[0].Details["runs"] != float64(1) || recs[0].Outcome != "success" {
		t.Fatalf("sweep audit: %+v", recs)
	}
	if n, err := st.VerifyAudit(ctx, "tnt_short"); err != nil || n == 0 {
		t.Fatalf("tnt_short's chain after the sweep: %d %v", n, err)
	}
	if recs, _ := st.ListAudit(ctx, "tnt_long", core.AuditFilter{Action: "retention.sweep"}); len(recs) != 0 {
		t.Fatalf("tnt_long audited a sweep that removed nothing of it: %+v", recs)
	}
	m := scrape(t, n)
	if got := m.Sum("agentos_retention_removed_total", `kind="runs"`); got != 1 {
		t.Fatalf(`agentos_retention_removed_total{kind="runs"} = %v, want 1`, got)
	}
	if got := m.Sum("agentos_retention_sweeps_total", `outcome="ok"`); got != 1 {
		t.Fatalf(`agentos_retention_sweeps_total{outcome="ok"} = %v, want 1`, got)
	}
	if !m.Has("agentos_retention_last_sweep_timestamp_seconds") {
		t.Fatal("metrics lack agentos_retention_last_sweep_timestamp_seconds")
	}
	// The swept run answers 404 over the API like any unknown run.
	pa := n.creds.PlatformAdmin.APIKey
	expectStatus(t, do(t, "GET", base+"/v1/runs/"+shortDone.RunID, pa, nil, "X-Tenant-Id", "tnt_short"), 404, "swept run")
}
