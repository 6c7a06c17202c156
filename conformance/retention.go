package conformance

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/agentos/agentos/core"
)

// retentionSuite checks core.RetentionPort: what a sweep removes (only
// finished runs past their cutoff, with their events and idempotency
// keys; the oldest audit records, leaving an anchor the chain verifies
// from; minute and hour ledger entries and stored answers), what it never
// removes (queued and running runs, daily entries, anything of another
// tenant, anything when a cutoff is zero), and that a small limit splits
// the work into calls that each leave a consistent store.
func retentionSuite(t *testing.T, h StorageHarness) {
	ctx := context.Background()
	now := core.Now()
	old := now.Add(-40 * 24 * time.Hour)
	cut := core.Retention{AuditDays: 30, UsageDetailDays: 30, RunsDays: 30}.Cutoffs(now)

	t.Run("RunsOnlyFinishedAndOnlyOwnTenant", func(t *testing.T) {
		s := h.Open(t)
		oldDone := OldRun(t, s, "tnt_a", "k-old-done", old, core.RunCompleted)
		oldFailed := OldRun(t, s, "tnt_a", "k-old-failed", old, core.RunFailed)
		oldQueued := OldRun(t, s, "tnt_a", "k-old-queued", old, core.RunQueued)
		oldRunning := OldRun(t, s, "tnt_a", "k-old-running", old, core.RunRunning)
		newDone := OldRun(t, s, "tnt_a", "k-new-done", now.Add(-time.Hour), core.RunCompleted)
		otherOld := OldRun(t, s, "tnt_ab", "k-other", old, core.RunCompleted)

		res, err := s.SweepTenant(ctx, "tnt_a", cut, 1000, nil)
		if err != nil || res.Runs != 2 || res.Events != 4 || res.More {
			t.Fatalf("sweep: %+v %v; want 2 runs with 4 events", res, err)
		}
		for _, id := range []string{oldDone.RunID, oldFailed.RunID} {
			if _, err := s.GetRun(ctx, "tnt_a", id); !core.IsCode(err, core.CodeNotFound) {
				t.Fatalf("swept run %s: %v, want not_found", id, err)
			}
			if _, err := s.ListEvents(ctx, "tnt_a", id, 0, 0); !core.IsCode(err, core.CodeNotFound) {
				t.Fatalf("swept run's events %s: %v, want not_found", id, err)
			}
		}
		if _, ok, err := s.FindIdempotent(ctx, "tnt_a", "usr_1", "agt_x", "k-old-done"); ok || err != nil {
			t.Fatalf("swept run's idempotency key still answers: %v %v", ok, err)
		}
		for _, r := range []core.RunRecord{oldQueued, oldRunning, newDone} {
			got, err := s.GetRun(ctx, "tnt_a", r.RunID)
			if err != nil || got.Status != r.Status {
				t.Fatalf("kept run %s (%s): %+v %v", r.RunID, r.Status, got.Status, err)
			}
			if evs, err := s.ListEvents(ctx, "tnt_a", r.RunID, 0, 0); err != nil || len(evs) != int(r.LastSequence) {
				t.Fatalf("kept run's events %s: %d %v", r.RunID, len(evs), err)
			}
		}
		if _, ok, _ := s.FindIdempotent(ctx, "tnt_a", "usr_1", "agt_x", "k-old-queued"); !ok {
			t.Fatal("a queued run's idempotency key went")
		}
		if got, err := s.GetRun(ctx, "tnt_ab", otherOld.RunID); err != nil || got.Status != core.RunCompleted {
			t.Fatalf("another tenant's run went with tnt_a's sweep: %v", err)
		}
		active, _ := s.ActiveRuns(ctx)
		if len(active) != 2 {
			t.Fatalf("active runs after the sweep: %+v, want the queued and the running one", active)
		}
		runs, _, err := s.ListRuns(ctx, "tnt_a", core.RunFilter{})
		if err != nil || len(runs) != 3 {
			t.Fatalf("list after the sweep: %d %v", len(runs), err)
		}
		// The key is free again: a new create makes a new run.
		again, _, replayed, err := s.CreateRun(ctx, NewRunRecord("tnt_a", "k-old-done"), created(), nil)
		if err != nil || replayed || again.RunID == oldDone.RunID {
			t.Fatalf("create with a swept key: %v %v", replayed, err)
		}
		// Zero cutoffs keep everything.
		if res, err := s.SweepTenant(ctx, "tnt_ab", core.SweepCutoffs{}, 1000, sweepAudit); err != nil || res.Total() != 0 {
			t.Fatalf("zero cutoffs removed %+v %v", res, err)
		}
	})

	t.Run("AuditLeavesAVerifiableAnchor", func(t *testing.T) {
		s := h.Open(t)
		var removed []core.AuditRecord
		for i := 0; i < 5; i++ {
			r, err := s.AppendAudit(ctx, OldAudit("tnt_a", old.Add(time.Duration(i)*time.Minute)))
			if err != nil {
				t.Fatal(err)
			}
			removed = append(removed, r)
		}
		var kept []core.AuditRecord
		for i := 0; i < 3; i++ {
			r, err := s.AppendAudit(ctx, OldAudit("tnt_a", now.Add(-time.Duration(3-i)*time.Minute)))
			if err != nil {
				t.Fatal(err)
			}
			kept = append(kept, r)
		}
		if _, err := s.AppendAudit(ctx, OldAudit("tnt_ab", old)); err != nil {
			t.Fatal(err)
		}
		// A limit of 2 takes three calls; each leaves a verifiable chain.
		total := 0
		for i := 0; ; i++ {
			res, err := s.SweepTenant(ctx, "tnt_a", cut, 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			total += res.Audit
			if n, err := s.VerifyAudit(ctx, "tnt_a"); err != nil || n != 8-total {
				t.Fatalf("chain after %d removed: %d %v", total, n, err)
			}
			if !res.More {
				break
			}
			if i > 10 {
				t.Fatal("the sweep never finished")
			}
		}
		if total != 5 {
			t.Fatalf("removed %d audit records, want the 5 old ones", total)
		}
		a, err := s.AuditAnchor(ctx, "tnt_a")
		if err != nil || a.Removed != 5 || a.AuditID != removed[4].AuditID || a.Hash != removed[4].Hash || !a.Time.Equal(removed[4].Time) {
			t.Fatalf("anchor %+v %v; want the 5th record", a, err)
		}
		list, _ := s.ListAudit(ctx, "tnt_a", core.AuditFilter{})
		if len(list) != 3 || list[2].AuditID != kept[0].AuditID || list[2].PrevHash != a.Hash {
			t.Fatalf("kept records: %+v", list)
		}
		if n, err := s.VerifyAudit(ctx, "tnt_ab"); err != nil || n != 1 {
			t.Fatalf("another tenant's chain: %d %v", n, err)
		}
		if a, _ := s.AuditAnchor(ctx, "tnt_ab"); a.Removed != 0 || a.Hash != "" {
			t.Fatalf("another tenant's anchor moved: %+v", a)
		}
		// Appends go on after the sweep, and tampering is still caught.
		if _, err := s.AppendAudit(ctx, OldAudit("tnt_a", core.Now())); err != nil {
			t.Fatal(err)
		}
		if n, err := s.VerifyAudit(ctx, "tnt_a"); err != nil || n != 4 {
			t.Fatalf("chain after a new append: %d %v", n, err)
		}
		if err := h.TamperAudit(t, s, "tnt_a", kept[1].AuditID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.VerifyAudit(ctx, "tnt_a"); err == nil {
			t.Fatal("a tampered record passed verification after a sweep")
		}
	})

	t.Run("UsageDetailAndReplays", func(t *testing.T) {
		s := h.Open(t)
		d := func(tenant, win string, at time.Time) core.UsageDelta {
			return core.UsageDelta{TenantID: tenant, Window: win, Period: core.UsagePeriod(win, at), Requests: 1, InputTokens: 3, At: at}
		}
		deltas := []core.UsageDelta{d("tnt_a", core.WindowMinute, old), d("tnt_a", core.WindowHour, old), d("tnt_a", core.WindowDay, old),
			d("tnt_a", core.WindowMinute, now), d("tnt_a", core.WindowHour, now), d("tnt_ab", core.WindowHour, old)}
		replays := []core.ModelReplay{
			{TenantID: "tnt_a", RequestID: "req_old", Operation: "chat", Response: json.RawMessage(`{}`), CreatedAt: old},
			{TenantID: "tnt_a", RequestID: "req_new", Operation: "chat", Response: json.RawMessage(`{}`), CreatedAt: now},
			{TenantID: "tnt_ab", RequestID: "req_old", Operation: "chat", Response: json.RawMessage(`{}`), CreatedAt: old},
		}
		if err := s.RecordUsage(ctx, deltas, replays); err != nil {
			t.Fatal(err)
		}
		res, err := s.SweepTenant(ctx, "tnt_a", cut, 1000, nil)
		if err != nil || res.Usage != 2 || res.Replays != 1 {
			t.Fatalf("sweep: %+v %v; want 2 ledger entries and 1 answer", res, err)
		}
		for _, win := range []string{core.WindowMinute, core.WindowHour} {
			if u, _ := s.GetUsage(ctx, "tnt_a", win, core.UsagePeriod(win, old)); u.Requests != 0 {
				t.Fatalf("old %s entry kept: %+v", win, u)
			}
			if u, _ := s.GetUsage(ctx, "tnt_a", win, core.UsagePeriod(win, now)); u.Requests != 1 {
				t.Fatalf("current %s entry went: %+v", win, u)
			}
		}
		if u, _ := s.GetUsage(ctx, "tnt_a", core.WindowDay, core.UsagePeriod(core.WindowDay, old)); u.Requests != 1 {
			t.Fatalf("a daily entry went: %+v", u)
		}
		if u, _ := s.GetUsage(ctx, "tnt_ab", core.WindowHour, core.UsagePeriod(core.WindowHour, old)); u.Requests != 1 {
			t.Fatalf("another tenant's entry went: %+v", u)
		}
		if _, err := s.GetReplay(ctx, "tnt_a", "req_old"); !core.IsCode(err, core.CodeNotFound) {
			t.Fatalf("old answer kept: %v", err)
		}
		if _, err := s.GetReplay(ctx, "tnt_a", "req_new"); err != nil {
			t.Fatalf("new answer went: %v", err)
		}
		if _, err := s.GetReplay(ctx, "tnt_ab", "req_old"); err != nil {
			t.Fatalf("another tenant's answer went: %v", err)
		}
	})

	t.Run("SmallBatchesFinish", func(t *testing.T) {
		s := h.Open(t)
		for i := 0; i < 7; i++ {
			OldRun(t, s, "tnt_a", "k"+string(rune('a'+i)), old, core.RunCompleted)
		}
		var sum core.SweepResult
		for i := 0; ; i++ {
			res, err := s.SweepTenant(ctx, "tnt_a", cut, 3, sweepAudit)
			if err != nil {
				t.Fatal(err)
			}
			sum = sum.Add(res)
			if !res.More {
				break
			}
			if i > 20 {
				t.Fatal("the sweep never finished")
			}
		}
		if sum.Runs != 7 || sum.Events != 14 {
			t.Fatalf("swept %+v, want 7 runs, 14 events", sum)
		}
		// Every call that removed something audited its own counts in the
		// same transaction; together they account for every removal.
		recs, err := s.ListAudit(ctx, "tnt_a", core.AuditFilter{Action: "retention.sweep"})
		if err != nil || len(recs) < 3 {
			t.Fatalf("sweep audit: %d records %v", len(recs), err)
		}
		runs, events := 0.0, 0.0
		for _, r := range recs {
			runs += r.Details["runs"].(float64)
			events += r.Details["events"].(float64)
		}
		if runs != 7 || events != 14 {
			t.Fatalf("audited %v runs and %v events, want 7 and 14", runs, events)
		}
		if n, err := s.VerifyAudit(ctx, "tnt_a"); err != nil || n != len(recs) {
			t.Fatalf("chain with the sweep records: %d %v", n, err)
		}
		if recs, _ := s.ListAudit(ctx, "tnt_ab", core.AuditFilter{}); len(recs) != 0 {
			t.Fatalf("a sweep that removed nothing was audited: %+v", recs)
		}
		if runs, _, _ := s.ListRuns(ctx, "tnt_a", core.RunFilter{}); len(runs) != 0 {
			t.Fatalf("%d runs left", len(runs))
		}
	})
}

// OldRun stores a run of tenant created at `at` and moves it to status
// (a finished run finishes at `at` too): created, plus one more event for
// a run that started, plus the terminal event.
func OldRun(t testing.TB, s core.Storage, tenant, key string, at time.Time, status string) core.RunRecord {
	t.Helper()
	ctx := context.Background()
	r := NewRunRecord(tenant, key)
	r.RunID = core.IDAt(core.PrefixRun, at)
	r.CreatedAt = at
	rec, _, _, err := s.CreateRun(ctx, r, created(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if status == core.RunQueued {
		return rec
	}
	rec.Status = core.RunRunning
	rec.StartedAt = &at
	drafts := []core.EventDraft{{Type: core.EventRunStarted, Payload: core.RunStatusPayload{Status: core.RunRunning}}}
	if core.RunTerminal(status) {
		rec.Status = status
		rec.CompletedAt = &at
		drafts = drafts[:0]
		drafts = append(drafts, core.EventDraft{Type: core.EventRunCompleted, Payload: core.RunStatusPayload{Status: status}})
	}
	rec, _, err = s.AppendRun(ctx, rec, drafts)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// OldAudit is an audit record of tenant at time at (its id carries the
// same time, as ids minted then would).
func OldAudit(tenant string, at time.Time) core.AuditRecord {
	return core.AuditRecord{AuditID: core.IDAt(core.PrefixAudit, at), Time: at, TenantID: tenant, PrincipalID: "usr_1",
		Action: "run.create", ObjectType: "run", ObjectID: "run_x", Outcome: "success"}
}

// FinishedRun is a completed run of tenant created at `at` as the builtin
// echo agent leaves one (record with its conversation, and the created,
// started, model and completed events; extra adds step events), for
// fixtures that need many realistic runs without running them.
func FinishedRun(tenant, agent string, at time.Time, extra int) (core.RunRecord, []core.Event) {
	r := NewRunRecord(tenant, core.NewID("idem"))
	r.RunID = core.IDAt(core.PrefixRun, at)
	r.AgentID = agent
	r.CreatedAt = at
	done := at.Add(40 * time.Millisecond)
	r.Status, r.StartedAt, r.CompletedAt = core.RunCompleted, &at, &done
	r.Output = &core.RunInput{Type: "text", Text: "echo: hi\ntool echo: {\"text\":\"hi\"}"}
	r.Summary = core.RunSummary{StepsTotal: 3, ToolCallsTotal: 1, ModelCallsTotal: 2}
	r.ModelRef, r.MaxSteps, r.TimeoutMS, r.Priority = "tier:fast", 30, 180000, "normal"
	r.Messages = []core.ChatMessage{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "echo: hi"}}
	drafts := []core.EventDraft{
		{Type: core.EventRunCreated, Payload: core.RunStatusPayload{Status: core.RunQueued}},
		{Type: core.EventRunStarted, Payload: core.RunStatusPayload{Status: core.RunRunning}},
		{Type: core.EventModelRequested, StepID: "stp_1", Payload: map[string]any{"model_ref": "tier:fast", "operation": "chat", "input_summary": map[string]any{"messages": 2, "has_tools": true}}},
		{Type: core.EventModelCompleted, StepID: "stp_1", Payload: map[string]any{"model_ref": "tier:fast", "operation": "chat", "status": "ok",
			"usage": map[string]any{"input_tokens": 12, "output_tokens": 9, "total_tokens": 21}, "latency_ms": 1,
			"route": map[string]any{"backend": "builtin", "model": "echo-1", "fallback_used": false}}},
	}
	for i := 0; i < extra; i++ {
		drafts = append(drafts, core.EventDraft{Type: core.EventStepCompleted, StepID: "stp_1", Payload: map[string]any{"step_kind": "model", "name": "tier:fast", "status": "ok", "duration_ms": 1}})
	}
	drafts = append(drafts, core.EventDraft{Type: core.EventRunCompleted, Payload: map[string]any{"status": "completed", "output": r.Output}})
	evs, _ := core.SequenceEvents(&r, drafts, done)
	return r, evs
}

// sweepAudit is the audit record of one sweep call (the sweeper's shape).
func sweepAudit(r core.SweepResult) *core.AuditRecord {
	return &core.AuditRecord{TenantID: "tnt_a", PrincipalID: "svc_retention", Action: "retention.sweep", ObjectType: "tenant",
		ObjectID: "tnt_a", Outcome: "success", Details: map[string]any{"runs": r.Runs, "events": r.Events, "audit": r.Audit}}
}
