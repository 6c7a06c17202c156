package core_test

import (
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
