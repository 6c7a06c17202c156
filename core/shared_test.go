package core_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// The rules both storage adapters call: one answer whichever stores.

func TestPageSizes(t *testing.T) {
	for _, tc := range []struct{ limit, audit, usage, sweep int }{
		{0, 100, 100, 1000},
		{-5, 100, 100, 1000},
		{1, 1, 1, 1},
		{1000, 1000, 1000, 1000},
		{1001, 100, 1001, 1001}, // the audit page is capped; a cap above it falls back to the default
	} {
		if got := (core.AuditFilter{Limit: tc.limit}).PageSize(); got != tc.audit {
			t.Errorf("AuditFilter{Limit: %d}.PageSize() = %d, want %d", tc.limit, got, tc.audit)
		}
		if got := core.UsagePageSize(tc.limit); got != tc.usage {
			t.Errorf("UsagePageSize(%d) = %d, want %d", tc.limit, got, tc.usage)
		}
		if tc.limit > 0 {
			if got := (core.RunFilter{Limit: tc.limit}).PageSize(); got != tc.limit {
				t.Errorf("RunFilter{Limit: %d}.PageSize() = %d", tc.limit, got)
			}
		} else if got := (core.RunFilter{Limit: tc.limit}).PageSize(); got != 50 {
			t.Errorf("RunFilter{Limit: %d}.PageSize() = %d, want 50", tc.limit, got)
		}
		if got := core.SweepBudget(tc.limit); got != tc.sweep {
			t.Errorf("SweepBudget(%d) = %d, want %d", tc.limit, got, tc.sweep)
		}
	}
}

func TestSweptRun_Sweepable(t *testing.T) {
	cutoff := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	before, after := cutoff.Add(-time.Hour), cutoff.Add(time.Hour)
	for _, tc := range []struct {
		name string
		run  core.SweptRun
		zero bool
		want bool
	}{
		{"completed before the cutoff", core.SweptRun{Status: core.RunCompleted, CompletedAt: &before}, false, true},
		{"failed before the cutoff", core.SweptRun{Status: core.RunFailed, CompletedAt: &before}, false, true},
		{"canceled before the cutoff", core.SweptRun{Status: core.RunCanceled, CompletedAt: &before}, false, true},
		{"finished after the cutoff", core.SweptRun{Status: core.RunCompleted, CompletedAt: &after}, false, false},
		{"running, however old", core.SweptRun{Status: core.RunRunning, CompletedAt: &before}, false, false},
		{"queued", core.SweptRun{Status: core.RunQueued}, false, false},
		{"finished without a time", core.SweptRun{Status: core.RunCompleted}, false, false},
		{"no cutoff (keep forever)", core.SweptRun{Status: core.RunCompleted, CompletedAt: &before}, true, false},
	} {
		c := cutoff
		if tc.zero {
			c = time.Time{}
		}
		if got := tc.run.Sweepable(c); got != tc.want {
			t.Errorf("%s: Sweepable = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBodyHash(t *testing.T) {
	// sha256 of `{"a":1}`, the body's JSON form.
	if got := core.BodyHash(map[string]int{"a": 1}); got != "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862" {
		t.Fatalf("BodyHash = %s", got)
	}
	if core.BodyHash(map[string]int{"a": 1}) == core.BodyHash(map[string]int{"a": 2}) {
		t.Fatal("different bodies hash alike")
	}
}

func TestPlanDefaults_UnknownTierIsFree(t *testing.T) {
	if core.PlanDefaults("no-such-tier") != core.PlanDefaults(core.PlanFree) {
		t.Fatal("an unknown tier must get the free limits")
	}
	free, ent := core.PlanDefaults(core.PlanFree), core.PlanDefaults(core.PlanEnterprise)
	if free.MaxConcurrentRuns >= ent.MaxConcurrentRuns || free.MaxTokens >= ent.MaxTokens {
		t.Fatalf("free %+v is not tighter than enterprise %+v", free, ent)
	}
}

// memChains is core.AuditChainTx over maps, logging each call.
type memChains struct {
	heads map[string]string
	recs  map[string][]core.AuditRecord
	calls []string
}

func (m *memChains) LockHead(tenantID string) (string, error) {
	m.calls = append(m.calls, "lock "+tenantID)
	return m.heads[tenantID], nil
}

func (m *memChains) PutAudit(rec core.AuditRecord, raw []byte) error {
	m.calls = append(m.calls, "put "+rec.TenantID+" "+rec.ObjectID)
	var back core.AuditRecord
	if err := json.Unmarshal(raw, &back); err != nil || back.Hash != rec.Hash {
		return fmt.Errorf("raw is not the sealed record: %v", err)
	}
	m.recs[rec.TenantID] = append(m.recs[rec.TenantID], back)
	return nil
}

func (m *memChains) SetHead(tenantID, hash string) error {
	m.calls = append(m.calls, "head "+tenantID)
	m.heads[tenantID] = hash
	return nil
}

// A batch locks each tenant's head once, in tenant id order, chains its
// records in the order given and moves the head once; a single append
// continues the same chain, and every chain verifies.
func TestAuditBatch_ChainsPerTenantInOrder(t *testing.T) {
	m := &memChains{heads: map[string]string{}, recs: map[string][]core.AuditRecord{}}
	rec := func(tenant, obj string) core.AuditRecord {
		return core.AuditRecord{TenantID: tenant, Action: "x", ObjectID: obj}
	}
	if _, err := core.ChainAudit(m, rec("tnt_b", "first")); err != nil {
		t.Fatal(err)
	}
	batch, err := core.GroupAudits([]core.AuditRecord{rec("tnt_b", "1"), rec("tnt_a", "2"), rec("tnt_b", "3"), rec("tnt_c", "4"), rec("tnt_a", "5")})
	if err != nil {
		t.Fatal(err)
	}
	m.calls = nil
	out, err := batch.Chain(m)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"lock tnt_a", "put tnt_a 2", "put tnt_a 5", "head tnt_a", "lock tnt_b", "put tnt_b 1", "put tnt_b 3", "head tnt_b",
		"lock tnt_c", "put tnt_c 4", "head tnt_c"}
	if !slices.Equal(m.calls, want) {
		t.Fatalf("calls = %v\nwant %v", m.calls, want)
	}
	for i, obj := range []string{"1", "2", "3", "4", "5"} {
		if out[i].ObjectID != obj || out[i].Hash == "" {
			t.Fatalf("out[%d] = %+v, want the sealed record %s (in the order given)", i, out[i], obj)
		}
	}
	for tenant, recs := range m.recs {
		var chk core.AuditChainCheck
		for _, r := range recs {
			if err := chk.Next(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := chk.Done(tenant, m.heads[tenant]); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(m.recs["tnt_b"]); n != 3 {
		t.Fatalf("tnt_b holds %d records, want 3 (one single, two batched)", n)
	}

	m.calls = nil
	if _, err := core.GroupAudits([]core.AuditRecord{rec("tnt_a", "6"), {}}); err == nil || err.Error() != "audit record without tenant_id" {
		t.Fatalf("a batch with a record without tenant: err = %v", err)
	}
	if _, err := core.ChainAudit(m, core.AuditRecord{}); err == nil || len(m.calls) != 0 {
		t.Fatalf("a single record without tenant: err = %v, calls %v", err, m.calls)
	}
}

// IngestEvents asks the adapter's known before putIfFree, and stops at the
// first error, whichever callback fails.
func TestIngestEvents_DuplicateThenConflictThenStored(t *testing.T) {
	ids := map[string]bool{"evt_dup": true}
	slots := map[int64]bool{2: true}
	known := func(ev core.Event) (bool, error) { return ids[ev.EventID], nil }
	putIfFree := func(ev core.Event) (bool, error) {
		if slots[ev.Sequence] {
			return false, nil
		}
		slots[ev.Sequence], ids[ev.EventID] = true, true
		return true, nil
	}
	got, err := core.IngestEvents([]core.Event{
		{EventID: "evt_dup", Sequence: 2}, // known id wins over the taken slot
		{EventID: "evt_x", Sequence: 2},
		{EventID: "evt_y", Sequence: 3},
		{EventID: "evt_y", Sequence: 3}, // stored a moment ago: a duplicate
		{EventID: "evt_z", Sequence: 3},
	}, known, putIfFree)
	if err != nil {
		t.Fatal(err)
	}
	want := []core.IngestOutcome{core.IngestDuplicate, core.IngestConflict, core.IngestStored, core.IngestDuplicate, core.IngestConflict}
	if !slices.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}

	boom := errors.New("boom")
	fail := func(core.Event) (bool, error) { return false, boom }
	if out, err := core.IngestEvents([]core.Event{{EventID: "evt_q"}}, fail, putIfFree); !errors.Is(err, boom) || out != nil {
		t.Fatalf("known failing: %v, %v", out, err)
	}
	if out, err := core.IngestEvents([]core.Event{{EventID: "evt_q"}}, known, fail); !errors.Is(err, boom) || out != nil {
		t.Fatalf("putIfFree failing: %v, %v", out, err)
	}
}
