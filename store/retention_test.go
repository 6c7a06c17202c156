package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentos/agentos/conformance"
	"github.com/agentos/agentos/core"
	"github.com/agentos/agentos/store"
)

// Issue 16: a sweep killed at any point leaves a consistent store. The
// sweep runs in batches of 7 records; after every batch the file is
// copied as a kill -9 would leave it, and each copy must open (the full
// walk: it was not closed), verify its audit chain from its anchor, list
// its runs without an orphaned event, and hold every event of every run
// it still has.
func TestRetention_SweepKilledAnywhereLeavesAConsistentStore(t *testing.T) {
	dir := t.TempDir()
	s := mustOpen(t, filepath.Join(dir, "live.db"), store.Options{})
	defer s.Close()
	ctx := context.Background()
	old := time.Now().Add(-40 * 24 * time.Hour)
	for i := 0; i < 12; i++ {
		if _, err := s.AppendAudit(ctx, conformance.OldAudit("tnt_a", old.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		conformance.OldRun(t, s, "tnt_a", fmt.Sprint("k", i), old.Add(time.Duration(i)*time.Second), core.RunCompleted)
	}
	conformance.OldRun(t, s, "tnt_a", "running", old, core.RunRunning)
	if _, err := s.AppendAudit(ctx, conformance.OldAudit("tnt_a", time.Now())); err != nil {
		t.Fatal(err)
	}
	cut := core.Retention{AuditDays: 30, RunsDays: 30}.Cutoffs(time.Now())
	var copies []string
	for i := 0; ; i++ {
		res, err := s.SweepTenant(ctx, "tnt_a", cut, 7, func(r core.SweepResult) *core.AuditRecord {
			return &core.AuditRecord{TenantID: "tnt_a", PrincipalID: "svc_retention", Action: "retention.sweep", ObjectType: "tenant",
				ObjectID: "tnt_a", Outcome: "success", Details: map[string]any{"runs": r.Runs, "audit": r.Audit}}
		})
		if err != nil {
			t.Fatal(err)
		}
		c := filepath.Join(dir, fmt.Sprintf("killed-%02d.db", i))
		crashCopy(t, s, c)
		copies = append(copies, c)
		if !res.More {
			break
		}
	}
	if len(copies) < 4 {
		t.Fatalf("only %d batches: the test wants to cut the sweep in several places", len(copies))
	}
	for _, c := range copies {
		k, err := store.Open(c, store.Options{})
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(c), err)
		}
		if !k.Opened().Full {
			t.Fatalf("%s: a killed store was not walked", filepath.Base(c))
		}
		if _, err := k.VerifyAudit(ctx, "tnt_a"); err != nil {
			t.Fatalf("%s: audit chain: %v", filepath.Base(c), err)
		}
		runs, _, err := k.ListRuns(ctx, "tnt_a", core.RunFilter{Limit: 100})
		if err != nil {
			t.Fatalf("%s: list runs: %v", filepath.Base(c), err)
		}
		running := 0
		for _, r := range runs {
			evs, err := k.ListEvents(ctx, "tnt_a", r.RunID, 0, 0)
			if err != nil || len(evs) != int(r.LastSequence) {
				t.Fatalf("%s: run %s has %d of its %d events: %v", filepath.Base(c), r.RunID, len(evs), r.LastSequence, err)
			}
			if r.Status == core.RunRunning {
				running++
			}
		}
		if running != 1 {
			t.Fatalf("%s: the running run is gone", filepath.Base(c))
		}
		if active, _ := k.ActiveRuns(ctx); len(active) != 1 {
			t.Fatalf("%s: active runs %+v", filepath.Base(c), active)
		}
		k.Close()
	}
}
